//! Process-wide counters, rendered in the Prometheus text format on `GET /metrics`.
//!
//! Series labelled with a `tenant_id` name a customer, so they are served only on the
//! private metrics listener (`server.metrics_listen`); the public `/metrics` of the
//! front door renders the others ([`render_public`]).

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

use crate::locks::lock;

/// A counter family: label values → count.
type Family = BTreeMap<Vec<(&'static str, String)>, f64>;

struct Registry {
    counters: BTreeMap<&'static str, (&'static str, Family)>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| {
    Mutex::new(Registry {
        counters: BTreeMap::new(),
    })
});

fn add(name: &'static str, help: &'static str, labels: Vec<(&'static str, String)>, value: f64) {
    let mut registry = lock(&REGISTRY);
    let (_, family) = registry
        .counters
        .entry(name)
        .or_insert_with(|| (help, Family::new()));
    *family.entry(labels).or_insert(0.0) += value;
}

/// A webhook delivery was answered with `status`.
pub fn webhook_received(status: u16) {
    let outcome = match status {
        200 => "stored",
        401 => "unauthorized",
        404 => "unknown_key",
        400 => "bad_request",
        413 => "too_large",
        503 => "storage_unavailable",
        _ => "other",
    };
    add(
        "personio_sync_webhooks_received_total",
        "Webhook deliveries received, by outcome.",
        vec![("outcome", outcome.to_string())],
        1.0,
    );
}

/// An outbound API call answered `status` (`"error"` for a transport failure).
pub fn api_call(system: &'static str, endpoint: &str, status: &str) {
    add(
        "personio_sync_api_calls_total",
        "Outbound API calls, by system, endpoint and status.",
        vec![
            ("system", system.to_string()),
            ("endpoint", endpoint.to_string()),
            ("status", status.to_string()),
        ],
        1.0,
    );
}

/// An outbound API call is retried after a transient failure.
pub fn api_retry(system: &'static str, endpoint: &str) {
    add(
        "personio_sync_api_retries_total",
        "Retries of outbound API calls, by system and endpoint.",
        vec![
            ("system", system.to_string()),
            ("endpoint", endpoint.to_string()),
        ],
        1.0,
    );
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
    add(
        "personio_sync_events_applied_total",
        "Webhook events applied, by tenant.",
        vec![("tenant_id", tenant_id.to_string())],
        count as f64,
    );
}

/// A full sync of `tenant_id` took `seconds`.
pub fn sync_finished(tenant_id: &str, seconds: f64) {
    let labels = vec![("tenant_id", tenant_id.to_string())];
    add(
        "personio_sync_full_sync_seconds_sum",
        "Total seconds spent in full syncs, by tenant.",
        labels.clone(),
        seconds,
    );
    add(
        "personio_sync_full_sync_seconds_count",
        "Full syncs finished, by tenant.",
        labels,
        1.0,
    );
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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

/// Renders every counter plus the gauges given (samples of one name adjacent): what
/// the private metrics listener serves.
pub fn render(gauges: &[Gauge]) -> String {
    render_where(gauges, |_| true)
}

/// Like [`render`] without the samples that name a tenant: what the public front
/// door serves.
pub fn render_public(gauges: &[Gauge]) -> String {
    render_where(gauges, names_no_tenant)
}

fn render_where(gauges: &[Gauge], keep: impl Fn(&[(&str, String)]) -> bool) -> String {
    let registry = lock(&REGISTRY);
    let mut out = String::new();
    for (name, (help, family)) in &registry.counters {
        let kind = if name.ends_with("_sum") || name.ends_with("_count") || name.ends_with("_total")
        {
            "counter"
        } else {
            "gauge"
        };
        let mut samples = family.iter().filter(|(labels, _)| keep(labels)).peekable();
        if samples.peek().is_none() {
            continue;
        }
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{} {value}\n", label_text(labels)));
        }
    }
    let mut last_name = "";
    for gauge in gauges.iter().filter(|gauge| keep(&gauge.labels)) {
        let name = gauge.name;
        if name != last_name {
            out.push_str(&format!(
                "# HELP {name} {}\n# TYPE {name} gauge\n",
                gauge.help
            ));
            last_name = name;
        }
        out.push_str(&format!(
            "{name}{} {}\n",
            label_text(&gauge.labels),
            gauge.value
        ));
    }
    out
}

fn label_text(labels: &[(&str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_hide_ids() {
        assert_eq!(
            endpoint_template("/v1/users/123/deactivate"),
            "/v1/users/{id}/deactivate"
        );
        assert_eq!(
            endpoint_template("/v1/users/by_integration_external_id/HR%2F1?x=1"),
            "/v1/users/by_integration_external_id/{id}"
        );
        assert_eq!(
            endpoint_template("/v1/company/employees"),
            "/v1/company/employees"
        );
    }

    #[test]
    fn the_public_rendering_names_no_tenant() {
        events_applied("tenant-in-metrics", 2);
        webhook_received(200);
        let gauges = [
            Gauge {
                name: "personio_sync_inbox_depth",
                help: "Inbox.",
                labels: vec![(TENANT_LABEL, "tenant-in-gauge".into())],
                value: 1.0,
            },
            Gauge {
                name: "personio_sync_tenants",
                help: "Tenants by state.",
                labels: vec![("state", "live".into())],
                value: 1.0,
            },
        ];
        let private = render(&gauges);
        assert!(private.contains("tenant-in-metrics"), "{private}");
        assert!(private.contains("tenant-in-gauge"), "{private}");
        let public = render_public(&gauges);
        assert!(!public.contains("tenant-in"), "{public}");
        assert!(!public.contains(TENANT_LABEL), "{public}");
        assert!(
            !public.contains("personio_sync_events_applied_total"),
            "no empty family header: {public}"
        );
        assert!(
            public.contains("personio_sync_tenants{state=\"live\"} 1"),
            "{public}"
        );
        assert!(
            public.contains("personio_sync_webhooks_received_total"),
            "{public}"
        );
    }

    #[test]
    fn counters_render_in_text_format() {
        webhook_received(200);
        webhook_received(200);
        let text = render(&[Gauge {
            name: "personio_sync_tenants",
            help: "Tenants by state.",
            labels: vec![("state", "live".into())],
            value: 3.0,
        }]);
        assert!(
            text.contains("# TYPE personio_sync_webhooks_received_total counter"),
            "{text}"
        );
        assert!(
            text.contains("personio_sync_webhooks_received_total{outcome=\"stored\"}"),
            "{text}"
        );
        assert!(
            text.contains("personio_sync_tenants{state=\"live\"} 3"),
            "{text}"
        );
    }
}
