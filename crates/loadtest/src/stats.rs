//! Pure arithmetic of the load tool: latency percentiles, throughput, ratios and the
//! lower bound of a full sync implied by the rate limits, latency and concurrency.

use std::time::Duration;

use serde::Serialize;

use personio_sync::pacer::Rate;

/// Summary of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// The `q`-quantile (0..=1) of sorted samples by nearest rank; `None` when empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Summarises latencies (any order).
pub fn summarise(samples: &[Duration]) -> LatencySummary {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    LatencySummary {
        count: sorted.len(),
        p50_ms: ms(percentile(&sorted, 0.50)),
        p99_ms: ms(percentile(&sorted, 0.99)),
        max_ms: ms(sorted.last().copied()),
    }
}

/// `numerator / denominator`, 0 when the denominator is not positive.
pub fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

/// The median of some values (mean of the middle two for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The limits in force during a full sync.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SyncLimits {
    /// Pace of `GET /v1/company/employees` (the Personio client's).
    pub list_rate: RateFigure,
    /// Pace of every Personio v1 call (the Personio client's).
    pub v1_rate: RateFigure,
    /// Simulated latency of every API call, in milliseconds.
    pub latency_ms: f64,
    /// Learn Amp writes in flight.
    pub concurrency: usize,
    /// Learn Amp requests per second allowed (None = unlimited).
    pub learnamp_rate: Option<f64>,
}

/// A rate in a serialisable shape.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateFigure {
    /// Sustained per second.
    pub per_second: f64,
    /// Burst.
    pub burst: f64,
}

impl From<Rate> for RateFigure {
    fn from(rate: Rate) -> Self {
        Self {
            per_second: rate.per_second,
            burst: f64::from(rate.burst),
        }
    }
}

/// The calls a full sync needed (successful ones; retries of 429s excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CallCounts {
    /// Personio employee list pages.
    pub list_pages: u64,
    /// Personio profile pictures fetched.
    pub pictures: u64,
    /// Every Personio v1 call (pages, pictures, attributes, tokens).
    pub personio_v1: u64,
    /// Learn Amp writes (creates, updates, avatars, invitations, teams).
    pub learnamp_writes: u64,
    /// Every Learn Amp call.
    pub learnamp_calls: u64,
}

/// The lower bound of a full sync, in seconds, with its parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LowerBound {
    /// The employee list: pages at the list rate, or pages one after another.
    pub list_s: f64,
    /// Every v1 call at the v1 rate (profile pictures dominate).
    pub personio_v1_s: f64,
    /// Learn Amp writes × latency ÷ concurrency, or calls ÷ the Learn Amp rate.
    pub learnamp_s: f64,
    /// The bound: the slowest resource (`max` of the three).
    pub bound_s: f64,
    /// A stricter bound for this design, which lists everyone before it writes:
    /// list, then the slower of the picture fetches and the Learn Amp writes.
    pub phased_s: f64,
}

fn after_burst(calls: u64, rate: RateFigure) -> f64 {
    if rate.per_second <= 0.0 {
        return 0.0;
    }
    (calls as f64 - rate.burst).max(0.0) / rate.per_second
}

/// Computes the lower bound the limits imply for the calls a sync needed.
pub fn lower_bound(limits: &SyncLimits, calls: &CallCounts) -> LowerBound {
    let latency_s = limits.latency_ms / 1000.0;
    let list_s =
        after_burst(calls.list_pages, limits.list_rate).max(calls.list_pages as f64 * latency_s);
    let personio_v1_s = after_burst(calls.personio_v1, limits.v1_rate).max(list_s);
    let pictures_s = after_burst(calls.pictures, limits.v1_rate);
    let by_latency = calls.learnamp_writes as f64 * latency_s / limits.concurrency.max(1) as f64;
    let by_rate = limits
        .learnamp_rate
        .filter(|rate| *rate > 0.0)
        .map_or(0.0, |rate| {
            after_burst(
                calls.learnamp_calls,
                RateFigure {
                    per_second: rate,
                    burst: rate,
                },
            )
        });
    let learnamp_s = by_latency.max(by_rate);
    LowerBound {
        list_s,
        personio_v1_s,
        learnamp_s,
        bound_s: personio_v1_s.max(learnamp_s),
        phased_s: list_s + pictures_s.max(learnamp_s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&samples, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&samples, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&samples, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&samples, 0.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 0.5), None);
        let summary = summarise(&ms(&[30, 10, 20]));
        assert_eq!(summary.count, 3);
        assert!((summary.p50_ms - 20.0).abs() < 1e-9);
        assert!((summary.max_ms - 30.0).abs() < 1e-9);
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(ratio(1.0, 4.0), 0.25);
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }

    fn limits(learnamp_rate: Option<f64>) -> SyncLimits {
        SyncLimits {
            list_rate: RateFigure {
                per_second: 4.8,
                burst: 10.0,
            },
            v1_rate: RateFigure {
                per_second: 30.0,
                burst: 30.0,
            },
            latency_ms: 20.0,
            concurrency: 8,
            learnamp_rate,
        }
    }

    #[test]
    fn the_slowest_resource_sets_the_bound() {
        let calls = CallCounts {
            list_pages: 100,
            pictures: 3_000,
            personio_v1: 3_102,
            learnamp_writes: 13_000,
            learnamp_calls: 13_010,
        };
        let bound = lower_bound(&limits(None), &calls);
        assert!((bound.list_s - 90.0 / 4.8).abs() < 1e-9, "{bound:?}");
        assert!((bound.personio_v1_s - 3_072.0 / 30.0).abs() < 1e-9);
        assert!((bound.learnamp_s - 13_000.0 * 0.02 / 8.0).abs() < 1e-9);
        assert_eq!(bound.bound_s, bound.personio_v1_s);
        assert!((bound.phased_s - (90.0 / 4.8 + 2_970.0 / 30.0)).abs() < 1e-9);
        let limited = lower_bound(&limits(Some(50.0)), &calls);
        assert!((limited.learnamp_s - 12_960.0 / 50.0).abs() < 1e-9);
        assert_eq!(limited.bound_s, limited.learnamp_s);
    }

    #[test]
    fn few_pages_are_bounded_by_latency() {
        let calls = CallCounts {
            list_pages: 3,
            ..CallCounts::default()
        };
        let bound = lower_bound(&limits(None), &calls);
        assert!((bound.list_s - 0.06).abs() < 1e-9);
    }
}
