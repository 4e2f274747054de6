//! The simulated dialer (`outbound.dialer = "simulated"`): for demos and sites without a PBX. It
//! places no call; after `simulated_delay_ms` it reports the next outcome from
//! `outbound.simulated_outcomes`, in turn. Logged as a simulation at start-up, so nobody mistakes
//! it for real dialing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::dialer::{DialOutcome, DialRequest, Dialer};

pub struct SimulatedDialer {
    outcomes: Vec<DialOutcome>,
    next: Arc<AtomicUsize>,
    delay: Duration,
}

impl SimulatedDialer {
    pub fn new(outcomes: &[String], delay: Duration) -> Self {
        let outcomes: Vec<DialOutcome> = outcomes
            .iter()
            .map(|o| match o.as_str() {
                "busy" => DialOutcome::Busy,
                "no_answer" => DialOutcome::NoAnswer,
                "failed" => DialOutcome::Failed {
                    cause: "simulated".into(),
                },
                _ => DialOutcome::Answered,
            })
            .collect();
        Self {
            outcomes: if outcomes.is_empty() {
                vec![DialOutcome::Answered]
            } else {
                outcomes
            },
            next: Arc::new(AtomicUsize::new(0)),
            delay,
        }
    }
}

impl Dialer for SimulatedDialer {
    fn name(&self) -> String {
        "simulated".into()
    }

    fn place(&self, request: DialRequest) -> BoxFuture<'static, DialOutcome> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let outcome = self.outcomes[i % self.outcomes.len()].clone();
        let delay = self.delay;
        Box::pin(async move {
            tracing::info!(
                task = request.task_id,
                attempt = request.attempt_id,
                outcome = outcome.as_str(),
                "simulated dial (no call placed)"
            );
            tokio::time::sleep(delay).await;
            outcome
        })
    }
}
