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

/// The value of the sample `series` (name and labels, exactly) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[test]
fn api_call_latency_is_a_histogram_by_system_and_endpoint() {
    let series =
        "personio_sync_api_call_seconds_count{system=\"learnamp\",endpoint=\"/v1/latency-probe\"}";
    let before = sample(&render_public(&[]), series).unwrap_or(0.0);
    api_call(
        "learnamp",
        "/v1/latency-probe",
        "200",
        Duration::from_millis(30),
    );
    api_call(
        "learnamp",
        "/v1/latency-probe",
        "503",
        Duration::from_millis(3),
    );
    let text = render_public(&[]);
    assert!(
        text.contains("# TYPE personio_sync_api_call_seconds histogram"),
        "{text}"
    );
    assert_eq!(sample(&text, series), Some(before + 2.0), "{text}");
    let bucket = "personio_sync_api_call_seconds_bucket{system=\"learnamp\",endpoint=\"/v1/latency-probe\",le=\"0.025\"}";
    assert!(sample(&text, bucket) >= Some(1.0), "{text}");
    assert!(
        text.contains("personio_sync_api_calls_total{system=\"learnamp\",endpoint=\"/v1/latency-probe\",status=\"503\"} "),
        "{text}"
    );
}

#[test]
fn webhook_latency_is_measured_from_receipt() {
    let series = "personio_sync_webhook_to_learnamp_seconds_count";
    let sum = "personio_sync_webhook_to_learnamp_seconds_sum";
    let text = render_public(&[]);
    let (count_before, sum_before) = (
        sample(&text, series).unwrap_or(0.0),
        sample(&text, sum).unwrap_or(0.0),
    );
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T02:00:02+00:00")
        .unwrap()
        .with_timezone(&Utc);
    webhooks_applied(
        [
            "2026-12-07T02:00:00+00:00",
            "2026-12-07T03:00:01+01:00",
            "not a time",
        ],
        now,
    );
    let text = render_public(&[]);
    assert!(
        text.contains("# TYPE personio_sync_webhook_to_learnamp_seconds histogram"),
        "{text}"
    );
    assert_eq!(sample(&text, series), Some(count_before + 2.0), "{text}");
    let added = sample(&text, sum).unwrap() - sum_before;
    assert!((added - 3.0).abs() < 1e-9, "2 s + 1 s: {text}");
}

#[test]
fn full_sync_durations_are_a_private_histogram_by_tenant() {
    sync_finished("tenant-sync-histogram", 2.0);
    sync_finished("tenant-sync-histogram", 40.0);
    let private = render(&[]);
    assert_eq!(
        sample(
            &private,
            "personio_sync_full_sync_seconds_count{tenant_id=\"tenant-sync-histogram\"}"
        ),
        Some(2.0),
        "{private}"
    );
    assert_eq!(
        sample(
            &private,
            "personio_sync_full_sync_seconds_sum{tenant_id=\"tenant-sync-histogram\"}"
        ),
        Some(42.0),
        "{private}"
    );
    assert_eq!(
        sample(
            &private,
            "personio_sync_full_sync_seconds_bucket{tenant_id=\"tenant-sync-histogram\",le=\"5\"}"
        ),
        Some(1.0),
        "{private}"
    );
    assert!(!render_public(&[]).contains("full_sync"));
}

#[test]
fn every_webhook_outcome_is_counted_under_its_name() {
    let series =
        |outcome: &str| format!("personio_sync_webhooks_received_total{{outcome=\"{outcome}\"}}");
    let before = |outcome| sample(&render_public(&[]), &series(outcome)).unwrap_or(0.0);
    let cases = [
        (401, "unauthorized"),
        (404, "unknown_key"),
        (400, "bad_request"),
        (413, "too_large"),
        (408, "incomplete"),
        (503, "storage_unavailable"),
        (418, "other"),
    ];
    let counts: Vec<f64> = cases.iter().map(|(_, outcome)| before(*outcome)).collect();
    for (status, _) in cases {
        webhook_received(status);
    }
    let text = render_public(&[]);
    for ((_, outcome), count) in cases.iter().zip(counts) {
        assert_eq!(sample(&text, &series(outcome)), Some(count + 1.0), "{text}");
    }
}
