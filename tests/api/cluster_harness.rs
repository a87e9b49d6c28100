//! The cluster harness (`personio_sync_testkit::cluster`) on three sled nodes behind
//! nginx: requests through the front door reach every node (counted by each node's own
//! `/metrics`), a SIGKILLed node's share goes to the others, a paused node stops
//! answering and a POST it swallowed is not sent to another node, a resumed or restarted
//! node gets requests again, and nothing is left running after the drop.
//!
//! The deliveries go to an unknown webhook key: every node answers them the same (404,
//! counted as `unknown_key`) without a tenant, since sled nodes share no data.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::admin_request;
use personio_sync_testkit::cluster::{
    Cluster, metric_value, nginx_ready, processes_mentioning, wait_until,
};

/// The `/metrics` series counting deliveries to unknown webhook URLs.
const UNKNOWN_KEY: &str = "personio_sync_webhooks_received_total{outcome=\"unknown_key\"}";
/// Deliveries per round.
const ROUND: usize = 30;

/// Each node's count of unknown-key deliveries (`None` for a node not running).
async fn unknown_key_counts(cluster: &Cluster) -> Vec<Option<f64>> {
    let mut counts = Vec::new();
    for node in cluster.nodes() {
        counts.push(if node.is_running() && !node.is_paused() {
            Some(metric_value(&node.metrics().await, UNKNOWN_KEY))
        } else {
            None
        });
    }
    counts
}

/// Posts one delivery to an unknown webhook key through the front door; returns the
/// status and the body.
async fn deliver(http: &reqwest::Client, lb: &str) -> (StatusCode, String) {
    let response = http
        .post(format!(
            "{lb}/webhooks/personio/0123456789abcdef0123456789abcdef"
        ))
        .header("authorization", "some-token")
        .json(&serde_json::json!({"company_id": "1", "event_name": "person.updated"}))
        .send()
        .await
        .expect("the front door answers");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// Posts `count` deliveries; each must be the node's own 404.
async fn deliver_round(
    http: &reqwest::Client,
    lb: &str,
    count: usize,
    access_log: impl Fn() -> String,
) {
    for sent in 0..count {
        let (status, body) = deliver(http, lb).await;
        assert!(
            status == StatusCode::NOT_FOUND && body.contains("not_found"),
            "delivery {sent}: {status} {body}\nnginx access log:\n{}",
            access_log()
        );
    }
}

fn delta(after: &[Option<f64>], before: &[Option<f64>], node: usize) -> f64 {
    after[node].unwrap_or(0.0) - before[node].unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_nginx_share_survive_kill_and_pause_and_leave_nothing() {
    if !nginx_ready(
        "cluster_harness::three_nodes_behind_nginx_share_survive_kill_and_pause_and_leave_nothing",
    ) {
        return;
    }
    let mut cluster = Cluster::start(3, |_, _| {}).await;
    let pids = cluster.pids();
    let dirs = cluster.dirs();
    assert_eq!(pids.len(), 4, "three nodes and nginx: {pids:?}");
    let lb = cluster.lb_url().to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    // Round robin: every node gets a share, and only the front door's requests count.
    let before = unknown_key_counts(&cluster).await;
    deliver_round(&http, &lb, ROUND, || cluster.nginx_access_log()).await;
    let after = unknown_key_counts(&cluster).await;
    for node in 0..3 {
        assert!(
            delta(&after, &before, node) >= 1.0,
            "node {node} got none of {ROUND}: {before:?} -> {after:?}"
        );
    }
    let total: f64 = (0..3).map(|node| delta(&after, &before, node)).sum();
    assert_eq!(total, ROUND as f64, "{before:?} -> {after:?}");

    // The admin API goes through the front door too, token checks included.
    let (status, body) = admin_request(&lb, reqwest::Method::GET, "/admin/tenants", None).await;
    assert_eq!(status, 200, "{body}");
    let anonymous = http
        .get(format!("{lb}/admin/tenants"))
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // SIGKILL node 1: every delivery is still answered by a node, node 1 is marked down.
    let killed_port = cluster.node(1).addr().port();
    let status = cluster.node(1).kill();
    assert!(!status.success(), "SIGKILL: {status}");
    assert!(cluster.node(1).is_unreachable().await);
    let before = unknown_key_counts(&cluster).await;
    deliver_round(&http, &lb, ROUND, || cluster.nginx_access_log()).await;
    let after = unknown_key_counts(&cluster).await;
    assert_eq!(after[1], None);
    assert_eq!(
        delta(&after, &before, 0) + delta(&after, &before, 2),
        ROUND as f64,
        "{before:?} -> {after:?}"
    );
    assert!(delta(&after, &before, 0) >= 1.0 && delta(&after, &before, 2) >= 1.0);
    let marked_down = cluster.nginx_error_log().lines().any(|line| {
        line.contains("temporarily disabled") && line.contains(&format!("127.0.0.1:{killed_port}"))
    });
    assert!(
        marked_down,
        "nginx did not mark node 1 down:\n{}",
        cluster.nginx_error_log()
    );

    // SIGSTOP node 2: it answers nothing directly; GETs through the front door move on
    // to node 0 after the read timeout.
    cluster.node(2).pause().await;
    assert!(cluster.node(2).is_paused());
    let direct = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client")
        .get(format!("{}/healthz", cluster.node(2).url()))
        .send()
        .await;
    assert!(direct.is_err(), "a paused node answered: {direct:?}");
    for _ in 0..3 {
        let answer = http
            .get(format!("{lb}/healthz"))
            .send()
            .await
            .expect("answer");
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "{}",
            cluster.nginx_access_log()
        );
    }
    // A POST that reached the paused node is answered 504 and not sent on to node 0.
    // (A GET's timeout marked node 2 down for 2 s; POSTs go to node 0 until then.)
    let node0_before = metric_value(&cluster.node(0).metrics().await, UNKNOWN_KEY);
    let mut not_found = 0.0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match deliver(&http, &lb).await {
            (StatusCode::NOT_FOUND, _) => not_found += 1.0,
            (StatusCode::GATEWAY_TIMEOUT, _) => break,
            (status, body) => panic!("while node 2 is paused: {status} {body}"),
        }
        assert!(
            Instant::now() < deadline,
            "no POST was answered 504 within 30 s (did nginx pass the paused node's POST on to another?):\n{}",
            cluster.nginx_access_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let node0_after = metric_value(&cluster.node(0).metrics().await, UNKNOWN_KEY);
    assert_eq!(
        node0_after - node0_before,
        not_found,
        "node 0 got the POST the paused node swallowed:\n{}",
        cluster.nginx_access_log()
    );

    // SIGCONT: node 2 answers again and gets requests through the front door again.
    cluster.node(2).resume().await;
    cluster.node(2).wait_healthy().await;
    let resumed_before = metric_value(&cluster.node(2).metrics().await, UNKNOWN_KEY);
    wait_until(
        "node 2 serving the front door again",
        Duration::from_secs(20),
        || {
            let (http, lb, node) = (&http, &lb, &cluster.nodes()[2]);
            async move {
                assert_eq!(deliver(http, lb).await.0, StatusCode::NOT_FOUND);
                metric_value(&node.metrics().await, UNKNOWN_KEY) > resumed_before
            }
        },
    )
    .await;

    // A restarted node 1 (same port) rejoins once nginx's fail_timeout is over.
    cluster.node(1).restart().await;
    wait_until(
        "node 1 serving the front door again",
        Duration::from_secs(20),
        || {
            let (http, lb, node) = (&http, &lb, &cluster.nodes()[1]);
            async move {
                assert_eq!(deliver(http, lb).await.0, StatusCode::NOT_FOUND);
                metric_value(&node.metrics().await, UNKNOWN_KEY) > 0.0
            }
        },
    )
    .await;

    // SIGTERM node 0: a clean exit, waited for.
    let status = cluster.node(0).terminate().await;
    assert!(status.success(), "SIGTERM: {status}");
    assert!(!cluster.node(0).is_running());

    // Dropped: every process of the cluster is gone, none mentions its directories.
    let pids = {
        let mut pids = pids;
        pids.extend(cluster.pids());
        pids
    };
    drop(cluster);
    for pid in &pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} left after the drop"
        );
    }
    for dir in &dirs {
        let left = processes_mentioning(&dir.display().to_string());
        assert!(
            left.is_empty(),
            "processes {left:?} still name {}",
            dir.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_panicking_with_a_cluster_leaves_no_process() {
    if !nginx_ready("cluster_harness::a_test_panicking_with_a_cluster_leaves_no_process") {
        return;
    }
    let (started, seen) = tokio::sync::oneshot::channel();
    // The panic unwinds the task, dropping the cluster with a node paused.
    let test = tokio::spawn(async move {
        let mut cluster = Cluster::start(2, |_, _| {}).await;
        cluster.node(1).pause().await;
        let _ = started.send((cluster.pids(), cluster.dirs()));
        panic!("a failing test");
    });
    let outcome = test.await;
    assert!(outcome.is_err_and(|error| error.is_panic()));
    let (pids, dirs) = seen.await.expect("the cluster started");
    assert_eq!(pids.len(), 3, "two nodes and nginx: {pids:?}");
    for pid in &pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} left after the panic"
        );
    }
    for dir in &dirs {
        let left = processes_mentioning(&dir.display().to_string());
        assert!(
            left.is_empty(),
            "processes {left:?} still name {}",
            dir.display()
        );
    }
}
