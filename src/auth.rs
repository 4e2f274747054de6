//! Roles and bearer tokens.
//!
//! A token is 32 random bytes, shown once in hex with a `rs_` prefix; only its SHA-256 is stored.
//! SHA-256 (not a slow password hash) is right here because the token has 256 bits of entropy:
//! nothing is gained by slowing down a guess that cannot succeed.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Receives pops and outbound tasks, records dispositions.
    Agent,
    /// Everything an agent does, plus campaigns, queues, reports and managing agents.
    Supervisor,
    /// Everything, including configuration, imports, audit and privacy requests.
    Admin,
    /// The phone system: reports call events.
    Pbx,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
            Role::Pbx => "pbx",
        }
    }

    /// People who may read customer records.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Agent | Role::Supervisor | Role::Admin)
    }

    pub fn is_supervisor_or_admin(self) -> bool {
        matches!(self, Role::Supervisor | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            "pbx" => Ok(Role::Pbx),
            other => Err(format!(
                "unknown role `{other}` (agent, supervisor, admin, pbx)"
            )),
        }
    }
}

/// A fresh random token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("rs_{}", hex::encode(bytes))
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with("rs_") && a.len() == 67);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a).len(), 64);
    }

    #[test]
    fn roles_round_trip_through_text() {
        for role in [Role::Agent, Role::Supervisor, Role::Admin, Role::Pbx] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
