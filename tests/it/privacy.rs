//! Customers' data rights and the audit trail.

use ringside::auth::Role;
use ringside::storage::now_ms;
use ringside::storage::tasks::NewTask;
use serde_json::{Value, json};

use crate::support::spawn_app_with;

#[tokio::test]
async fn export_gathers_everything_and_erasure_leaves_only_a_hash_that_blocks_calls() {
    let app = spawn_app_with(|s| s.outbound.enabled = false).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let admin = app.admin_token.clone();
    let c: Value = app
        .post(
            "/api/v1/customers",
            &ann,
            &json!({"name": "Erase Me", "phones": ["13800138099"], "notes": "secret"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = c["id"].as_i64().unwrap();
    app.post(
        "/api/v1/interactions",
        &ann,
        &json!({"customer_id": id, "note": "private talk"}),
    )
    .await;
    app.get(&format!("/api/v1/customers/{id}"), &ann).await;

    assert_eq!(
        app.get(&format!("/api/v1/customers/{id}/export"), &ann)
            .await
            .status(),
        403
    );
    let export: Value = app
        .get(&format!("/api/v1/customers/{id}/export"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["customer"]["name"], "Erase Me");
    assert_eq!(export["interactions"][0]["note"], "private talk");
    assert!(
        export["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "view")
    );

    assert_eq!(
        app.post(&format!("/api/v1/customers/{id}/erase"), &ann, &json!({}))
            .await
            .status(),
        403
    );
    let erased: Value = app
        .post(&format!("/api/v1/customers/{id}/erase"), &admin, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(erased["erased"], true);
    assert_eq!(erased["numbers_suppressed"], 1);

    // Gone from search, reads and exports.
    let found: Value = app
        .get("/api/v1/customers?phone=13800138099", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found, json!([]));
    let found: Value = app
        .get("/api/v1/customers?q=Erase", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found, json!([]));
    assert_eq!(
        app.get(&format!("/api/v1/customers/{id}"), &admin)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get(&format!("/api/v1/customers/{id}/export"), &admin)
            .await
            .status(),
        404
    );
    // The interaction kept its time for statistics but lost its text and links.
    let all: Value = app
        .get("/api/v1/interactions?limit=500", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|i| i["note"] != "private talk")
    );
    // The number is in clear nowhere on the do-not-call list, yet it is blocked.
    let dnc: Value = app.get("/api/v1/dnc", &admin).await.json().await.unwrap();
    assert_eq!(dnc, json!([]));
    let s = &app.state.storage;
    assert!(
        s.is_dnc(
            "+8613800138099",
            Some(&s.number_hash("+8613800138099").await.unwrap())
        )
        .await
        .unwrap()
    );
    let (task, _) = s
        .create_task(&NewTask {
            kind: "campaign".into(),
            number_e164: "+8613800138099".into(),
            not_before: now_ms() - 1,
            max_attempts: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let claimed = s.claim_due(now_ms(), 5, 60_000).await.unwrap();
    let fence = claimed.iter().find(|t| t.id == task.id).unwrap().fence;
    let refused = s
        .start_attempt(
            &ringside::storage::tasks::AttemptStart {
                task_id: task.id,
                fence,
                agent_id: None,
                dialer: "test",
                lease_ms: 15 * 60_000,
            },
            |_| 0,
            |_, facts| {
                if facts.on_dnc {
                    Err("dnc".into())
                } else {
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
    assert!(
        refused.is_err(),
        "an erased customer's number is never dialed"
    );

    // An erased caller pops as unknown, and no new record is made of them.
    let mut console = app.console(&ann).await;
    app.call_event(
        json!({"event": "ringing", "call_id": "e1", "from": "13800138099", "agent": "1001"}),
    )
    .await;
    let pop = console.next_of("screen_pop").await;
    assert!(pop["customer"].is_null(), "{pop}");
    let found: Value = app
        .get("/api/v1/customers?phone=13800138099", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found, json!([]));

    // The audit trail saw each access, and cannot be altered.
    let audit: Value = app
        .get(&format!("/api/v1/audit?customer_id={id}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["create", "view", "export", "erase"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert_eq!(app.get("/api/v1/audit", &ann).await.status(), 403);
    assert!(
        sqlx::query("UPDATE audit_log SET action = 'nothing'")
            .execute(s.pool())
            .await
            .is_err()
    );
    assert!(
        sqlx::query("DELETE FROM audit_log")
            .execute(s.pool())
            .await
            .is_err()
    );
    app.stop().await;
}
