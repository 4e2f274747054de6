//! ringside: joins a call centre's phone system to its customer records.
//!
//! Module map (see ARCHITECTURE.md for the invariants):
//! - [`settings`]: configuration file + environment, validated.
//! - [`telemetry`]: logging, personal data masked.
//! - [`daemon`]: builds the application and owns every long-lived task.
//! - [`cli`]: the command line.
//! - [`storage`]: every SQL statement, for SQLite and PostgreSQL.
//! - [`phone`]: phone-number normalization to E.164 and masking.
//! - [`import`]: the customer CSV import.
//! - [`auth`]: roles and tokens.
//! - [`directory`]: agents by name and extension, in memory.
//! - [`api`]: REST handlers.
//! - [`demo`]: the built-in demo data set.
//! - [`simulate`]: test calls from the command line.
//! - [`call`]: the call model, a pure state machine (no I/O).
//! - [`calls`]: drives the call model and carries out its effects.
//! - [`hub`]: routes pops and updates to agent connections.
//! - [`matching`]: caller → ranked customers.
//! - [`hints`]: what a pop leads with (birthday, service due, ...).
//! - [`console`]: the console page, the agent WebSocket, the pop content.
//! - [`ingress`]: call events in (webhook; SIP, AMI, ESL).
//! - [`protocol`]: wire formats (SIP, AMI, ESL), no I/O.
//! - [`outbound`]: the task queue, its generators, the dialing engine and its rules.
//! - [`metrics`]: the Prometheus metrics at `/metrics`.

/// mimalloc instead of the system allocator for every program built on the library (the daemon,
/// its tests and benchmarks): under call load a fifth of the daemon's CPU time went to glibc's
/// malloc and free, most of it small, short-lived, cross-thread allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod api;
pub mod auth;
pub mod call;
pub mod calls;
pub mod cli;
pub mod console;
pub mod daemon;
pub mod demo;
pub mod directory;
pub mod hints;
pub mod hub;
pub mod import;
pub mod ingress;
pub mod matching;
pub mod metrics;
pub mod outbound;
pub mod phone;
pub mod protocol;
pub mod settings;
pub mod simulate;
pub mod storage;
pub mod telemetry;
