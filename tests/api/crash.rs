//! Issue acceptance: "SIGKILL of the real binary right after it answered 200, then a
//! restart: the change is applied", and contract §6 "SIGTERM: exit 0 within 10 s; after
//! a restart each tenant resumes where it was".
//!
//! These tests run the real `personio-sync serve` binary as a child process against the
//! two simulators running in this process. The simulator's own webhook deliveries are
//! switched off (subscription disabled, no delivery retries), so the only delivery of a
//! change is the one the test sends: if the service lost it, nothing would bring the
//! change back (a restarted tenant does not run a full sync).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::child::ServiceProcess;
use crate::helpers::{set_subscriptions_status, tenant_spec, webhook_body, webhook_payload};
use personio_sync_sim::generator::SimEmployee;
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig, SimUser};
use personio_sync_sim::person::EmployeeStatus;
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};

/// The tenant every test creates.
const TENANT: &str = "crash";

/// The simulators and the service binary on a fixed port and data directory.
struct Rig {
    personio: PersonioSim,
    learnamp: LearnAmpSim,
    service: ServiceProcess,
}

impl Rig {
    /// Starts the simulators (`employees` generated from `seed`) and the binary, and
    /// waits until it answers `/healthz`.
    async fn start(employees: usize, seed: u64) -> Rig {
        let personio = PersonioSim::start(PersonioSimConfig {
            employees,
            seed,
            ..PersonioSimConfig::default()
        })
        .await
        .expect("personio sim");
        // A lost delivery must stay lost: no retries by the simulator.
        personio.set_retry_delays(Vec::new());
        let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default())
            .await
            .expect("learn amp sim");
        // No reconciliation after a kill: it would repair a lost delivery and hide it.
        let service = ServiceProcess::start(&[
            ("RUST_LOG", "info"),
            ("PERSONIO_SYNC_SYNC_RECONCILE_AFTER_UNCLEAN_STOP", "false"),
        ])
        .await;
        Rig {
            personio,
            learnamp,
            service,
        }
    }

    async fn view(&self) -> Value {
        self.service.view(TENANT).await
    }

    /// Polls until `done` holds for the tenant view and the simulators.
    async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Rig, &Value) -> bool,
    ) -> Value {
        self.service
            .wait_view(TENANT, what, timeout, |view| done(self, view))
            .await
    }

    /// Creates the tenant, waits for its initial sync, and disables the simulator's
    /// automatic deliveries. Returns the webhook URL and token.
    async fn live_tenant(&self) -> (String, String) {
        self.create_tenant(json!({})).await;
        self.wait_for_initial_sync().await
    }

    /// `POST /admin/tenants` with `settings`.
    async fn create_tenant(&self, settings: Value) {
        let spec = tenant_spec(TENANT, &self.personio, &self.learnamp, settings);
        let (status, body) = self
            .service
            .admin(reqwest::Method::POST, "/admin/tenants", Some(&spec))
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Waits for the initial sync and disables the simulator's automatic deliveries.
    /// Returns the webhook URL and token.
    async fn wait_for_initial_sync(&self) -> (String, String) {
        let view = self
            .wait_until("the initial sync", Duration::from_secs(40), |_, view| {
                view["state"] == "live" && view["last_sync"]["finished_at"].is_string()
            })
            .await;
        self.disable_deliveries().await;
        let url = view["webhook_url"]
            .as_str()
            .expect("webhook_url")
            .to_string();
        let token = self.personio.webhooks()[0].token.clone().expect("token");
        (url, token.expose().to_string())
    }

    /// Disables the subscription (a started tenant repairs it, so this is repeated after
    /// every restart) so that only the test's deliveries reach the service.
    async fn disable_deliveries(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.personio.webhooks().len() != 1
            || format!("{:?}", self.personio.webhooks()[0].status) != "Enabled"
        {
            assert!(Instant::now() < deadline, "no enabled subscription");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        set_subscriptions_status(&self.personio, "DISABLED").await;
    }

    /// Posts one delivery; returns the status.
    async fn deliver(&self, url: &str, token: &str, event_name: &str, person_id: &str) -> u16 {
        let body = webhook_body(
            &self.personio.company().company_id,
            event_name,
            webhook_payload(event_name, person_id),
        );
        let response = self
            .service
            .http()
            .post(url)
            .header("authorization", token)
            .json(&body)
            .send()
            .await
            .expect("delivery answered");
        response.status().as_u16()
    }

    fn users(&self) -> Vec<SimUser> {
        self.learnamp.users()
    }

    fn job_title(&self, person_id: &str) -> Option<String> {
        self.learnamp
            .user_by_external_id(person_id)
            .and_then(|user| user.job_title)
    }

    fn active_people(&self) -> Vec<SimEmployee> {
        self.personio
            .employees()
            .into_iter()
            .filter(|person| person.employee.status == Some(EmployeeStatus::Active))
            .collect()
    }
}

/// Asserts that no two Learn Amp users share an external id or an email.
fn assert_no_duplicates(users: &[SimUser]) {
    let mut externals = HashSet::new();
    let mut emails = HashSet::new();
    for user in users {
        if let Some(external) = &user.integration_external_id {
            assert!(
                externals.insert(external.clone()),
                "two users for person {external}"
            );
        }
        assert!(
            emails.insert(user.email.to_lowercase()),
            "two users with {}",
            user.email
        );
    }
}

/// Changes the position of `person` in Personio (no delivery: the subscription is off).
fn promote(rig: &Rig, person: &SimEmployee, title: &str) {
    let mut changed = rig.personio.employee(&person.employee.id).expect("person");
    changed.employee.position = Some(title.to_string());
    rig.personio.upsert_employee(changed);
}

/// A new active employee copied from `template`.
fn hire(rig: &Rig, template: &SimEmployee, id: &str) {
    let mut person = template.clone();
    person.created_at = String::new();
    person.employee.id = id.to_string();
    person.employee.email = Some(format!("crash.{id}@example.test"));
    person.employee.first_name = Some(format!("Crash{id}"));
    person.employee.termination_date = None;
    person.employee.supervisor_id = Some(template.employee.id.clone());
    rig.personio.upsert_employee(person);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_acknowledged_right_before_sigkill_is_applied_after_a_restart() {
    let started = Instant::now();
    let mut rig = Rig::start(15, 41).await;
    let (url, token) = rig.live_tenant().await;
    let person = rig.active_people()[2].clone();
    let id = person.employee.id.clone();
    let before = rig.job_title(&id);
    let users_before = rig.users().len();
    let last_sync = rig.view().await["last_sync"].clone();

    // Learn Amp is down: the event cannot be applied before the kill.
    rig.learnamp.knobs.set_outage(true);
    promote(&rig, &person, "Survivor of SIGKILL");
    assert_eq!(
        rig.deliver(&url, &token, "employment.updated", &id).await,
        200
    );
    let status = rig.service.kill();
    assert!(!status.success(), "killed: {status}");
    assert_eq!(rig.job_title(&id), before, "applied before the kill?");
    rig.learnamp.knobs.set_outage(false);

    rig.service.restart().await;
    let view = rig
        .wait_until(
            "the change after the restart",
            Duration::from_secs(30),
            |rig, view| {
                view["state"] == "live"
                    && view["pending_events"] == 0
                    && view["live"]["events_applied"] == 1
                    && rig.job_title(&id).as_deref() == Some("Survivor of SIGKILL")
            },
        )
        .await;
    assert_eq!(view["state"], "live", "{view}");
    assert_eq!(view["live"]["events_applied"], 1, "{view}");
    assert_eq!(
        view["last_sync"], last_sync,
        "no full sync after the restart: the change came from the stored event"
    );
    let users = rig.users();
    assert_eq!(users.len(), users_before);
    assert_no_duplicates(&users);
    // The restarted tenant repaired its subscription: exactly one, enabled.
    let hooks = rig.personio.webhooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(format!("{:?}", hooks[0].status), "Enabled");
    println!("SIGKILL during an outage: done in {:?}", started.elapsed());
}

/// Concurrent deliveries for one tenant share one group commit and one stored inbox
/// value; every one of them acknowledged before SIGKILL is applied after the restart,
/// each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_acknowledged_right_before_sigkill_is_applied_after_a_restart() {
    let mut rig = Rig::start(40, 43).await;
    let (url, token) = rig.live_tenant().await;
    let people: Vec<SimEmployee> = rig.active_people().into_iter().take(32).collect();
    assert!(people.len() >= 20, "{} active people", people.len());
    let users_before = rig.users().len();
    let applied_before = rig.view().await["live"]["events_applied"]
        .as_u64()
        .unwrap_or(0);

    rig.learnamp.knobs.set_outage(true);
    for (index, person) in people.iter().enumerate() {
        promote(&rig, person, &format!("Burst title {index}"));
    }
    let statuses: Vec<u16> = futures::future::join_all(
        people
            .iter()
            .map(|person| rig.deliver(&url, &token, "employment.updated", &person.employee.id)),
    )
    .await;
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    let view = rig.view().await;
    assert_eq!(
        view["pending_events"].as_u64(),
        Some(people.len() as u64),
        "every acknowledged event is stored: {view}"
    );
    let status = rig.service.kill();
    assert!(!status.success(), "killed: {status}");
    rig.learnamp.knobs.set_outage(false);

    rig.service.restart().await;
    let expected = applied_before + people.len() as u64;
    let view = rig
        .wait_until(
            "the burst after the restart",
            Duration::from_secs(60),
            |rig, view| {
                view["pending_events"] == 0
                    && view["live"]["events_applied"].as_u64() == Some(expected)
                    && people.iter().enumerate().all(|(index, person)| {
                        rig.job_title(&person.employee.id).as_deref()
                            == Some(format!("Burst title {index}").as_str())
                    })
            },
        )
        .await;
    assert_eq!(view["state"], "live", "{view}");
    let users = rig.users();
    assert_eq!(users.len(), users_before);
    assert_no_duplicates(&users);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_applying_loses_nothing_and_duplicates_nobody() {
    let started = Instant::now();
    let mut rig = Rig::start(25, 42).await;
    let (url, token) = rig.live_tenant().await;
    let template = rig.active_people()[0].clone();
    let mut expected_users = rig.users().len();
    let last_sync = rig.view().await["last_sync"].clone();
    for round in 0..3 {
        let people = rig.active_people();
        let promoted: Vec<SimEmployee> = people[3 + 2 * round..5 + 2 * round].to_vec();
        let hires: Vec<String> = (0..3)
            .map(|n| format!("{}", 90_000 + 10 * round + n))
            .collect();
        for person in &promoted {
            promote(&rig, person, &format!("Round {round} lead"));
        }
        for id in &hires {
            hire(&rig, &template, id);
        }
        let mut events: Vec<(&str, String)> = hires
            .iter()
            .flat_map(|id| {
                [
                    ("person.created", id.clone()),
                    ("employment.created", id.clone()),
                ]
            })
            .collect();
        events.extend(
            promoted
                .iter()
                .map(|person| ("employment.updated", person.employee.id.clone())),
        );
        // Concurrent deliveries, with Learn Amp slowed down so the tenant is still
        // applying them when the kill comes: in round 0 the moment the last one is
        // acknowledged, in round n once n hires exist in Learn Amp (their records may
        // not be stored yet).
        rig.learnamp.knobs.set_latency(Duration::from_millis(20));
        let statuses: Vec<u16> = futures::stream::iter(events.iter())
            .map(|(event, id)| rig.deliver(&url, &token, event, id))
            .buffer_unordered(8)
            .collect()
            .await;
        assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while hires
            .iter()
            .filter(|id| rig.learnamp.user_by_external_id(id).is_some())
            .count()
            < round
        {
            assert!(
                Instant::now() < deadline,
                "round {round}: hires not applied"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        rig.service.kill();
        rig.learnamp.knobs.set_latency(Duration::ZERO);
        let applied_at_kill = hires
            .iter()
            .filter(|id| rig.learnamp.user_by_external_id(id).is_some())
            .count();

        rig.service.restart().await;
        expected_users += hires.len();
        let title = format!("Round {round} lead");
        let view = rig
            .wait_until(
                &format!("round {round} applied"),
                Duration::from_secs(30),
                |rig, view| {
                    view["state"] == "live"
                        && view["pending_events"] == 0
                        && hires
                            .iter()
                            .all(|id| rig.learnamp.user_by_external_id(id).is_some())
                        && promoted.iter().all(|person| {
                            rig.job_title(&person.employee.id).as_deref() == Some(title.as_str())
                        })
                },
            )
            .await;
        assert_eq!(view["state"], "live", "{view}");
        assert_eq!(
            view["last_sync"], last_sync,
            "no full sync after the restart"
        );
        let users = rig.users();
        assert_no_duplicates(&users);
        assert_eq!(
            users.len(),
            expected_users,
            "round {round}: one user per hire"
        );
        println!(
            "round {round}: {applied_at_kill} of {} hires in Learn Amp at the kill; all applied after the restart",
            hires.len()
        );
        rig.disable_deliveries().await;
    }
    println!("three SIGKILL rounds: done in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_within_ten_seconds_and_the_tenant_resumes() {
    let started = Instant::now();
    let mut rig = Rig::start(15, 43).await;
    let (url, token) = rig.live_tenant().await;
    let person = rig.active_people()[1].clone();
    let id = person.employee.id.clone();
    let last_sync = rig.view().await["last_sync"].clone();

    // The tenant is busy retrying a Learn Amp outage when the signal comes.
    rig.learnamp.knobs.set_outage(true);
    rig.learnamp.log.clear();
    promote(&rig, &person, "Survivor of SIGTERM");
    assert_eq!(
        rig.deliver(&url, &token, "employment.updated", &id).await,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rig.learnamp.log.all().iter().any(|call| call.injected) {
        assert!(
            Instant::now() < deadline,
            "the tenant never tried Learn Amp"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let signalled = Instant::now();
    rig.service.terminate();
    let status = loop {
        if let Some(status) = rig.service.exited() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM:\n{}",
            rig.service.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = signalled.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
    println!("SIGTERM: exit 0 after {took:?}");

    // After the restart the tenant resumes: the stored event is applied, and a new
    // delivery works.
    rig.learnamp.knobs.set_outage(false);
    rig.service.restart().await;
    rig.wait_until(
        "the stored change after the restart",
        Duration::from_secs(30),
        |rig, view| {
            view["state"] == "live"
                && view["pending_events"] == 0
                && rig.job_title(&id).as_deref() == Some("Survivor of SIGTERM")
        },
    )
    .await;
    assert_eq!(
        rig.view().await["last_sync"],
        last_sync,
        "the tenant resumed where it was (no new full sync)"
    );
    rig.disable_deliveries().await;
    let next = rig.active_people()[4].clone();
    promote(&rig, &next, "After the restart");
    assert_eq!(
        rig.deliver(&url, &token, "employment.updated", &next.employee.id)
            .await,
        200
    );
    rig.wait_until(
        "a new change after the restart",
        Duration::from_secs(20),
        |rig, view| {
            view["pending_events"] == 0
                && rig.job_title(&next.employee.id).as_deref() == Some("After the restart")
        },
    )
    .await;
    assert_no_duplicates(&rig.users());
    println!("SIGTERM and resume: done in {:?}", started.elapsed());
}

/// Invitations per Learn Amp user id, for users invited more than once.
fn repeated_invitations(rig: &Rig) -> Vec<(u64, usize)> {
    let mut counts: std::collections::BTreeMap<u64, usize> = Default::default();
    for invitation in rig.learnamp.invitations() {
        *counts.entry(invitation.user_id).or_default() += 1;
    }
    counts.into_iter().filter(|(_, count)| *count > 1).collect()
}

/// Contract §6: "A tenant killed in the middle of its initial sync finishes it after a
/// restart with no operator action, without duplicates or second invitations"; and a
/// kill right after the initial sync changes nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_and_right_after_the_initial_sync_duplicates_and_reinvites_nobody() {
    let started = Instant::now();
    let mut rig = Rig::start(40, 44).await;
    // Slow Learn Amp down so that the kill lands in the middle of the initial sync.
    rig.learnamp.knobs.set_latency(Duration::from_millis(15));
    rig.create_tenant(json!({"invite_policy": {"mode": "immediately"}}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while rig.users().len() < 10 {
        assert!(
            Instant::now() < deadline,
            "the initial sync did not start:\n{}",
            rig.service.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rig.service.kill();
    let at_kill = rig.users().len();
    rig.learnamp.knobs.set_latency(Duration::ZERO);
    assert!(
        rig.service.is_unreachable().await,
        "the killed service still answers"
    );

    rig.service.restart().await;
    rig.wait_for_initial_sync().await;
    let working = rig
        .personio
        .employees()
        .iter()
        .filter(|p| !p.employee.is_inactive())
        .count();
    let users = rig.users();
    assert_no_duplicates(&users);
    assert_eq!(users.len(), working, "one user per working employee");
    assert_eq!(repeated_invitations(&rig), Vec::new(), "second invitations");
    assert_eq!(rig.learnamp.invitations().len(), working);
    println!("killed with {at_kill} of {working} users created; finished after the restart");

    // Right after a completed initial sync.
    rig.service.kill();
    rig.service.restart().await;
    rig.wait_until(
        "live after the restart",
        Duration::from_secs(30),
        |_, view| view["state"] == "live" && view["last_sync"]["finished_at"].is_string(),
    )
    .await;
    let users = rig.users();
    assert_no_duplicates(&users);
    assert_eq!(users.len(), working);
    assert_eq!(repeated_invitations(&rig), Vec::new(), "second invitations");
    println!(
        "two SIGKILLs around the initial sync: done in {:?}",
        started.elapsed()
    );
}
