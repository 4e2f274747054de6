//! Ingresses: sockets and HTTP bodies turned into [`crate::call::CallEvent`]s for the call service.
//! Each knows its wire format (through `protocol`) and nothing of customers.

pub mod ami;
pub mod esl;
pub mod sip;
pub mod webhook;
pub mod webhook_body;
