//! Process-wide metrics on `prometheus-client`, rendered in the Prometheus text format
//! (0.0.4) on `GET /metrics`.
//!
//! Series labelled with a `tenant_id` name a customer, so they live in their own
//! registry served only on the private metrics listener (`server.metrics_listen`); the
//! public `/metrics` of the front door renders the others ([`render_public`]).
//!
//! Recording takes no process-wide lock: counters and [`AtomicHistogram`]s are atomics;
//! a labelled series is found under its family's read lock (a write lock only the first
//! time a label set is seen), and the webhook outcome counters are looked up once and
//! kept, so a delivery costs one atomic add.

mod histogram;

use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge;
use prometheus_client::registry::Registry;

pub use histogram::AtomicHistogram;
use histogram::{LATENCY_BUCKETS, SYNC_BUCKETS};

/// The outcomes a webhook delivery is counted under, by answer status.
const WEBHOOK_OUTCOMES: [(u16, &str); 8] = [
    (200, "stored"),
    (401, "unauthorized"),
    (404, "unknown_key"),
    (400, "bad_request"),
    (413, "too_large"),
    (408, "incomplete"),
    (503, "storage_unavailable"),
    (0, "other"),
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FenceLabels {
    by: &'static str,
}

/// Who refused a commit for a tenant whose lease this node no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FencedBy {
    /// This node itself: it knows it holds no lease (no fence set, or a handle whose
    /// tree was retired when the lease was lost).
    Node,
    /// The database: the lease row names another owner or epoch, or has expired (a
    /// node that paused past its lease and does not know it yet).
    Database,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    system: &'static str,
    endpoint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    system: &'static str,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant_id: String,
}

type HistogramFamily<S> = Family<S, AtomicHistogram, fn() -> AtomicHistogram>;

struct Metrics {
    /// Series that name no tenant: served on both listeners.
    public: Registry,
    /// Series labelled by `tenant_id`: served on the private listener only.
    private: Registry,
    webhooks: Family<OutcomeLabels, Counter>,
    /// The webhook counters, looked up once per outcome.
    webhook_counters: [OnceLock<Counter>; WEBHOOK_OUTCOMES.len()],
    webhook_latency: AtomicHistogram,
    api_calls: Family<CallLabels, Counter>,
    api_retries: Family<EndpointLabels, Counter>,
    api_latency: HistogramFamily<EndpointLabels>,
    events_applied: Family<TenantLabels, Counter>,
    full_sync: HistogramFamily<TenantLabels>,
    fenced_writes: Family<FenceLabels, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let webhooks = Family::default();
    let webhook_latency = AtomicHistogram::new(LATENCY_BUCKETS);
    let api_calls = Family::default();
    let api_retries = Family::default();
    let api_latency: HistogramFamily<EndpointLabels> =
        Family::new_with_constructor(|| AtomicHistogram::new(LATENCY_BUCKETS));
    let events_applied = Family::default();
    let full_sync: HistogramFamily<TenantLabels> =
        Family::new_with_constructor(|| AtomicHistogram::new(SYNC_BUCKETS));
    // `prometheus-client` adds `_total` to counter names and a full stop to help texts.
    let mut public = Registry::default();
    public.register(
        "personio_sync_webhooks_received",
        "Webhook deliveries received, by outcome",
        webhooks.clone(),
    );
    public.register(
        "personio_sync_webhook_to_learnamp_seconds",
        "Time from a webhook delivery's receipt to its event being applied in Learn Amp",
        webhook_latency.clone(),
    );
    public.register(
        "personio_sync_api_calls",
        "Outbound API calls, by system, endpoint and status",
        api_calls.clone(),
    );
    public.register(
        "personio_sync_api_retries",
        "Retries of outbound API calls, by system and endpoint",
        api_retries.clone(),
    );
    public.register(
        "personio_sync_api_call_seconds",
        "Latency of outbound API calls (each attempt), by system and endpoint",
        api_latency.clone(),
    );
    let fenced_writes = Family::default();
    public.register(
        "personio_sync_fenced_writes",
        "Tenant commits refused because this node no longer holds the tenant's lease, by who refused (node, database)",
        fenced_writes.clone(),
    );
    let mut private = Registry::default();
    private.register(
        "personio_sync_events_applied",
        "Webhook events applied, by tenant",
        events_applied.clone(),
    );
    private.register(
        "personio_sync_full_sync_seconds",
        "Duration of full syncs, by tenant",
        full_sync.clone(),
    );
    Metrics {
        public,
        private,
        webhooks,
        webhook_counters: Default::default(),
        webhook_latency,
        api_calls,
        api_retries,
        api_latency,
        events_applied,
        full_sync,
        fenced_writes,
    }
});

/// A webhook delivery was answered with `status`.
pub fn webhook_received(status: u16) {
    let index = WEBHOOK_OUTCOMES
        .iter()
        .position(|(code, _)| *code == status)
        .unwrap_or(WEBHOOK_OUTCOMES.len() - 1);
    let metrics = &*METRICS;
    metrics.webhook_counters[index]
        .get_or_init(|| {
            metrics.webhooks.get_or_create_owned(&OutcomeLabels {
                outcome: WEBHOOK_OUTCOMES[index].1,
            })
        })
        .inc();
}

/// Webhook events received at `received_at` (RFC 3339, as the inbox stores them) were
/// applied in Learn Amp at `now`; records each one's latency. An unreadable time is
/// skipped.
pub fn webhooks_applied<'a>(received_at: impl IntoIterator<Item = &'a str>, now: DateTime<Utc>) {
    for received in received_at {
        if let Ok(received) = DateTime::parse_from_rfc3339(received) {
            let seconds = (now - received.with_timezone(&Utc)).num_microseconds();
            let seconds = seconds.unwrap_or(i64::MAX).max(0) as f64 / 1e6;
            METRICS.webhook_latency.observe(seconds);
        }
    }
}

/// An outbound API call answered `status` (`"error"` for a transport failure) after
/// `elapsed`.
pub fn api_call(system: &'static str, endpoint: &str, status: &str, elapsed: Duration) {
    let endpoint = endpoint.to_string();
    METRICS
        .api_calls
        .get_or_create(&CallLabels {
            system,
            endpoint: endpoint.clone(),
            status: status.to_string(),
        })
        .inc();
    METRICS
        .api_latency
        .get_or_create(&EndpointLabels { system, endpoint })
        .observe(elapsed.as_secs_f64());
}

/// An outbound API call is retried after a transient failure.
pub fn api_retry(system: &'static str, endpoint: &str) {
    METRICS
        .api_retries
        .get_or_create(&EndpointLabels {
            system,
            endpoint: endpoint.to_string(),
        })
        .inc();
}

/// A request path with its ids replaced by `{id}`, so label values stay few.
pub fn endpoint_template(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let mut previous = "";
    path.split('/')
        .map(|segment| {
            let numeric = !segment.is_empty() && segment.chars().all(|c| c.is_ascii_digit());
            let templated = if numeric || previous.starts_with("by_") {
                "{id}"
            } else {
                segment
            };
            previous = segment;
            templated
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `count` inbox events were applied for `tenant_id`.
pub fn events_applied(tenant_id: &str, count: u64) {
    METRICS
        .events_applied
        .get_or_create(&TenantLabels {
            tenant_id: tenant_id.to_string(),
        })
        .inc_by(count);
}

/// A full sync of `tenant_id` took `seconds`.
pub fn sync_finished(tenant_id: &str, seconds: f64) {
    METRICS
        .full_sync
        .get_or_create(&TenantLabels {
            tenant_id: tenant_id.to_string(),
        })
        .observe(seconds);
}

/// A commit for a tenant was refused by its lease fence (cluster mode): nothing of it
/// was written.
pub fn fenced_write(by: FencedBy) {
    let by = match by {
        FencedBy::Node => "node",
        FencedBy::Database => "database",
    };
    METRICS
        .fenced_writes
        .get_or_create(&FenceLabels { by })
        .inc();
}

/// A gauge sample computed at render time.
pub struct Gauge {
    /// Metric name.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Label pairs.
    pub labels: Vec<(&'static str, String)>,
    /// Value.
    pub value: f64,
}

/// The label that names a tenant.
const TENANT_LABEL: &str = "tenant_id";

fn names_no_tenant(labels: &[(&str, String)]) -> bool {
    labels.iter().all(|(key, _)| *key != TENANT_LABEL)
}

/// Renders every series plus the gauges given (samples of one name adjacent): what
/// the private metrics listener serves.
pub fn render(gauges: &[Gauge]) -> String {
    let mut out = String::new();
    encode(&mut out, &METRICS.public);
    encode(&mut out, &METRICS.private);
    encode(&mut out, &gauge_registry(gauges, |_| true));
    out
}

/// Like [`render`] without the series that name a tenant: what the public front door
/// serves.
pub fn render_public(gauges: &[Gauge]) -> String {
    let mut out = String::new();
    encode(&mut out, &METRICS.public);
    encode(&mut out, &gauge_registry(gauges, names_no_tenant));
    out
}

fn encode(out: &mut String, registry: &Registry) {
    // Writing to a `String` cannot fail.
    let _ = prometheus_text::encode(out, registry);
}

type GaugeFamily<T, A> = Family<Vec<(&'static str, String)>, gauge::Gauge<T, A>>;

/// A registry holding `gauges` that `keep` admits, one family per name; a family whose
/// values are all whole numbers renders them as integers.
fn gauge_registry(gauges: &[Gauge], keep: impl Fn(&[(&str, String)]) -> bool) -> Registry {
    let mut registry = Registry::default();
    let kept: Vec<&Gauge> = gauges.iter().filter(|gauge| keep(&gauge.labels)).collect();
    for group in kept.chunk_by(|a, b| a.name == b.name) {
        let (name, help) = (group[0].name, group[0].help.trim_end_matches('.'));
        if group.iter().all(|gauge| gauge.value.fract() == 0.0) {
            let family = GaugeFamily::<i64, std::sync::atomic::AtomicI64>::default();
            for gauge in group {
                family.get_or_create(&gauge.labels).set(gauge.value as i64);
            }
            registry.register(name, help, family);
        } else {
            let family = GaugeFamily::<f64, std::sync::atomic::AtomicU64>::default();
            for gauge in group {
                family.get_or_create(&gauge.labels).set(gauge.value);
            }
            registry.register(name, help, family);
        }
    }
    registry
}

#[cfg(test)]
mod tests;
