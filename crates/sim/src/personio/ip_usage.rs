//! v1 calls per source IP: Personio limits every v1 call by source IP (reference §9),
//! so the simulator counts them per caller address for tests to check the budget.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// v1 calls seen from one source IP (reference §9: Personio limits all v1 calls per IP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpUsage {
    /// v1 calls received (refused ones included).
    pub v1_requests: u64,
    /// v1 calls refused with 429 by the per-IP limit.
    pub v1_refused: u64,
    /// Most v1 calls received within any one second.
    pub peak_per_second: usize,
}

/// [`IpUsage`] plus the arrivals of the last second.
#[derive(Debug, Default)]
pub(crate) struct IpTally {
    usage: IpUsage,
    last_second: VecDeque<Instant>,
}

impl IpTally {
    /// The counts so far.
    pub(crate) fn usage(&self) -> IpUsage {
        self.usage.clone()
    }

    /// Counts one v1 call, `refused` by the per-IP limit or not.
    pub(crate) fn record(&mut self, refused: bool) {
        let now = Instant::now();
        while self
            .last_second
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
        {
            self.last_second.pop_front();
        }
        self.last_second.push_back(now);
        self.usage.v1_requests += 1;
        self.usage.v1_refused += u64::from(refused);
        self.usage.peak_per_second = self.usage.peak_per_second.max(self.last_second.len());
    }
}
