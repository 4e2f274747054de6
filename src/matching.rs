//! Who is calling: the caller's number, in whatever form it arrived, normalized and matched to
//! customer records, with shared numbers ranked and the ranking explained.
//!
//! Order of lookups: exact E.164, then the national number, then the last N digits
//! (`numbers.trailing_digits`). When several customers share a number they are ranked by: the
//! customer an agent picked for this number before (`select_customer`), the number being their
//! primary one, recent interactions from this number, the ringing agent being their account
//! manager, and tier / key account. An unknown caller becomes a provisional contact when
//! `matching.create_provisional` is on.

use serde::Serialize;

use crate::call::Party;
use crate::phone::{self, Normalized};
use crate::settings::Settings;
use crate::storage::customers::{Customer, CustomerDraft, NewPhone, NumberMatch};
use crate::storage::{Result, Storage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Exact,
    National,
    TrailingDigits,
    Remembered,
    /// No customer has this number (a provisional contact may have been created).
    None,
    /// The caller withheld the number.
    Withheld,
}

#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub customer: Customer,
    pub score: i64,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatchResult {
    pub kind: MatchKind,
    pub number: Option<String>,
    /// The best match first, then the others, ranked.
    pub ranked: Vec<Candidate>,
    /// A provisional contact was created for this unknown caller.
    pub created: bool,
}

impl MatchResult {
    pub fn best(&self) -> Option<&Candidate> {
        self.ranked.first()
    }

    pub fn customer_ids(&self) -> Vec<i64> {
        self.ranked.iter().map(|c| c.customer.id).collect()
    }
}

/// The region a caller's number is read in: the trunk's (by dialed number) or the default.
pub fn caller_country<'a>(settings: &'a Settings, dialed: Option<&Party>) -> &'a str {
    if let Some(dialed) = dialed {
        let dialed_digits: String = dialed.raw.chars().filter(|c| c.is_ascii_digit()).collect();
        for trunk in &settings.numbers.trunks {
            let trunk_digits: String = trunk
                .dialed
                .chars()
                .filter(|c| c.is_ascii_digit())
                .collect();
            if trunk.dialed == dialed.raw
                || (!trunk_digits.is_empty() && trunk_digits == dialed_digits)
            {
                return &trunk.country;
            }
        }
    }
    &settings.numbers.default_country
}

/// Normalizes a caller as the call model and the matcher see it.
pub fn party(settings: &Settings, raw: &str, dialed: Option<&Party>) -> Party {
    let n = normalize_caller(settings, raw, dialed);
    Party::new(raw, n.e164)
}

/// The most numbers [`normalize_caller`] remembers; beyond it, it starts again empty.
const NORMALIZED_KEPT: usize = 4096;

/// [`phone::normalize`] in the caller's region ([`caller_country`]), remembered: every ringing
/// call's number is normalized by its ingress ([`party`]) and again by the matcher, which needs
/// more of it than the E.164 form, and the numbering-plan rules cost tens of microseconds a
/// number, on the way to the pop.
pub fn normalize_caller(
    settings: &Settings,
    raw: &str,
    dialed: Option<&Party>,
) -> phone::Normalized {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    static KEPT: LazyLock<Mutex<HashMap<(String, String), phone::Normalized>>> =
        LazyLock::new(Default::default);
    let country = caller_country(settings, dialed);
    let key = (country.to_string(), raw.to_string());
    if let Some(n) = KEPT.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return n.clone();
    }
    let n = phone::normalize(raw, country);
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() >= NORMALIZED_KEPT {
        kept.clear();
    }
    kept.insert(key, n.clone());
    n
}

/// Finds and ranks the customers behind a caller. `ringing_agents` are the names of the agents
/// whose phones ring (their own customers rank higher).
pub async fn match_caller(
    storage: &Storage,
    settings: &Settings,
    caller: Option<&Party>,
    dialed: Option<&Party>,
    ringing_agents: &[String],
    create_provisional: bool,
) -> Result<MatchResult> {
    let Some(caller) = caller.filter(|c| !phone::is_withheld(&c.raw)) else {
        return Ok(MatchResult {
            kind: MatchKind::Withheld,
            number: None,
            ranked: Vec::new(),
            created: false,
        });
    };
    let number = normalize_caller(settings, &caller.raw, dialed);
    let hits = storage
        .find_phone_hits(&number, settings.numbers.trailing_digits)
        .await?;
    let key = number.e164.clone();
    if hits.is_empty() {
        let mut result = MatchResult {
            kind: MatchKind::None,
            number: key,
            ranked: Vec::new(),
            created: false,
        };
        let erased = match &number.e164 {
            Some(e164) => storage.is_erased_number(e164).await?,
            None => false,
        };
        // An erased customer calling again pops as unknown: no new record is made of them.
        if create_provisional && settings.matching.create_provisional && number.valid && !erased {
            let customer = storage.create_customer(&provisional_draft(&number)).await?;
            result.created = true;
            result.ranked.push(Candidate {
                customer,
                score: 0,
                reasons: vec!["new contact for an unknown number".into()],
            });
        }
        return Ok(result);
    }
    let mut ids: Vec<i64> = Vec::new();
    for h in &hits {
        if !ids.contains(&h.customer_id) {
            ids.push(h.customer_id);
        }
    }
    let customers = storage.customers_by_ids(&ids).await?;
    let (remembered, recent) = match &key {
        Some(e164) if ids.len() > 1 => (
            storage.remembered_choice(e164).await?,
            storage.recent_customers_for_number(e164, 5).await?,
        ),
        _ => (None, Vec::new()),
    };
    let mut ranked: Vec<Candidate> = customers
        .into_iter()
        .map(|customer| {
            let primary = hits
                .iter()
                .any(|h| h.customer_id == customer.id && h.primary);
            score(customer, primary, remembered, &recent, ringing_agents)
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(a.customer.id.cmp(&b.customer.id))
    });
    let how = hits[0].how;
    let kind = if remembered.is_some()
        && ranked.first().map(|c| Some(c.customer.id)) == Some(remembered)
    {
        MatchKind::Remembered
    } else {
        match how {
            NumberMatch::Exact => MatchKind::Exact,
            NumberMatch::National => MatchKind::National,
            NumberMatch::TrailingDigits => MatchKind::TrailingDigits,
        }
    };
    Ok(MatchResult {
        kind,
        number: key,
        ranked,
        created: false,
    })
}

fn score(
    customer: Customer,
    primary: bool,
    remembered: Option<i64>,
    recent: &[i64],
    ringing_agents: &[String],
) -> Candidate {
    let mut score = 0;
    let mut reasons = Vec::new();
    if remembered == Some(customer.id) {
        score += 1000;
        reasons.push("picked by an agent for this number before".to_string());
    }
    if primary {
        score += 100;
        reasons.push("this is their primary number".into());
    }
    if let Some(rank) = recent.iter().position(|id| *id == customer.id) {
        score += 60 - 10 * rank as i64;
        reasons.push(if rank == 0 {
            "the last call from this number was theirs".into()
        } else {
            "called from this number before".into()
        });
    }
    if let Some(manager) = &customer.account_manager {
        if ringing_agents
            .iter()
            .any(|a| a.eq_ignore_ascii_case(manager))
        {
            score += 30;
            reasons.push(format!("{manager} is their account manager"));
        }
    }
    match customer.tier.as_str() {
        "A" => {
            score += 20;
            reasons.push("tier A".into());
        }
        "B" => score += 10,
        _ => {}
    }
    if customer.key_account {
        score += 15;
        reasons.push("key account".into());
    }
    if customer.provisional {
        score -= 50;
    }
    Candidate {
        customer,
        score,
        reasons,
    }
}

fn provisional_draft(number: &Normalized) -> CustomerDraft {
    CustomerDraft {
        name: format!(
            "New contact {}",
            number.e164.as_deref().unwrap_or(&number.raw)
        ),
        tier: "C".into(),
        consent_calls: true,
        provisional: true,
        phones: vec![NewPhone {
            normalized: number.clone(),
            kind: "other".into(),
            primary: true,
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: i64, tier: &str, manager: Option<&str>) -> Customer {
        Customer {
            id,
            external_id: None,
            name: format!("c{id}"),
            tier: tier.into(),
            key_account: false,
            account_manager: manager.map(String::from),
            birthday: None,
            timezone: None,
            language: None,
            consent_calls: true,
            notes: None,
            email: None,
            provisional: false,
            tags: vec![],
            phones: vec![],
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn remembered_choice_outranks_everything() {
        let a = score(
            customer(1, "A", Some("ann")),
            true,
            Some(2),
            &[1],
            &["ann".into()],
        );
        let b = score(customer(2, "C", None), false, Some(2), &[], &[]);
        assert!(b.score > a.score);
        assert!(b.reasons[0].contains("picked"));
    }

    #[test]
    fn primary_number_beats_tier_and_reasons_explain() {
        let a = score(customer(1, "A", None), false, None, &[], &[]);
        let b = score(customer(2, "C", None), true, None, &[], &[]);
        assert!(b.score > a.score);
        assert!(b.reasons.iter().any(|r| r.contains("primary")));
    }

    #[test]
    fn own_account_manager_ranks_up() {
        let a = score(
            customer(1, "B", Some("Bob")),
            false,
            None,
            &[],
            &["bob".into()],
        );
        let b = score(
            customer(2, "B", Some("Ann")),
            false,
            None,
            &[],
            &["bob".into()],
        );
        assert!(a.score > b.score);
        assert!(a.reasons.iter().any(|r| r.contains("account manager")));
    }

    #[test]
    fn trunk_country_applies_to_its_dialed_number() {
        let mut s = Settings::default();
        s.numbers.trunks.push(crate::settings::TrunkCountry {
            dialed: "+49 30 1234567".into(),
            country: "DE".into(),
        });
        let de = Party::new("+49301234567", None);
        assert_eq!(caller_country(&s, Some(&de)), "DE");
        assert_eq!(caller_country(&s, None), "CN");
        let p = party(&s, "030 9876543", Some(&de));
        assert_eq!(p.e164.as_deref(), Some("+49309876543"));
    }
}
