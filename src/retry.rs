//! Bounded retries with exponential backoff and jitter: the one back-off of the service,
//! for API retries, tenant restarts and tenant-level retries.

use std::time::Duration;

use rand::Rng;

/// How often and how patiently a client retries a transient failure (429, 5xx, timeouts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 = no retry).
    pub max_attempts: u32,
    /// Delay cap of the first retry; doubles with each further attempt.
    pub base_delay: Duration,
    /// No single delay exceeds this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// A policy for tests and demos against local simulators: many quick retries.
    pub fn fast() -> Self {
        Self {
            max_attempts: 10,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(500),
        }
    }

    /// Whether another attempt may follow attempt number `attempt` (1-based).
    pub fn may_retry(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// The delay before retrying after attempt number `attempt` (1-based): the shared
    /// [`jittered_backoff`] from `base_delay`, at most `max_delay`. A server-given
    /// `Retry-After` wins when it is longer.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let jittered = jittered_backoff(self.base_delay, attempt, self.max_delay);
        match retry_after {
            Some(server_delay) if server_delay > jittered => server_delay,
            _ => jittered,
        }
    }
}

/// The wait before the next try of something that failed `failures` times in a row
/// (1-based): `base` doubling per failure, at most `max`, spread over its lower quarter
/// (75 % to 100 %) so that many tenants or calls failing together (an outage of a shared
/// API) do not retry in lockstep, while no wait ever exceeds `max`. The one back-off of
/// the service: API retries ([`RetryPolicy::delay`]), tenant restarts and tenant-level
/// retries.
pub fn jittered_backoff(base: Duration, failures: u32, max: Duration) -> Duration {
    let doubled = base
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
        .min(max);
    doubled.mul_f64(rand::rng().random_range(0.75..=1.0))
}

/// Reads a `Retry-After` header given in seconds (the HTTP-date form is ignored).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
        };
        for attempt in 1..=10 {
            let delay = policy.delay(attempt, None);
            assert!(delay <= Duration::from_millis(400), "{attempt}: {delay:?}");
        }
        assert!(policy.delay(1, None) <= Duration::from_millis(100));
        assert!(policy.delay(1, None) >= Duration::from_millis(50));
        assert!(policy.may_retry(4));
        assert!(!policy.may_retry(5));
    }

    #[test]
    fn backoff_doubles_stays_capped_and_spreads() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(300);
        for (failures, nominal) in [(1u32, 1u64), (2, 2), (3, 4), (6, 32), (12, 300), (40, 300)] {
            let delay = jittered_backoff(base, failures, max);
            let nominal = Duration::from_secs(nominal);
            assert!(
                delay >= nominal.mul_f64(0.75) && delay < nominal.mul_f64(1.25),
                "{failures}: {delay:?}"
            );
        }
        let distinct: std::collections::HashSet<Duration> =
            (0..50).map(|_| jittered_backoff(base, 3, max)).collect();
        assert!(distinct.len() > 10, "no spread: {distinct:?}");
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let policy = RetryPolicy::fast();
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }
}
