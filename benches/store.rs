//! The store on disk: one employee record written and read, one history entry of a
//! person who has the full 100, and webhook events made durable one at a time versus
//! 64 at once (group commit shares the flushes).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use personio_sync::domain::fields::{self, UserFields};
use personio_sync::store::inbox::InboxEvent;
use personio_sync::store::{
    ChangeSource, EmployeeRecord, FieldChange, PersonChange, Store, TenantStore,
};

fn record() -> EmployeeRecord {
    let applied: UserFields = [
        (fields::EXTERNAL_ID, "4711"),
        (fields::FIRST_NAME, "Ada"),
        (fields::LAST_NAME, "Lovelace"),
        (fields::EMAIL, "ada@example.com"),
        (fields::JOB_TITLE, "Engineer"),
        (fields::LOCATION, "Berlin"),
        (fields::HIRE_DATE, "2021-04-01"),
        (fields::PRIMARY_TEAM, "12"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value.to_string()))
    .collect();
    EmployeeRecord {
        learnamp_id: 93,
        applied,
        invited: true,
        avatar_sha256: Some(String::new()),
        ..EmployeeRecord::default()
    }
}

fn event(person: usize) -> InboxEvent {
    InboxEvent {
        received_at: "2025-03-01T10:15:31Z".into(),
        event_name: "employment.updated".into(),
        occurred_at: "2025-03-01T10:15:30Z".into(),
        person_id: Some(person.to_string()),
    }
}

/// The store under `dir` and its tenant `bench`, opened on `runtime`.
fn open(runtime: &tokio::runtime::Runtime, dir: &std::path::Path) -> (Store, TenantStore) {
    runtime.block_on(async {
        let store = Store::open(dir, 16).await.expect("store");
        let tenant = store.tenant("bench").await.expect("tenant");
        (store, tenant)
    })
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn records(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_store, tenant) = open(&current_thread(), dir.path());
    let record = record();
    for id in 0..1_000 {
        tenant
            .put_employee(&id.to_string(), &record)
            .expect("put employee");
    }
    let mut next = 0u32;
    c.bench_function("store/put_employee", |b| {
        b.iter(|| {
            next = (next + 1) % 1_000;
            tenant
                .put_employee(&next.to_string(), black_box(&record))
                .expect("put employee")
        })
    });
    c.bench_function("store/get_employee", |b| {
        b.iter(|| {
            next = (next + 1) % 1_000;
            tenant.employee(&next.to_string()).expect("get employee")
        })
    });
}

/// What a full sync's write of a person adds: one history entry (an update of two
/// fields) to a history that holds the most it keeps, so the oldest goes.
fn person_history(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_store, tenant) = open(&current_thread(), dir.path());
    let change = PersonChange {
        at: "2026-12-07T04:05:06.123456789+00:00".into(),
        source: ChangeSource::FullSync,
        actions: vec!["update".into()],
        fields: [
            (fields::JOB_TITLE, "Engineer", "Staff Engineer"),
            (fields::LOCATION, "Berlin", "Remote"),
        ]
        .into_iter()
        .map(|(key, before, after)| {
            let values = FieldChange {
                before: Some(before.into()),
                after: Some(after.into()),
            };
            (key.to_string(), values)
        })
        .collect(),
    };
    for _ in 0..personio_sync::store::PERSON_HISTORY_CAP {
        tenant
            .append_person_change("4711", &change)
            .expect("append");
    }
    c.bench_function("store/append_person_change (100 kept)", |b| {
        b.iter(|| {
            tenant
                .append_person_change("4711", black_box(&change))
                .expect("append")
        })
    });
}

/// How long a batch of 64 durable events may take before the bench calls it stuck.
const STUCK: Duration = Duration::from_secs(10);

fn durable_events(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, tenant) = open(&runtime, dir.path());
    let mut group = c.benchmark_group("store/push_event+flush");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single", |b| {
        b.to_async(&runtime).iter(|| async {
            tenant.push_event(&event(1)).await.expect("push");
            store.flush().await.expect("flush");
        })
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("64 concurrent", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut tasks = tokio::task::JoinSet::new();
            for person in 0..64 {
                let store = store.clone();
                let tenant = tenant.clone();
                tasks.spawn(async move {
                    tenant.push_event(&event(person)).await.expect("push");
                    store.flush().await.expect("flush");
                });
            }
            let all = async { while tasks.join_next().await.is_some() {} };
            // A flush that never completes is a finding, not a reason to hang `cargo
            // bench`: sled 0.34's `flush_async` can lose its wake-up (BENCHMARKS.md).
            if tokio::time::timeout(STUCK, all).await.is_err() {
                panic!("a group flush did not complete within {STUCK:?}: see BENCHMARKS.md, 'flush_async hang'");
            }
        })
    });
    group.finish();
    runtime.block_on(async {
        let pending = tenant.pending_events(usize::MAX).await.expect("pending");
        let sequences: Vec<u64> = pending.iter().map(|(sequence, _)| *sequence).collect();
        tenant.remove_events(&sequences).await.expect("clean up");
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = records, person_history, durable_events
}
criterion_main!(benches);
