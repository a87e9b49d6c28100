//! Client-side pacing: a token bucket (GCRA) that makes callers wait for their slot, so
//! the service stays under an API's documented rate limit instead of collecting 429s.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rate: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed at once after an idle period.
    pub burst: u32,
}

/// Hands out request slots at a [`Rate`]. Shared by clones of one client, or (behind an
/// `Arc`) by every client that must stay under one common limit.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    allowance: Duration,
    theoretical_arrival: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer for `rate` (a non-positive rate means unlimited).
    pub fn new(rate: Rate) -> Self {
        let interval = if rate.per_second > 0.0 {
            Duration::from_secs_f64(1.0 / rate.per_second)
        } else {
            Duration::ZERO
        };
        Self {
            interval,
            allowance: interval.saturating_mul(rate.burst.saturating_sub(1)),
            theoretical_arrival: Mutex::new(None),
        }
    }

    /// Reserves the next slot and returns how long to wait for it.
    pub fn reserve(&self) -> Duration {
        if self.interval.is_zero() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut arrival = crate::locks::lock(&self.theoretical_arrival);
        let slot = arrival.map_or(now, |tat| tat.max(now));
        *arrival = Some(slot + self.interval);
        (slot.checked_sub(self.allowance).unwrap_or(now)).saturating_duration_since(now)
    }

    /// Waits for the next slot.
    pub async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_free_then_slots_are_spaced() {
        let pacer = Pacer::new(Rate {
            per_second: 10.0,
            burst: 3,
        });
        for _ in 0..3 {
            assert_eq!(pacer.reserve(), Duration::ZERO);
        }
        let fourth = pacer.reserve();
        assert!(
            fourth > Duration::from_millis(50) && fourth <= Duration::from_millis(100),
            "{fourth:?}"
        );
        let fifth = pacer.reserve();
        assert!(
            fifth > Duration::from_millis(150) && fifth <= Duration::from_millis(200),
            "{fifth:?}"
        );
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let pacer = Pacer::new(Rate {
            per_second: 0.0,
            burst: 1,
        });
        for _ in 0..100 {
            assert_eq!(pacer.reserve(), Duration::ZERO);
        }
    }
}
