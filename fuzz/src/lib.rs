//! The parsers under fuzz, compiled from ringside's own source files.
#![allow(dead_code)]

pub mod protocol {
    #[path = "../../../src/protocol/sip/mod.rs"]
    pub mod sip;

    #[path = "../../../src/protocol/ami.rs"]
    pub mod ami;

    #[path = "../../../src/protocol/esl.rs"]
    pub mod esl;
}

#[path = "../../src/phone.rs"]
pub mod phone;

pub mod import {
    #[path = "../../../src/import/csv_rows.rs"]
    pub mod csv_rows;
}

pub mod ingress {
    #[path = "../../../src/ingress/webhook_body.rs"]
    pub mod webhook_body;
}
