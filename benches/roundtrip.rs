//! In-process round trip through the real service: the Personio simulator changes a
//! position and delivers the webhook (HTTP) → front door → durable inbox → tenant actor
//! → Learn Amp simulator shows the change. Simulators at 0 ms latency.
//!
//! Note: each event costs one Personio employee read, which the client paces under
//! Personio's 2,000/min limit (30/s), so sustained iterations settle near 33 ms.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use personio_sync::retry::RetryPolicy;
use personio_sync_bench::harness::{
    Harness, HarnessConfig, synced_active_people, time_position_change,
};
use personio_sync_sim::learnamp::LearnAmpSimConfig;
use personio_sync_sim::personio::PersonioSimConfig;

/// Changes one position and waits until Learn Amp shows it.
async fn round_trip(harness: &Harness, id: &str, serial: u64) -> Duration {
    time_position_change(
        harness,
        id,
        format!("Round trip {serial}"),
        Duration::from_secs(10),
        Duration::from_micros(200),
    )
    .await
    .expect("employee")
    .expect("no round trip within 10 s")
}

fn roundtrip(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (harness, people) = runtime.block_on(async {
        let harness = Harness::start(HarnessConfig {
            personio: PersonioSimConfig {
                employees: 30,
                seed: 9,
                ..PersonioSimConfig::default()
            },
            learnamp: LearnAmpSimConfig::default(),
            concurrency: 8,
            retry: RetryPolicy::fast(),
            backend: personio_sync_bench::Backend::Sled,
        })
        .await
        .expect("harness");
        harness
            .create_tenant("roundtrip", serde_json::json!({}))
            .await
            .expect("tenant");
        harness
            .wait_live_after_sync("roundtrip", Duration::from_secs(60))
            .await
            .expect("initial sync");
        let people = synced_active_people(&harness.personio, |id| {
            harness.learnamp.user_by_external_id(id).is_some()
        });
        (harness, people)
    });
    let mut serial = 0u64;
    c.bench_function("roundtrip/webhook_to_learnamp", |b| {
        b.to_async(&runtime).iter_custom(|iterations| {
            let harness = &harness;
            let people = &people;
            let first = serial;
            serial += iterations;
            async move {
                let mut total = Duration::ZERO;
                for index in 0..iterations {
                    let id = &people[(first + index) as usize % people.len()];
                    total += round_trip(harness, id, first + index).await;
                }
                total
            }
        })
    });
    drop(harness);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = roundtrip
}
criterion_main!(benches);
