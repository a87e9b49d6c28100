//! The primitives against a fresh database each (skipped without a test server, see
//! `testing.rs`).

use std::time::Duration;

use super::testing::{TestDatabase, fresh_database};
use super::*;

async fn backend(test: &str) -> Option<(PgBackend, TestDatabase)> {
    let database = fresh_database(test).await?;
    let backend = PgBackend::connect(&PgOptions {
        url: database.url().to_string(),
        password: None,
        pool: 4,
    })
    .await
    .unwrap();
    Some((backend, database))
}

fn bytes(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn changes(list: &[(&str, Option<&str>)]) -> Changes {
    list.iter()
        .map(|(key, value)| (bytes(key), value.map(bytes)))
        .collect()
}

/// A lease row for `tenant`, expiring in `seconds` (negative: expired).
async fn lease(backend: &PgBackend, tenant: &str, owner: &str, epoch: i64, seconds: i64) {
    sqlx::query(
        "INSERT INTO leases (tenant, owner, epoch, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))
         ON CONFLICT (tenant) DO UPDATE
         SET owner = EXCLUDED.owner, epoch = EXCLUDED.epoch, expires_at = EXCLUDED.expires_at",
    )
    .bind(tenant)
    .bind(owner)
    .bind(epoch)
    .bind(seconds as f64)
    .execute(backend.pool())
    .await
    .unwrap();
}

#[test]
fn prefix_ends_are_the_next_key_after_every_match() {
    assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
    assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
    assert_eq!(prefix_end(b"\xff\xff"), None);
    assert_eq!(prefix_end(b""), None);
}

#[tokio::test]
async fn meta_values_are_stored_scanned_by_prefix_and_removed() {
    let Some((pg, _db)) = backend("meta_values_are_stored_scanned_by_prefix_and_removed").await
    else {
        return;
    };
    for key in [
        "tenant\0b",
        "tenant\0a",
        "tenanu",
        "other",
        "tenant\0\u{7f}",
    ] {
        pg.meta_insert(key.as_bytes(), key.as_bytes())
            .await
            .unwrap();
    }
    pg.meta_insert(b"\xff\xff", b"\x00").await.unwrap();
    pg.meta_insert(b"tenant\0\x80", b"high").await.unwrap();
    pg.meta_insert(b"tenant\0a", b"new").await.unwrap();
    assert_eq!(pg.meta_get(b"tenant\0a").await.unwrap(), Some(bytes("new")));
    assert_eq!(pg.meta_get(b"missing").await.unwrap(), None);
    let scanned = pg.meta_scan_prefix(b"tenant\0").await.unwrap();
    let keys: Vec<&[u8]> = scanned.iter().map(|(key, _)| key.as_slice()).collect();
    assert_eq!(
        keys,
        [
            b"tenant\0a".as_slice(),
            b"tenant\0b",
            b"tenant\0\x7f",
            b"tenant\0\x80"
        ],
        "bytewise, unsigned, as sled"
    );
    assert_eq!(
        pg.meta_scan_prefix(b"\xff").await.unwrap(),
        vec![(b"\xff\xff".to_vec(), b"\x00".to_vec())]
    );
    assert_eq!(pg.meta_scan_prefix(b"").await.unwrap().len(), 7);
    pg.meta_remove(b"tenant\0a").await.unwrap();
    pg.meta_remove(b"never there").await.unwrap();
    assert_eq!(pg.meta_get(b"tenant\0a").await.unwrap(), None);
    assert_eq!(pg.meta_scan_prefix(b"tenant\0").await.unwrap().len(), 3);
}

#[tokio::test]
async fn compare_and_swap_changes_only_the_expected_value() {
    let Some((pg, _db)) = backend("compare_and_swap_changes_only_the_expected_value").await else {
        return;
    };
    let cas = |old: Option<&'static str>, new: Option<&'static str>| {
        let pg = pg.clone();
        async move {
            pg.meta_compare_and_swap(b"k", old.map(str::as_bytes), new.map(bytes))
                .await
                .unwrap()
        }
    };
    assert!(cas(None, None).await, "absent as expected");
    assert!(cas(None, Some("1")).await);
    assert!(!cas(None, Some("2")).await, "exists already");
    assert!(!cas(None, None).await);
    assert!(!cas(Some("2"), Some("3")).await, "not the current value");
    assert!(cas(Some("1"), Some("3")).await);
    assert!(!cas(Some("1"), None).await);
    assert_eq!(pg.meta_get(b"k").await.unwrap(), Some(bytes("3")));
    assert!(cas(Some("3"), None).await);
    assert_eq!(pg.meta_get(b"k").await.unwrap(), None);

    // Racing creators: exactly one wins.
    let racers = (0..8).map(|n| {
        let pg = pg.clone();
        async move {
            pg.meta_compare_and_swap(b"race", None, Some(vec![n]))
                .await
                .unwrap()
        }
    });
    let wins = futures::future::join_all(racers).await;
    assert_eq!(wins.iter().filter(|won| **won).count(), 1);
}

#[tokio::test]
async fn tenant_rows_commit_together_and_load_per_tenant() {
    let Some((pg, _db)) = backend("tenant_rows_commit_together_and_load_per_tenant").await else {
        return;
    };
    pg.tenant_commit(
        "a",
        &vec![
            (b"emp\0\x00\xff".to_vec(), Some(b"\x00\x01".to_vec())),
            (bytes("team\0x"), Some(bytes("t"))),
        ],
    )
    .await
    .unwrap();
    pg.tenant_commit("b", &changes(&[("emp\0\x00\u{7f}", Some("other"))]))
        .await
        .unwrap();
    pg.tenant_commit(
        "a",
        &changes(&[("team\0x", None), ("state\0k", Some("1")), ("never", None)]),
    )
    .await
    .unwrap();
    let rows = pg.tenant_rows("a").await.unwrap();
    assert_eq!(
        rows.into_iter().collect::<Vec<_>>(),
        vec![
            (b"emp\0\x00\xff".to_vec(), b"\x00\x01".to_vec()),
            (bytes("state\0k"), bytes("1")),
        ]
    );
    assert_eq!(pg.tenant_rows("b").await.unwrap().len(), 1);
    assert!(pg.tenant_rows("c").await.unwrap().is_empty());
    pg.tenant_commit("a", &Vec::new()).await.unwrap();
}

#[tokio::test]
async fn a_cached_tree_commits_its_changes_and_keeps_them_when_the_commit_fails() {
    let Some((pg, _db)) =
        backend("a_cached_tree_commits_its_changes_and_keeps_them_when_the_commit_fails").await
    else {
        return;
    };
    pg.tenant_commit("t", &changes(&[("old", Some("1"))]))
        .await
        .unwrap();
    let tree = pg.load_tree("t").await.unwrap();
    assert_eq!(tree.get("old"), Some(bytes("1")));
    tree.insert("new", bytes("2"));
    tree.remove("old");
    pg.commit_tree("t", &tree).await.unwrap();
    assert!(!tree.is_dirty());
    let stored = pg.load_tree("t").await.unwrap();
    assert_eq!(
        stored.iter().collect::<Vec<_>>(),
        vec![(bytes("new"), bytes("2"))]
    );

    // Cluster mode without the lease: refused, nothing written, the change waits.
    pg.enable_fencing();
    tree.insert("new", bytes("3"));
    let error = pg.commit_tree("t", &tree).await.unwrap_err();
    assert!(matches!(&error, PgError::Fenced { tenant } if tenant == "t"));
    assert!(tree.is_dirty());
    assert_eq!(
        pg.tenant_rows("t").await.unwrap()[&bytes("new")],
        bytes("2")
    );
    lease(&pg, "t", "me", 1, 30).await;
    pg.set_fence(
        "t",
        Some(Fence {
            owner: "me".into(),
            epoch: 1,
        }),
    );
    pg.commit_tree("t", &tree).await.unwrap();
    assert_eq!(
        pg.tenant_rows("t").await.unwrap()[&bytes("new")],
        bytes("3")
    );
    assert!(!tree.is_dirty());
}

#[tokio::test]
async fn commits_are_fenced_by_owner_epoch_and_expiry_but_inbox_inserts_are_not() {
    let Some((pg, _db)) =
        backend("commits_are_fenced_by_owner_epoch_and_expiry_but_inbox_inserts_are_not").await
    else {
        return;
    };
    pg.enable_fencing();
    let write = changes(&[("k", Some("v"))]);
    let fenced = |outcome: Result<(), PgError>| matches!(outcome, Err(PgError::Fenced { .. }));

    assert!(fenced(pg.tenant_commit("t", &write).await), "no fence here");
    pg.set_fence(
        "t",
        Some(Fence {
            owner: "me".into(),
            epoch: 2,
        }),
    );
    assert!(fenced(pg.tenant_commit("t", &write).await), "no lease row");
    lease(&pg, "t", "other", 2, 30).await;
    assert!(fenced(pg.tenant_commit("t", &write).await), "another owner");
    lease(&pg, "t", "me", 3, 30).await;
    assert!(fenced(pg.tenant_commit("t", &write).await), "a later epoch");
    lease(&pg, "t", "me", 2, -1).await;
    assert!(fenced(pg.tenant_commit("t", &write).await), "expired");
    assert!(pg.tenant_rows("t").await.unwrap().is_empty());

    // Deliveries are accepted by any node; processing them is the owner's.
    let ids = pg
        .inbox_insert(&[("t", vec![(bytes("e"), 1)])])
        .await
        .unwrap();
    assert_eq!(pg.inbox_count("t").await.unwrap(), 1);
    assert!(fenced(pg.inbox_apply("t", &[(ids[0][0], None)]).await));
    assert_eq!(pg.inbox_count("t").await.unwrap(), 1);

    lease(&pg, "t", "me", 2, 30).await;
    pg.tenant_commit("t", &write).await.unwrap();
    pg.inbox_apply("t", &[(ids[0][0], None)]).await.unwrap();
    assert_eq!(pg.inbox_count("t").await.unwrap(), 0);
    pg.set_fence("t", None);
    assert!(fenced(pg.tenant_commit("t", &write).await), "fence dropped");
}

#[tokio::test]
async fn tenant_data_is_listed_checked_and_dropped_with_its_inbox() {
    let Some((pg, _db)) = backend("tenant_data_is_listed_checked_and_dropped_with_its_inbox").await
    else {
        return;
    };
    pg.tenant_commit("rows", &changes(&[("k", Some("v"))]))
        .await
        .unwrap();
    pg.inbox_insert(&[("events", vec![(bytes("e"), 1)])])
        .await
        .unwrap();
    pg.inbox_insert(&[("rows", vec![(bytes("e"), 1)])])
        .await
        .unwrap();
    assert_eq!(pg.tenant_data_ids().await.unwrap(), ["events", "rows"]);
    assert!(pg.has_tenant_data("events").await.unwrap());
    assert!(pg.has_tenant_data("rows").await.unwrap());
    assert!(!pg.has_tenant_data("none").await.unwrap());
    pg.drop_tenant_data("rows").await.unwrap();
    assert!(!pg.has_tenant_data("rows").await.unwrap());
    assert_eq!(pg.inbox_count("rows").await.unwrap(), 0);
    assert_eq!(pg.tenant_data_ids().await.unwrap(), ["events"]);
    pg.drop_tenant_data("never").await.unwrap();
}

#[tokio::test]
async fn inbox_values_are_stored_in_order_paged_counted_and_rewritten() {
    let Some((pg, _db)) =
        backend("inbox_values_are_stored_in_order_paged_counted_and_rewritten").await
    else {
        return;
    };
    let batch = [
        ("a", vec![(bytes("a1"), 3), (bytes("a2"), 256)]),
        ("b", vec![(bytes("b1"), 1)]),
        ("c", vec![]),
    ];
    let ids = pg.inbox_insert(&batch).await.unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids[0][0] < ids[0][1] && ids[0][1] < ids[1][0]);
    assert!(ids[2].is_empty());
    let later = pg
        .inbox_insert(&[("a", vec![(bytes("a3"), 1)])])
        .await
        .unwrap();
    assert!(later[0][0] > ids[1][0]);
    assert_eq!(pg.inbox_count("a").await.unwrap(), 260);
    assert_eq!(pg.inbox_count("b").await.unwrap(), 1);
    assert_eq!(pg.inbox_count("c").await.unwrap(), 0);

    let first = pg.inbox_values("a", None, 2).await.unwrap();
    assert_eq!(
        first,
        vec![(ids[0][0], bytes("a1")), (ids[0][1], bytes("a2"))]
    );
    let rest = pg.inbox_values("a", Some(ids[0][1]), 2).await.unwrap();
    assert_eq!(rest, vec![(later[0][0], bytes("a3"))]);
    assert_eq!(
        pg.inbox_get("a", &[ids[0][1], ids[1][0], 12345])
            .await
            .unwrap(),
        vec![(ids[0][1], bytes("a2"))],
        "only the tenant's own values"
    );

    pg.inbox_apply(
        "a",
        &[(ids[0][0], None), (ids[0][1], Some((bytes("a2'"), 100)))],
    )
    .await
    .unwrap();
    assert_eq!(pg.inbox_count("a").await.unwrap(), 101);
    assert_eq!(
        pg.inbox_values("a", None, 10).await.unwrap(),
        vec![(ids[0][1], bytes("a2'")), (later[0][0], bytes("a3"))]
    );
    // Changes of values already gone are harmless; other tenants are untouched.
    pg.inbox_apply("a", &[(ids[0][0], None), (ids[1][0], None)])
        .await
        .unwrap();
    assert_eq!(pg.inbox_count("b").await.unwrap(), 1);
    assert_eq!(pg.inbox_insert(&[]).await.unwrap(), Vec::<Vec<u64>>::new());

    // An imported value keeps its id; putting it again replaces it.
    pg.inbox_put("c", 7, &(bytes("c7"), 2)).await.unwrap();
    pg.inbox_put("c", 7, &(bytes("c7'"), 1)).await.unwrap();
    assert_eq!(
        pg.inbox_values("c", None, 10).await.unwrap(),
        vec![(7, bytes("c7'"))]
    );
    assert_eq!(pg.inbox_count("c").await.unwrap(), 1);
}

#[tokio::test]
async fn generated_ids_increase_and_move_past_an_imported_id() {
    let Some((pg, _db)) = backend("generated_ids_increase_and_move_past_an_imported_id").await
    else {
        return;
    };
    let first = pg.next_generated_id().await.unwrap();
    let second = pg.next_generated_id().await.unwrap();
    assert!(second > first);
    pg.advance_generated_ids(1_000).await.unwrap();
    let advanced = pg.next_generated_id().await.unwrap();
    assert!(advanced >= 1_000, "{advanced}");
    pg.advance_generated_ids(10).await.unwrap();
    assert!(
        pg.next_generated_id().await.unwrap() > advanced,
        "never back"
    );
    let inbox = pg
        .inbox_insert(&[("t", vec![(bytes("e"), 1)])])
        .await
        .unwrap();
    assert!(
        inbox[0][0] > advanced,
        "inbox ids come from the same sequence"
    );

    // A fresh database: the first id handed out after an advance is the given one.
    let Some((fresh, _db)) = backend("generated_ids_increase_and_move_past_an_imported_id").await
    else {
        return;
    };
    fresh.advance_generated_ids(500).await.unwrap();
    assert_eq!(fresh.next_generated_id().await.unwrap(), 500);
}

async fn next_signal(
    signals: &mut tokio::sync::mpsc::UnboundedReceiver<InboxSignal>,
) -> InboxSignal {
    tokio::time::timeout(Duration::from_secs(10), signals.recv())
        .await
        .expect("a signal within 10 s")
        .expect("the LISTEN task runs")
}

#[tokio::test]
async fn inbox_inserts_notify_listeners_once_per_tenant_and_listening_survives_a_dropped_connection()
 {
    let Some((pg, _db)) = backend(
        "inbox_inserts_notify_listeners_once_per_tenant_and_listening_survives_a_dropped_connection",
    )
    .await
    else {
        return;
    };
    let mut signals = pg.listen_inbox();
    assert_eq!(next_signal(&mut signals).await, InboxSignal::Listening);
    pg.inbox_insert(&[
        ("a", vec![(bytes("1"), 1), (bytes("2"), 1)]),
        ("b", vec![(bytes("3"), 1)]),
        ("c", vec![]),
    ])
    .await
    .unwrap();
    let mut told = vec![
        next_signal(&mut signals).await,
        next_signal(&mut signals).await,
    ];
    told.sort_by_key(|signal| format!("{signal:?}"));
    assert_eq!(
        told,
        [
            InboxSignal::Tenant("a".into()),
            InboxSignal::Tenant("b".into())
        ]
    );

    // Kill the listening connection: the task listens again and says so.
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_one(pg.pool())
    .await
    .unwrap();
    assert_eq!(killed, 1);
    assert_eq!(next_signal(&mut signals).await, InboxSignal::Listening);
    pg.inbox_insert(&[("d", vec![(bytes("4"), 1)])])
        .await
        .unwrap();
    assert_eq!(
        next_signal(&mut signals).await,
        InboxSignal::Tenant("d".into())
    );
    assert!(
        signals.try_recv().is_err(),
        "nothing else: one signal per tenant"
    );
}

#[tokio::test]
async fn the_password_comes_from_the_options_and_never_shows_in_errors() {
    let Some(db) =
        fresh_database("the_password_comes_from_the_options_and_never_shows_in_errors").await
    else {
        return;
    };
    // postgres://user:password@host... -> postgres://user@host...
    let url = db.url();
    let scheme_end = url.find("://").unwrap() + 3;
    let at = url.find('@').unwrap();
    let (user, password) = url[scheme_end..at].split_once(':').unwrap();
    let bare = format!("{}{user}{}", &url[..scheme_end], &url[at..]);
    let connect = |password: Option<&str>| {
        let options = PgOptions {
            url: bare.clone(),
            password: password.map(str::to_string),
            pool: 2,
        };
        async move { PgBackend::connect(&options).await }
    };
    let pg = connect(Some(password)).await.unwrap();
    pg.meta_insert(b"k", b"v").await.unwrap();
    let wrong = "wrong-password-0123456789";
    let error = connect(Some(wrong)).await.err().unwrap().to_string();
    assert!(!error.contains(wrong), "{error}");
    let invalid = PgBackend::connect(&PgOptions {
        url: format!("postgres://{user}:{password}@[bad"),
        password: None,
        pool: 2,
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(invalid, PgError::InvalidUrl));
    assert!(!invalid.to_string().contains(password));
}

#[tokio::test]
async fn cached_trees_are_shared_committed_in_the_background_and_evicted_when_fenced() {
    let Some((pg, _db)) =
        backend("cached_trees_are_shared_committed_in_the_background_and_evicted_when_fenced")
            .await
    else {
        return;
    };
    let tree = pg.open_cached("t").await.unwrap();
    assert!(Arc::ptr_eq(&tree, &pg.open_cached("t").await.unwrap()));
    tree.insert("k", bytes("v"));
    // No flush: the background tick commits it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pg.tenant_rows("t").await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not committed in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!tree.is_dirty());
    tree.insert("k", bytes("w"));
    pg.commit_tenant("t").await.unwrap();
    assert_eq!(pg.tenant_rows("t").await.unwrap()[&bytes("k")], bytes("w"));

    // Cluster mode: the lease gone, the dirty tree is dropped and the others commit.
    pg.enable_fencing();
    for tenant in ["t", "u"] {
        lease(&pg, tenant, "me", 1, 30).await;
        pg.set_fence(
            tenant,
            Some(Fence {
                owner: "me".into(),
                epoch: 1,
            }),
        );
    }
    let other = pg.open_cached("u").await.unwrap();
    other.insert("k", bytes("u"));
    tree.insert("k", bytes("lost"));
    lease(&pg, "t", "someone else", 2, 30).await;
    pg.commit_dirty().await.unwrap();
    assert_eq!(pg.tenant_rows("u").await.unwrap()[&bytes("k")], bytes("u"));
    assert_eq!(pg.tenant_rows("t").await.unwrap()[&bytes("k")], bytes("w"));
    assert!(pg.cached("t").is_none(), "evicted");
    // Without the lease, a tenant is a snapshot here, never shared.
    pg.set_fence("t", None);
    let snapshot = pg.open_cached("t").await.unwrap();
    assert_eq!(snapshot.get("k"), Some(bytes("w")));
    assert!(pg.cached("t").is_none());
}

/// The commits of this process refused by `by` (`node` or `database`), from
/// `personio_sync_fenced_writes_total`.
fn fenced_writes(by: &str) -> f64 {
    let series = format!("personio_sync_fenced_writes_total{{by=\"{by}\"}} ");
    crate::metrics::render(&[])
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn every_refused_commit_is_counted_in_the_fenced_writes_metric() {
    let Some((pg, _db)) =
        backend("every_refused_commit_is_counted_in_the_fenced_writes_metric").await
    else {
        return;
    };
    pg.enable_fencing();
    let write = changes(&[("k", Some("v"))]);
    // Other tests of this process may add refusals meanwhile, never take any away.
    let (node_before, database_before) = (fenced_writes("node"), fenced_writes("database"));
    assert!(
        pg.tenant_commit("t", &write).await.is_err(),
        "no fence here"
    );
    assert!(fenced_writes("node") > node_before, "refused by the node");
    pg.set_fence(
        "t",
        Some(Fence {
            owner: "me".into(),
            epoch: 1,
        }),
    );
    lease(&pg, "t", "other", 1, 30).await;
    assert!(
        pg.tenant_commit("t", &write).await.is_err(),
        "another owner"
    );
    assert!(
        fenced_writes("database") > database_before,
        "refused by the database: {database_before} -> {}",
        fenced_writes("database")
    );

    lease(&pg, "t", "me", 1, 30).await;
    pg.tenant_commit("t", &write).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_racing_commits_all_reach_the_database() {
    let Some((pg, _db)) = backend("writes_racing_commits_all_reach_the_database").await else {
        return;
    };
    let tree = pg.open_cached("t").await.unwrap();
    let writer = {
        let tree = tree.clone();
        tokio::spawn(async move {
            for n in 0..2_000u32 {
                // Keys are rewritten and removed too, so an older value committed after
                // a newer one would show.
                tree.insert(format!("k{}", n % 97), n.to_be_bytes().to_vec());
                if n % 7 == 0 {
                    tree.remove(format!("k{}", (n + 3) % 97));
                }
                if n % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let committer = {
        let (pg, tree) = (pg.clone(), tree.clone());
        tokio::spawn(async move {
            for _ in 0..40 {
                pg.commit_tree("t", &tree).await.unwrap();
            }
        })
    };
    while !writer.is_finished() || !committer.is_finished() {
        pg.commit_dirty().await.unwrap();
    }
    writer.await.unwrap();
    committer.await.unwrap();
    pg.commit_tenant("t").await.unwrap();
    let cached: BTreeMap<Vec<u8>, Vec<u8>> = tree.iter().collect();
    assert_eq!(pg.tenant_rows("t").await.unwrap(), cached);
    assert!(!cached.is_empty());
}

#[tokio::test]
async fn a_commit_takes_the_changes_only_after_the_commit_in_flight_ends() {
    let Some((pg, _db)) =
        backend("a_commit_takes_the_changes_only_after_the_commit_in_flight_ends").await
    else {
        return;
    };
    let tree = pg.open_cached("t").await.unwrap();
    tree.insert("k", bytes("newer"));
    let in_flight = tree.commit_guard().await;
    let second = {
        let (pg, tree) = (pg.clone(), tree.clone());
        tokio::spawn(async move { pg.commit_tree("t", &tree).await })
    };
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(!second.is_finished());
    assert!(
        tree.is_dirty(),
        "the changes wait: taken now, they could be committed before older ones"
    );
    drop(in_flight);
    second.await.unwrap().unwrap();
    assert!(!tree.is_dirty());
    assert_eq!(
        pg.tenant_rows("t").await.unwrap()[&bytes("k")],
        bytes("newer")
    );
}

#[tokio::test]
async fn a_purged_tenant_stays_gone_whatever_a_kept_handle_writes() {
    let Some((pg, _db)) = backend("a_purged_tenant_stays_gone_whatever_a_kept_handle_writes").await
    else {
        return;
    };
    let kept = pg.open_cached("t").await.unwrap();
    kept.insert("k", bytes("v"));
    pg.commit_tenant("t").await.unwrap();
    kept.insert("uncommitted", bytes("x"));
    // A commit in flight finishes before the purge retires the tree.
    let in_flight = kept.commit_guard().await;
    let purge = {
        let pg = pg.clone();
        tokio::spawn(async move { pg.drop_tenant("t").await })
    };
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(
        !purge.is_finished(),
        "the purge waits for the commit in flight"
    );
    drop(in_flight);
    purge.await.unwrap().unwrap();
    kept.insert("late", bytes("y"));
    pg.commit_tree("t", &kept).await.unwrap();
    pg.commit_tenant("t").await.unwrap();
    pg.commit_dirty().await.unwrap();
    assert!(pg.tenant_rows("t").await.unwrap().is_empty());
    assert!(!pg.has_tenant("t").await.unwrap());
    // Opened again, the tenant starts empty and is committed as usual.
    let fresh = pg.open_cached("t").await.unwrap();
    assert!(fresh.is_empty());
    fresh.insert("new", bytes("1"));
    pg.commit_tenant("t").await.unwrap();
    assert_eq!(pg.tenant_rows("t").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_flush_after_the_lease_was_lost_is_refused_not_silently_dropped() {
    let Some((pg, _db)) =
        backend("a_flush_after_the_lease_was_lost_is_refused_not_silently_dropped").await
    else {
        return;
    };
    pg.enable_fencing();
    lease(&pg, "t", "me", 1, 30).await;
    pg.set_fence(
        "t",
        Some(Fence {
            owner: "me".into(),
            epoch: 1,
        }),
    );
    let tree = pg.open_cached("t").await.unwrap();
    tree.insert("k", bytes("v"));
    pg.commit_tenant("t").await.unwrap();

    // Another node takes the lease over; the background commit finds out first and
    // evicts the tree, while the tenant's actor still holds it.
    lease(&pg, "t", "other", 2, 30).await;
    tree.insert("k", bytes("late"));
    pg.commit_dirty().await.unwrap();
    assert!(pg.cached("t").is_none(), "evicted");
    // The actor records an effect's intent and flushes before making the effect: the
    // flush must fail, or the effect goes out from a node that no longer owns the tenant.
    tree.insert("intent", bytes("invite"));
    let flushed = pg.commit_tenant("t").await;
    assert!(
        matches!(flushed, Err(PgError::Fenced { .. })),
        "a flush without the lease answered {flushed:?}"
    );
    // The same once the lease manager has cleared the fence.
    pg.set_fence("t", None);
    assert!(matches!(
        pg.commit_tenant("t").await,
        Err(PgError::Fenced { .. })
    ));
    let rows = pg.tenant_rows("t").await.unwrap();
    assert_eq!(rows[&bytes("k")], bytes("v"));
    assert!(!rows.contains_key(&bytes("intent")));
}

/// A purge (possibly on another node) ends the tenant's lease in its own transaction:
/// the node that ran the tenant cannot commit its last writes over the purge.
#[tokio::test]
async fn a_purge_ends_the_lease_so_the_old_owner_cannot_write_the_tenant_back() {
    let Some((pg, _db)) =
        backend("a_purge_ends_the_lease_so_the_old_owner_cannot_write_the_tenant_back").await
    else {
        return;
    };
    pg.enable_fencing();
    pg.set_fence(
        "t",
        Some(Fence {
            owner: "me".into(),
            epoch: 2,
        }),
    );
    lease(&pg, "t", "me", 2, 30).await;
    pg.tenant_commit("t", &changes(&[("k", Some("v"))]))
        .await
        .unwrap();
    pg.drop_tenant_data("t").await.unwrap();
    let late = pg
        .tenant_commit("t", &changes(&[("late", Some("v"))]))
        .await;
    assert!(
        matches!(late, Err(PgError::Fenced { .. })),
        "a commit after the purge is refused: {late:?}"
    );
    assert!(pg.tenant_rows("t").await.unwrap().is_empty());
    assert!(!pg.has_tenant_data("t").await.unwrap());
}
