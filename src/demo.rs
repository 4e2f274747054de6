//! The built-in demo data set for `serve --demo`: a few hundred customers across tiers, with
//! history, complaints and vehicles due for service, plus agents with known tokens.
//!
//! It is generated from a fixed seed, so every demo looks the same, and it is loaded only into a
//! database that holds no customers yet. The demo tokens are fixed and documented (README): they
//! exist for trying ringside out, never for production.

use std::net::SocketAddr;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::auth::{Role, hash_token};
use crate::storage::customers::{AssetDraft, CustomerDraft, NewPhone};
use crate::storage::interactions::NewInteraction;
use crate::storage::{Result, Storage, now_ms};

/// The demo accounts: name, role, extensions, token.
pub const DEMO_AGENTS: &[(&str, Role, &[&str], &str)] = &[
    ("demo", Role::Agent, &["1001"], "demo-agent-token"),
    ("lihua", Role::Agent, &["1002"], "demo-agent2-token"),
    (
        "demo-supervisor",
        Role::Supervisor,
        &[],
        "demo-supervisor-token",
    ),
    ("demo-admin", Role::Admin, &[], "demo-admin-token"),
    ("demo-pbx", Role::Pbx, &[], "demo-pbx-token"),
];

/// Well-known demo callers (documented in the README).
pub const VIP_NUMBER: &str = "+8613800138000";
pub const SHARED_NUMBER: &str = "+8613900139000";

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "建华", "晓东",
];
const WESTERN: &[&str] = &[
    "Anna Schmidt",
    "James Miller",
    "Sofia Rossi",
    "Lukas Weber",
    "Emma Dubois",
    "Oliver Brown",
    "Mia Fischer",
    "Noah Wilson",
];
const MODELS: &[&str] = &[
    "Sagitar 1.4T",
    "Magotan 2.0T",
    "Tiguan L",
    "Lavida Plus",
    "ID.4 CROZZ",
    "Passat 330TSI",
    "Bora 1.5L",
];
const NOTES: &[&str] = &[
    "Asked about the next service interval",
    "Confirmed appointment for Saturday",
    "Unhappy with waiting time at the workshop",
    "Interested in extended warranty",
    "Requested a call back after 6 pm",
    "Satisfied with the repair",
    "Changed address",
];
const DISPOSITIONS: &[&str] = &[
    "resolved",
    "info_given",
    "service_booked",
    "callback_requested",
    "unresolved",
    "survey_done",
];

/// Loads the demo set if the database has no customers; returns whether it loaded anything.
pub async fn load(storage: &Storage) -> Result<bool> {
    ensure_agents(storage).await?;
    if storage.count_customers().await? > 0 {
        return Ok(false);
    }
    let mut rng = StdRng::seed_from_u64(20_261_123);
    let today = Utc::now().date_naive();
    let agents = storage.list_agents().await?;
    let agent_id = |name: &str| agents.iter().find(|a| a.name == name).map(|a| a.id);
    let managers = ["demo", "lihua"];

    let mut customers = Vec::new();
    // The showcase caller: tier A key account, birthday today, service due, open complaint.
    customers.push(showcase(today));
    // Two customers on one family number, to show ranked candidates.
    customers.push(family_member("张伟", "A", Some("demo"), today));
    customers.push(family_member("张丽", "C", None, today));
    for i in 0..297 {
        let western = i % 12 == 0;
        let name = if western {
            WESTERN[rng.gen_range(0..WESTERN.len())].to_string()
        } else {
            format!(
                "{}{}",
                SURNAMES[rng.gen_range(0..SURNAMES.len())],
                GIVEN[rng.gen_range(0..GIVEN.len())]
            )
        };
        let tier = match rng.gen_range(0..100) {
            0..=9 => "A",
            10..=39 => "B",
            _ => "C",
        };
        let mobile = format!(
            "+861{}{:08}",
            [3, 5, 8][rng.gen_range(0..3)] * 10 + rng.gen_range(0..10),
            rng.gen_range(0..100_000_000u32)
        );
        let mut phones = vec![NewPhone {
            normalized: crate::phone::normalize(&mobile, "CN"),
            kind: "mobile".into(),
            primary: true,
        }];
        if rng.gen_bool(0.3) {
            let landline = format!(
                "0{} {:04}-{:04}",
                ["10", "21", "20", "755"][rng.gen_range(0..4)],
                rng.gen_range(2000..9999),
                rng.gen_range(0..10_000)
            );
            phones.push(NewPhone {
                normalized: crate::phone::normalize(&landline, "CN"),
                kind: "work".into(),
                primary: false,
            });
        }
        let birthday = NaiveDate::from_ymd_opt(
            rng.gen_range(1955..2002),
            rng.gen_range(1..=12),
            rng.gen_range(1..=28),
        )
        .map(|d| d.format("%Y-%m-%d").to_string());
        let mut assets = Vec::new();
        if rng.gen_bool(0.7) {
            let months = [6i64, 12][rng.gen_range(0..2)];
            let last = today - Duration::days(rng.gen_range(20..400));
            let vin = format!(
                "LSV{}{:011}",
                ["A", "B", "C", "D"][rng.gen_range(0..4)],
                rng.gen_range(0..100_000_000_000u64)
            );
            assets.push(AssetDraft {
                kind: "vehicle".into(),
                plate: Some(format!("沪A{:05}", rng.gen_range(10_000..99_999))),
                vin: Some(vin),
                model: Some(MODELS[rng.gen_range(0..MODELS.len())].into()),
                purchase_date: Some(
                    (last - Duration::days(rng.gen_range(100..1500)))
                        .format("%Y-%m-%d")
                        .to_string(),
                ),
                last_service_date: Some(last.format("%Y-%m-%d").to_string()),
                service_interval_months: Some(months),
                service_interval_km: Some(if months == 6 { 7_500 } else { 15_000 }),
                mileage_km: Some(rng.gen_range(5_000..120_000)),
                next_service_due: crate::import::next_service_due(
                    Some(&last.format("%Y-%m-%d").to_string()),
                    Some(months),
                ),
            });
        }
        customers.push(CustomerDraft {
            name,
            tier: tier.into(),
            key_account: tier == "A" && rng.gen_bool(0.5),
            account_manager: if tier == "A" || rng.gen_bool(0.2) {
                Some(managers[rng.gen_range(0..2)].into())
            } else {
                None
            },
            birthday,
            timezone: Some(
                if western {
                    "Europe/Berlin"
                } else {
                    "Asia/Shanghai"
                }
                .into(),
            ),
            language: Some(if western { "en" } else { "zh" }.into()),
            consent_calls: rng.gen_bool(0.95),
            tags: match rng.gen_range(0..4) {
                0 => vec!["fleet".into()],
                1 => vec!["new-owner".into()],
                _ => Vec::new(),
            },
            phones,
            assets,
            ..Default::default()
        });
    }

    for (i, draft) in customers.iter().enumerate() {
        let customer = storage.create_customer(draft).await?;
        let number = customer.phones.first().cloned();
        let history = if i < 3 { 4 } else { rng.gen_range(0..4) };
        for h in 0..history {
            let started = now_ms() - rng.gen_range(1..90) * 86_400_000 - h * 3_600_000;
            let inbound = rng.gen_bool(0.7);
            let answered = rng.gen_bool(0.85);
            storage
                .add_interaction(&NewInteraction {
                    customer_id: Some(customer.id),
                    call_id: Some(format!("demo-{}-{h}", customer.id)),
                    kind: "call".into(),
                    direction: Some(if inbound { "inbound" } else { "outbound" }.into()),
                    number_raw: number.as_ref().map(|p| p.raw.clone()),
                    number_e164: number.as_ref().and_then(|p| p.e164.clone()),
                    agent_id: if answered {
                        agent_id(managers[rng.gen_range(0..2)])
                    } else {
                        None
                    },
                    started_at: started,
                    answered_at: answered.then_some(started + 8_000),
                    ended_at: Some(started + rng.gen_range(30_000..600_000)),
                    outcome: Some(if answered { "answered" } else { "missed" }.into()),
                    disposition: answered
                        .then(|| DISPOSITIONS[rng.gen_range(0..DISPOSITIONS.len())].to_string()),
                    note: answered.then(|| NOTES[rng.gen_range(0..NOTES.len())].to_string()),
                    satisfaction: (answered && rng.gen_bool(0.3)).then(|| rng.gen_range(3..=5)),
                })
                .await?;
        }
        if i == 0 || (i > 3 && rng.gen_bool(0.04)) {
            let owner = agent_id(managers[rng.gen_range(0..2)]);
            storage
                .open_complaint(
                    customer.id,
                    "Repair took three days longer than promised; wants a courtesy car next time",
                    owner,
                    owner,
                )
                .await?;
        }
    }
    Ok(true)
}

fn showcase(today: NaiveDate) -> CustomerDraft {
    let birthday = NaiveDate::from_ymd_opt(1978, today.month(), today.day())
        .or_else(|| NaiveDate::from_ymd_opt(1978, 3, 1));
    CustomerDraft {
        external_id: Some("DEMO-0001".into()),
        name: "王建国".into(),
        tier: "A".into(),
        key_account: true,
        account_manager: Some("demo".into()),
        birthday: birthday.map(|d| d.format("%Y-%m-%d").to_string()),
        timezone: Some("Asia/Shanghai".into()),
        language: Some("zh".into()),
        consent_calls: true,
        notes: Some("Fleet manager of a logistics company; prefers calls in the morning".into()),
        tags: vec!["fleet".into(), "vip".into()],
        phones: vec![NewPhone {
            normalized: crate::phone::normalize(VIP_NUMBER, "CN"),
            kind: "mobile".into(),
            primary: true,
        }],
        assets: vec![AssetDraft {
            kind: "vehicle".into(),
            plate: Some("沪A88888".into()),
            vin: Some("LSVDEMO0000000001".into()),
            model: Some("Magotan 2.0T".into()),
            purchase_date: Some((today - Duration::days(900)).format("%Y-%m-%d").to_string()),
            last_service_date: Some((today - Duration::days(178)).format("%Y-%m-%d").to_string()),
            service_interval_months: Some(6),
            service_interval_km: Some(7_500),
            mileage_km: Some(48_200),
            next_service_due: Some((today + Duration::days(5)).format("%Y-%m-%d").to_string()),
        }],
        ..Default::default()
    }
}

fn family_member(name: &str, tier: &str, manager: Option<&str>, today: NaiveDate) -> CustomerDraft {
    CustomerDraft {
        name: name.into(),
        tier: tier.into(),
        account_manager: manager.map(String::from),
        birthday: Some(
            (today - Duration::days(365 * 40 + 3))
                .format("%Y-%m-%d")
                .to_string(),
        ),
        timezone: Some("Asia/Shanghai".into()),
        language: Some("zh".into()),
        consent_calls: true,
        tags: vec!["family".into()],
        phones: vec![
            NewPhone {
                normalized: crate::phone::normalize("010 6552 8899", "CN"),
                kind: "home".into(),
                primary: tier == "A",
            },
            NewPhone {
                normalized: crate::phone::normalize(SHARED_NUMBER, "CN"),
                kind: "mobile".into(),
                primary: false,
            },
        ],
        ..Default::default()
    }
}

async fn ensure_agents(storage: &Storage) -> Result<()> {
    for (name, role, extensions, token) in DEMO_AGENTS {
        match storage.agent_by_name(name).await {
            Ok(agent) => {
                // Re-issue the known token if someone revoked it; a duplicate hash is a no-op.
                if storage.token_holder(&hash_token(token)).await?.is_none() {
                    let _ = storage.add_token(agent.id, &hash_token(token), None).await;
                }
            }
            Err(crate::storage::StorageError::NotFound) => {
                let exts: Vec<String> = extensions.iter().map(|e| e.to_string()).collect();
                storage
                    .create_agent(name, *role, &exts, &hash_token(token), None)
                    .await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Tells the newcomer what to do next.
pub fn print_banner(loaded: bool, http: SocketAddr) {
    let host = if http.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        http.ip().to_string()
    };
    println!();
    println!(
        "ringside demo {}",
        if loaded {
            "data loaded"
        } else {
            "(database already had customers; demo accounts ensured)"
        }
    );
    println!(
        "  console:    http://{host}:{}/?token=demo-agent-token   (agent `demo`, extension 1001)",
        http.port()
    );
    for (name, role, _, token) in DEMO_AGENTS {
        println!("  token {:<16} {:<10} {token}", name, role.as_str());
    }
    println!("  try:        ringside simulate call --from \"138 0013 8000\" --to 1001");
    println!(
        "  outbound:   tasks (return visits, reminders, callbacks) are offered on the console;"
    );
    println!(
        "              without a PBX the dialer is SIMULATED (outbound.dialer), no real calls are placed"
    );
    println!();
}
