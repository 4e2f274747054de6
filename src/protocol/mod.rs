//! Wire formats only: parse, frame and serialize. Nothing here knows of calls, customers or
//! sockets (no tokio); `ingress` puts these codecs on sockets.
//!
//! - `sip`: SIP messages over UDP datagrams and TCP streams, on top of `rsip` where it fits.
//! - `ami`: the Asterisk Manager Interface's `Key: Value` blocks and actions.
//! - `esl`: FreeSWITCH event socket frames (headers + Content-Length bodies) and commands.

pub mod ami;
pub mod esl;
pub mod sip;
