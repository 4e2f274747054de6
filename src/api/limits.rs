//! HTTP rate limits, per client address and per bearer token: token buckets refilled at
//! `http.rate_limit_per_address` / `http.rate_limit_per_token` requests a second, holding twice
//! that as burst. A request over either limit gets 429 with `Retry-After`. The bucket maps are
//! bounded: idle buckets are dropped, and past `MAX_BUCKETS` the oldest are, so a flood of new
//! addresses or made-up tokens cannot grow memory.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

const MAX_BUCKETS: usize = 100_000;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The limiter shared by all requests.
pub struct RateLimiter {
    per_address: f64,
    per_token: f64,
    addresses: Mutex<HashMap<IpAddr, Bucket>>,
    tokens: Mutex<HashMap<u64, Bucket>>,
    pub rejected: AtomicU64,
}

fn take<K: std::hash::Hash + Eq + Copy>(
    map: &Mutex<HashMap<K, Bucket>>,
    key: K,
    rate: f64,
) -> Result<(), f64> {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    if map.len() >= MAX_BUCKETS {
        // Full buckets of idle clients carry no information: drop them first.
        map.retain(|_, b| now.duration_since(b.last).as_secs_f64() * rate < 2.0 * rate);
        if map.len() >= MAX_BUCKETS {
            map.clear();
        }
    }
    let bucket = map.entry(key).or_insert(Bucket {
        tokens: 2.0 * rate,
        last: now,
    });
    let refill = now.duration_since(bucket.last).as_secs_f64() * rate;
    bucket.tokens = (bucket.tokens + refill).min(2.0 * rate);
    bucket.last = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        Ok(())
    } else {
        Err((1.0 - bucket.tokens) / rate)
    }
}

impl RateLimiter {
    /// Limits in requests a second; 0 turns that limit off.
    pub fn new(per_address: u32, per_token: u32) -> Self {
        Self {
            per_address: f64::from(per_address),
            per_token: f64::from(per_token),
            addresses: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            rejected: AtomicU64::new(0),
        }
    }

    /// `Err(seconds to wait)` when the request is over a limit.
    pub fn check(&self, address: Option<IpAddr>, token: Option<&str>) -> Result<(), f64> {
        if self.per_address > 0.0 {
            if let Some(ip) = address {
                take(&self.addresses, ip, self.per_address)?;
            }
        }
        if self.per_token > 0.0 {
            if let Some(token) = token {
                use std::hash::Hasher;
                // Keyed by a hash so the map never holds tokens; a fixed hasher keeps the key stable.
                let mut h = std::hash::DefaultHasher::new();
                h.write(token.as_bytes());
                take(&self.tokens, h.finish(), self.per_token)?;
            }
        }
        Ok(())
    }
}

/// The middleware: applies the limits to every request under it.
pub async fn limit(
    State(limiter): State<std::sync::Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (parts, body) = request.into_parts();
    let token = super::request_token(&parts);
    let request = Request::from_parts(parts, body);
    match limiter.check(address, token.as_deref()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            limiter.rejected.fetch_add(1, Ordering::Relaxed);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests; slow down",
            )
            .into_response();
            let secs = wait.ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_pass_then_the_limit_bites_per_key() {
        let l = RateLimiter::new(5, 0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..10 {
            assert!(l.check(Some(a), None).is_ok());
        }
        assert!(
            l.check(Some(a), None).is_err(),
            "burst of twice the rate, then refused"
        );
        assert!(
            l.check(Some(b), None).is_ok(),
            "another address has its own bucket"
        );
    }

    #[test]
    fn tokens_are_limited_separately_and_zero_turns_limits_off() {
        let l = RateLimiter::new(0, 2);
        for _ in 0..4 {
            assert!(l.check(None, Some("t1")).is_ok());
        }
        assert!(l.check(None, Some("t1")).is_err());
        assert!(l.check(None, Some("t2")).is_ok());
        assert!(l.check(Some("192.0.2.1".parse().unwrap()), None).is_ok());
    }
}
