//! Redirect mode's routing decision: send a caller straight to their account manager.
//!
//! Key accounts and VIPs expect to reach the person who looks after them, not whoever is free.
//! When the PBX asks ringside where an inbound call should go (an INVITE answered with 302), the
//! caller is matched like for a pop, and the best candidate's account manager is looked up in the
//! directory: their first extension becomes the Contact, `sip:<extension>@<sip.redirect_domain>`
//! (or the Request-URI host when no domain is configured). A caller with no account manager, an
//! account manager who is disabled or has no extension, or a lookup that fails or takes too long
//! gets `sip.redirect_fallback` (an extension or a full URI), and when that is empty the INVITE is
//! answered `sip.redirect_fallback_status`.
//!
//! The lookup never creates a provisional contact: routing gains nothing from one, and the pop
//! that follows the redirect creates it if the settings ask for it.

use std::sync::Arc;

use crate::call::AgentId;
use crate::directory::Directory;
use crate::matching;
use crate::phone;
use crate::protocol::sip::Uri;
use crate::settings::Settings;
use crate::storage::Storage;

use super::uas::{RedirectDecision, RedirectQuery};

/// Makes redirect decisions from the customer records and the agent directory.
#[derive(Clone)]
pub struct Redirector {
    storage: Storage,
    settings: Arc<Settings>,
    directory: Arc<Directory>,
}

impl Redirector {
    pub fn new(storage: Storage, settings: Arc<Settings>, directory: Arc<Directory>) -> Self {
        Redirector {
            storage,
            settings,
            directory,
        }
    }

    /// Where to send this caller: the account manager's extension, else the fallback.
    pub async fn decide(&self, query: &RedirectQuery) -> RedirectDecision {
        match self.account_manager(query).await {
            Some(decision) => decision,
            None => self.fallback(query),
        }
    }

    /// The decision when the customer records cannot help (or cannot be asked in time).
    pub fn fallback(&self, query: &RedirectQuery) -> RedirectDecision {
        let fallback = self.settings.sip.redirect_fallback.trim();
        if fallback.is_empty() {
            return RedirectDecision {
                contact: None,
                agent: None,
            };
        }
        // A full URI is used as given; anything else is an extension at the redirect domain.
        let contact = match fallback.parse::<Uri>() {
            Ok(uri @ (Uri::Sip(_) | Uri::Tel(_))) => Some(uri),
            _ => self.extension_uri(fallback, query),
        };
        let agent = contact
            .as_ref()
            .and_then(Uri::user)
            .and_then(|user| self.directory.resolve(&user))
            .map(AgentId);
        RedirectDecision { contact, agent }
    }

    async fn account_manager(&self, query: &RedirectQuery) -> Option<RedirectDecision> {
        let caller = query
            .caller
            .as_ref()
            .filter(|caller| !phone::is_withheld(&caller.raw))?;
        let matched = match matching::match_caller(
            &self.storage,
            &self.settings,
            Some(caller),
            query.dialed.as_ref(),
            &[],
            false,
        )
        .await
        {
            Ok(matched) => matched,
            Err(error) => {
                tracing::warn!(%error, "caller lookup for a redirect failed; using the fallback");
                return None;
            }
        };
        let manager = matched.best()?.customer.account_manager.clone()?;
        let agent_id = self.directory.id_by_name(&manager)?;
        let agent = self
            .directory
            .get(agent_id)
            .filter(|entry| !entry.disabled)?;
        let extension = agent.extensions.first()?;
        let contact = self.extension_uri(extension, query)?;
        Some(RedirectDecision {
            contact: Some(contact),
            agent: Some(AgentId(agent_id)),
        })
    }

    /// `sip:<extension>@<redirect_domain or the Request-URI host>`.
    fn extension_uri(&self, extension: &str, query: &RedirectQuery) -> Option<Uri> {
        let configured = self.settings.sip.redirect_domain.trim();
        let domain = if configured.is_empty() {
            query.request_host.as_deref()?
        } else {
            configured
        };
        match format!("sip:{extension}@{domain}").parse::<Uri>() {
            Ok(uri) => Some(uri),
            Err(error) => {
                tracing::warn!(%error, extension, domain, "cannot build a redirect Contact");
                None
            }
        }
    }
}
