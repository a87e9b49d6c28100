//! After an unclean stop (SIGKILL) sled may have lost the last writes before the kill,
//! such as the record of fields just written to Learn Amp; a live update planned
//! against that record would then write nothing when Personio changes a field and
//! changes it back. So every synced tenant runs one full reconciliation at the restart,
//! which compares Learn Amp itself. After a clean stop (SIGTERM) nothing was lost and
//! no tenant reconciles at start.
//!
//! The lost record is simulated by changing a Learn Amp user behind the service's back
//! while the service is down: its record still claims the Personio value.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::child::ServiceProcess;
use crate::helpers::{set_subscriptions_status, tenant_spec};
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::person::EmployeeStatus;
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};

const TENANT: &str = "unclean";
/// The one line a start after an unclean stop logs (the tenants log their own).
const UNCLEAN_LINE: &str = "the last run did not stop cleanly: every synced tenant";
/// What the test writes into Learn Amp behind the service's back.
const STALE: &str = "Stale after a lost record";

struct Rig {
    personio: PersonioSim,
    learnamp: LearnAmpSim,
    service: ServiceProcess,
}

impl Rig {
    /// Simulators, the binary, and one tenant after its initial sync with the
    /// simulator's webhook deliveries switched off (changes reach the service only
    /// through a reconciliation).
    async fn synced(seed: u64) -> Rig {
        let personio = PersonioSim::start(PersonioSimConfig {
            employees: 12,
            seed,
            ..PersonioSimConfig::default()
        })
        .await
        .expect("personio sim");
        personio.set_retry_delays(Vec::new());
        let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default())
            .await
            .expect("learn amp sim");
        let service = ServiceProcess::start(&[("RUST_LOG", "info")]).await;
        let rig = Rig {
            personio,
            learnamp,
            service,
        };
        let spec = tenant_spec(TENANT, &rig.personio, &rig.learnamp, json!({}));
        let (status, body) = rig
            .service
            .admin(reqwest::Method::POST, "/admin/tenants", Some(&spec))
            .await;
        assert_eq!(status, 201, "{body}");
        rig.wait_live("the initial sync", |view| {
            view["last_sync"]["finished_at"].is_string()
        })
        .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while rig.personio.webhooks().len() != 1 {
            assert!(Instant::now() < deadline, "no subscription");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        set_subscriptions_status(&rig.personio, "DISABLED").await;
        rig
    }

    async fn wait_live(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.service
            .wait_view(TENANT, what, Duration::from_secs(60), |view| {
                view["state"] == "live" && view["pending_events"] == 0 && done(view)
            })
            .await
    }

    fn active_ids(&self) -> Vec<String> {
        self.personio
            .employees()
            .into_iter()
            .filter(|person| person.employee.status == Some(EmployeeStatus::Active))
            .map(|person| person.employee.id)
            .collect()
    }

    fn job_title(&self, person_id: &str) -> Option<String> {
        self.learnamp
            .user_by_external_id(person_id)
            .and_then(|user| user.job_title)
    }

    /// While the service is down: Learn Amp's job title of `stale` differs from what the
    /// service recorded (a lost record), and Personio changes the position of `moved`
    /// (no delivery). Returns the job title `stale` must get back.
    fn change_behind_the_back(&self, stale: &str, moved: &str) -> String {
        let before = self.job_title(stale).expect("a synced job title");
        let user = self.learnamp.user_by_external_id(stale).expect("user");
        assert!(self.learnamp.set_job_title(user.id, Some(STALE)));
        let mut person = self.personio.employee(moved).expect("person");
        person.employee.position = Some("Changed while down".into());
        self.personio.upsert_employee(person);
        before
    }

    /// Lines of start `start` holding `needle`.
    fn start_lines(&self, start: usize, needle: &str) -> Vec<String> {
        let prefix = format!("[start {start}]");
        self.service
            .log_lines(needle)
            .into_iter()
            .filter(|line| line.starts_with(&prefix))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigkill_synced_tenants_reconcile_once_at_the_restart() {
    let started = Instant::now();
    let mut rig = Rig::synced(61).await;
    let ids = rig.active_ids();
    let (stale, moved) = (ids[1].clone(), ids[2].clone());
    let last_sync = rig.service.view(TENANT).await["last_sync"].clone();

    let status = rig.service.kill();
    assert!(!status.success(), "killed: {status}");
    let expected = rig.change_behind_the_back(&stale, &moved);

    rig.service.restart().await;
    let view = rig
        .wait_live("the reconciliation after the restart", |view| {
            view["last_sync"]["finished_at"] != last_sync["finished_at"]
                && rig.job_title(&stale).as_deref() == Some(expected.as_str())
                && rig.job_title(&moved).as_deref() == Some("Changed while down")
        })
        .await;
    assert_eq!(view["last_sync"]["kind"], "full", "{view}");
    assert_eq!(
        rig.start_lines(2, UNCLEAN_LINE).len(),
        1,
        "one line at start:\n{}",
        rig.service.log_tail()
    );
    assert!(
        rig.start_lines(1, UNCLEAN_LINE).is_empty(),
        "a fresh data dir"
    );
    println!("SIGKILL, reconciled at restart: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigterm_no_tenant_reconciles_at_the_restart() {
    let started = Instant::now();
    let mut rig = Rig::synced(62).await;
    let ids = rig.active_ids();
    let (stale, moved) = (ids[1].clone(), ids[2].clone());
    let last_sync = rig.service.view(TENANT).await["last_sync"].clone();

    rig.service.terminate();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = rig.service.exited() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
    rig.change_behind_the_back(&stale, &moved);

    rig.service.restart().await;
    // `live` without a new report: the tenant went live without a full sync (a
    // reconciliation shows `syncing` first and stores its report before `live`).
    let view = rig.wait_live("live after the restart", |_| true).await;
    assert_eq!(view["last_sync"], last_sync, "no reconciliation at start");
    assert_eq!(rig.job_title(&stale).as_deref(), Some(STALE));
    assert!(
        rig.start_lines(2, "did not stop cleanly").is_empty(),
        "{}",
        rig.service.log_tail()
    );
    println!(
        "SIGTERM, no reconciliation at restart: {:?}",
        started.elapsed()
    );
}
