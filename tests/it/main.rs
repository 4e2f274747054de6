//! One integration-test binary: the real application, started in-process on port 0 or as the
//! real `ringside` executable.

mod support;

mod agents_api;
mod binary;
mod browser;
mod crash;
mod customers_api;
mod guides;
mod import;
mod journal;
mod kamailio;
mod metrics;
mod openapi;
mod outbound;
mod pbx;
mod pop;
mod privacy;
mod reports;
mod security;
mod settings;
mod sip;
mod supervisor_api;
mod supervisor_browser;
mod wallboard;
