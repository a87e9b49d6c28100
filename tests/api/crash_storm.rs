//! Issue acceptance ("Supervision, operations and crash safety"): "A crash test SIGKILLs
//! the real binary at 20 random moments during a full sync of 2,000 employees and a
//! webhook storm, restarting it each time: the final Learn Amp state equals the expected
//! one, with 0 duplicate users and 0 duplicate invitations."
//!
//! The real `personio-sync serve` binary runs as a child process against the two
//! simulators in this process (Learn Amp slowed down a little, so the initial sync of
//! 2,000 people is killed in its middle several times). While it is killed and
//! restarted, a storm task keeps changing Personio (positions, names, offices, hires,
//! terminations, rehires): the simulator delivers its own webhooks, retrying while the
//! binary is down, and the storm also posts some deliveries itself, retrying until 200.
//! The first 16 kills land at random moments of the initial sync; the last 4 wait for
//! it to finish and land while the webhooks stored meanwhile are being applied.
//! After the 20th restart the test lets everything settle, asks for one more full
//! reconciliation (to cover events whose retries ran out while the binary was down),
//! and checks Learn Amp against Personio field by field, plus the invitations.
//!
//! The seed is printed; `CRASH_STORM_SEED=<n>` replays the random choices (the timing
//! of the kills relative to the service's work cannot be replayed exactly).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::child::ServiceProcess;
use crate::helpers::{
    FIRST_NAMES, POSITIONS, problems_summary, seed_from_env, simulator_mismatches, tenant_spec,
    webhook_body, webhook_payload,
};
use personio_sync_sim::generator::SimEmployee;
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig, SimUserStatus};
use personio_sync_sim::person::EmployeeStatus;
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig, WebhookStatus};

/// The tenant of the test.
const TENANT: &str = "storm";
/// Employees generated before the first kill.
const EMPLOYEES: usize = 2000;
/// SIGKILLs (each followed by a restart).
const KILLS: usize = 20;
/// The last kills wait for the initial sync to finish first, so that they land while
/// the backlog of stored webhooks and the storm are being applied.
const KILLS_AFTER_INITIAL_SYNC: usize = 4;
/// A fixed secrets key, so every start can read the secrets stored by the first.
const SECRET_KEY: &str = "5eed0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";
/// Learn Amp latency per call while the binary is being killed.
const LEARNAMP_LATENCY: Duration = Duration::from_millis(2);
/// Id of the first hire of the storm.
const FIRST_HIRE_ID: u64 = 900_001;
/// How long one of the storm's own deliveries is retried before it counts as lost.
const OWN_POST_DEADLINE: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------
// The storm
// ---------------------------------------------------------------------------------------

/// Where and how the storm posts its own deliveries.
#[derive(Clone)]
struct Front {
    http: reqwest::Client,
    url: String,
    token: String,
    company_id: String,
}

/// What became of one of the storm's own deliveries.
struct OwnPost {
    event_name: &'static str,
    person_id: String,
    attempts: u32,
    /// `None`: answered 200; otherwise why it never was.
    failure: Option<String>,
}

/// Posts one delivery until it is answered 200 (connection errors and 5xx are retried,
/// as Personio would), any other status or the deadline ends it.
async fn post_until_accepted(front: Front, event_name: &'static str, person_id: String) -> OwnPost {
    let body = webhook_body(
        &front.company_id,
        event_name,
        webhook_payload(event_name, &person_id),
    );
    let deadline = Instant::now() + OWN_POST_DEADLINE;
    let mut attempts = 0;
    let mut last = String::new();
    while Instant::now() < deadline {
        attempts += 1;
        let answer = front
            .http
            .post(&front.url)
            .header("authorization", &front.token)
            .json(&body)
            .send()
            .await;
        match answer {
            Ok(response) if response.status().as_u16() == 200 => {
                return OwnPost {
                    event_name,
                    person_id,
                    attempts,
                    failure: None,
                };
            }
            Ok(response) if response.status().is_server_error() => {
                last = format!("answered {}", response.status());
            }
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                return OwnPost {
                    event_name,
                    person_id,
                    attempts,
                    failure: Some(format!("answered {status}: {text}")),
                };
            }
            Err(error) => last = format!("no answer: {}", error.without_url()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    OwnPost {
        event_name,
        person_id,
        attempts,
        failure: Some(format!("no 200 within {OWN_POST_DEADLINE:?}; last: {last}")),
    }
}

/// Random changes to the Personio simulator; it emits the webhooks itself.
struct Storm {
    personio: Arc<PersonioSim>,
    front: Front,
    rng: StdRng,
    seed: u64,
    today: NaiveDate,
    next_hire: u64,
    counts: BTreeMap<&'static str, usize>,
    posts: tokio::task::JoinSet<OwnPost>,
}

/// What the storm did.
struct StormReport {
    counts: BTreeMap<&'static str, usize>,
    posts: Vec<OwnPost>,
}

impl Storm {
    fn new(personio: Arc<PersonioSim>, front: Front, seed: u64) -> Storm {
        Storm {
            personio,
            front,
            rng: StdRng::seed_from_u64(seed ^ 0x5707_3a11),
            seed,
            today: Utc::now().date_naive(),
            next_hire: FIRST_HIRE_ID,
            counts: BTreeMap::new(),
            posts: tokio::task::JoinSet::new(),
        }
    }

    /// Mutates until `stop`, then waits for its own deliveries.
    async fn run(mut self, stop: Arc<AtomicBool>) -> StormReport {
        while !stop.load(Ordering::Relaxed) {
            if let Some((kind, events)) = self.mutate() {
                *self.counts.entry(kind).or_default() += 1;
                // About a third of the changes are also delivered by the storm itself
                // (a duplicate of the simulator's own delivery, sent concurrently).
                if self.rng.random_bool(0.35) {
                    for (event_name, id) in events {
                        let front = self.front.clone();
                        self.posts.spawn(post_until_accepted(front, event_name, id));
                    }
                }
            }
            let pause = self.rng.random_range(40..160);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        let posts = self.posts.join_all().await;
        StormReport {
            counts: self.counts,
            posts,
        }
    }

    /// One random change; returns its kind and the deliveries that announce it, or
    /// `None` when the drawn change is not possible now.
    fn mutate(&mut self) -> Option<(&'static str, Vec<(&'static str, String)>)> {
        let people = self.personio.employees();
        let ticket = self.rng.random_range(0..100);
        let working: Vec<&SimEmployee> = people
            .iter()
            .filter(|person| !person.employee.is_inactive())
            .collect();
        let (kind, person, events) = match ticket {
            0..45 => {
                let mut person = (*working.choose(&mut self.rng)?).clone();
                person.employee.position = POSITIONS.choose(&mut self.rng).map(|s| s.to_string());
                ("position", person, vec!["employment.updated"])
            }
            45..55 => {
                let mut person = (*people.choose(&mut self.rng)?).clone();
                person.employee.first_name =
                    FIRST_NAMES.choose(&mut self.rng).map(|s| s.to_string());
                ("name", person, vec!["person.updated"])
            }
            55..62 => {
                let offices = self.personio.company().offices;
                let mut person = (*working.choose(&mut self.rng)?).clone();
                person.employee.office = offices.choose(&mut self.rng).cloned();
                ("office", person, vec!["employment.updated"])
            }
            62..76 => {
                let template = (*working.choose(&mut self.rng)?).clone();
                let person = self.hire(template);
                ("hire", person, vec!["person.created", "employment.created"])
            }
            76..90 => {
                let mut person = (*working.choose(&mut self.rng)?).clone();
                if !department_keeps_someone(&people, &person) {
                    return None;
                }
                let days = self.rng.random_range(0..10);
                person.employee.status = Some(EmployeeStatus::Inactive);
                person.employee.termination_date = Some(self.today - Days::new(days));
                person.employee.last_working_day = person.employee.termination_date;
                ("termination", person, vec!["employment.updated"])
            }
            _ => {
                let inactive: Vec<&SimEmployee> = people
                    .iter()
                    .filter(|person| person.employee.is_inactive())
                    .collect();
                let mut person = (*inactive.choose(&mut self.rng)?).clone();
                person.employee.status = Some(EmployeeStatus::Active);
                person.employee.termination_date = None;
                person.employee.last_working_day = None;
                person.employee.hire_date = Some(self.today);
                ("rehire", person, vec!["employment.updated"])
            }
        };
        let id = person.employee.id.clone();
        self.personio.upsert_employee(person);
        Some((
            kind,
            events
                .into_iter()
                .map(|event| (event, id.clone()))
                .collect(),
        ))
    }

    /// A new active employee copied from `template`, with a unique id and email.
    fn hire(&mut self, mut person: SimEmployee) -> SimEmployee {
        let number = self.next_hire;
        self.next_hire += 1;
        let supervisor = person.employee.id.clone();
        let employee = &mut person.employee;
        employee.id = number.to_string();
        employee.email = Some(format!("storm{}.{number}@storm.example.test", self.seed));
        employee.first_name = Some(format!("Storm{number}"));
        employee.position = POSITIONS.choose(&mut self.rng).map(|s| s.to_string());
        employee.status = Some(EmployeeStatus::Active);
        employee.hire_date = Some(self.today - Days::new(self.rng.random_range(0..30)));
        employee.termination_date = None;
        employee.last_working_day = None;
        employee.supervisor_id = Some(supervisor);
        person.created_at = String::new();
        person
    }
}

/// Whether `person`'s department keeps another working member (Learn Amp keeps the
/// teams of emptied departments, and the matcher expects one team per staffed one).
pub(crate) fn department_keeps_someone(people: &[SimEmployee], person: &SimEmployee) -> bool {
    let Some(department) = &person.employee.department else {
        return true;
    };
    people.iter().any(|other| {
        other.employee.id != person.employee.id
            && !other.employee.is_inactive()
            && other
                .employee
                .department
                .as_ref()
                .is_some_and(|d| d.id == department.id)
    })
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

/// Invitation problems: a user invited twice, a user that is not deactivated but was
/// not invited exactly once (`immediately` policy).
pub(crate) fn invitation_problems(learnamp: &LearnAmpSim) -> Vec<String> {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for invitation in learnamp.invitations() {
        *counts.entry(invitation.user_id).or_default() += 1;
    }
    let mut problems = Vec::new();
    for user in learnamp.users() {
        let count = counts.remove(&user.id).unwrap_or(0);
        let who = format!(
            "user {} (person {}, {:?})",
            user.id,
            user.integration_external_id.as_deref().unwrap_or("-"),
            user.status
        );
        if count > 1 {
            problems.push(format!("{who} invited {count} times"));
        } else if count == 0 && user.status != SimUserStatus::Deactivated {
            problems.push(format!("{who} never invited"));
        }
    }
    for (user_id, count) in counts {
        problems.push(format!("{count} invitations for unknown user {user_id}"));
    }
    problems
}

/// For the first people named in `problems` (`person <id> …` or `user <id> (person
/// <id>, …)`): every Personio and Learn Amp call about
/// them, each with its position in the call log and the start of the binary that made
/// it (start `n` ran between kill `n - 1` and kill `n`; `kills_at` holds the call-log
/// lengths at each kill).
fn call_evidence(
    problems: &[String],
    personio: &PersonioSim,
    learnamp: &LearnAmpSim,
    kills_at: &[(usize, usize)],
) -> String {
    let people: Vec<String> = problems
        .iter()
        .filter_map(|problem| problem.split_once("person ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split([' ', ',']).next())
        .take(5)
        .map(str::to_string)
        .collect();
    let start_of = |index: usize, pick: fn(&(usize, usize)) -> usize| {
        1 + kills_at.iter().filter(|kill| pick(kill) <= index).count()
    };
    let personio_calls = personio.log.all();
    let learnamp_calls = learnamp.log.all();
    let mut lines = vec![format!(
        "call-log positions at the kills (learnamp, personio): {kills_at:?}"
    )];
    for id in people {
        let user_id = learnamp.user_by_external_id(&id).map(|user| user.id);
        lines.push(format!("person {id} (Learn Amp user {user_id:?}):"));
        let personio_needle = format!("/employees/{id}");
        for (index, call) in personio_calls.iter().enumerate() {
            if call.path.contains(&personio_needle) {
                lines.push(format!(
                    "  personio #{index} (start {}): {} {} -> {}",
                    start_of(index, |kill| kill.1),
                    call.method,
                    call.path,
                    call.status
                ));
            }
        }
        let Some(user_id) = user_id else { continue };
        let learnamp_needle = format!("/users/{user_id}");
        for (index, call) in learnamp_calls.iter().enumerate() {
            let about_user = call.path.ends_with(&learnamp_needle)
                || call.path.contains(&format!("{learnamp_needle}/"))
                || call.path.contains(&format!("{learnamp_needle}."));
            if about_user {
                lines.push(format!(
                    "  learnamp #{index} (start {}): {} {} -> {}",
                    start_of(index, |kill| kill.0),
                    call.method,
                    call.path,
                    call.status
                ));
            }
        }
    }
    lines.join("\n")
}

/// Waits until the simulator has made no delivery attempt for `quiet` (its retries
/// have run out or succeeded), failing after `timeout`.
async fn settle_deliveries(personio: &PersonioSim, quiet: Duration, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut seen = personio.deliveries().len();
    let mut since = Instant::now();
    while since.elapsed() < quiet {
        assert!(
            Instant::now() < deadline,
            "the simulator's deliveries did not settle within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = personio.deliveries().len();
        if now != seen {
            seen = now;
            since = Instant::now();
        }
    }
}

/// Users plus invitations in Learn Amp: the progress of the writes.
fn learnamp_progress(learnamp: &LearnAmpSim) -> usize {
    learnamp.users().len() + learnamp.invitations().len()
}

/// Waits for the next random kill moment after a (re)start: a random pause of 50 to
/// 1,500 ms, or (half of the time) the moment Learn Amp has received a random number (1
/// to 200) of new users and invitations, so that kills also land among the writes of
/// the initial sync, which each start reaches only after gathering; bounded by 5 s
/// (once the initial sync is done there is little left to wait for). Describes it.
async fn wait_for_kill_moment(rng: &mut StdRng, learnamp: &LearnAmpSim) -> String {
    let since = Instant::now();
    if rng.random_bool(0.5) {
        let pause = rng.random_range(50..1500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        return format!("after {pause:4} ms");
    }
    let writes = rng.random_range(1..=200);
    let target = learnamp_progress(learnamp) + writes;
    while learnamp_progress(learnamp) < target && since.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    format!("after {writes:3} writes or 5 s ({:?})", since.elapsed())
}

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sigkills_during_a_2000_people_sync_and_a_webhook_storm_leave_no_duplicate() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let seed = seed_from_env(
        "CRASH_STORM_SEED",
        now.map_or(0x5EED, |elapsed| elapsed.as_nanos() as u64),
    );
    crash_storm(seed).await;
}

/// A seed whose storm once ended with one report lacking its manager (`person 1740
/// manager: None != Some(1010)`): the report's manager was cleared in Learn Amp when
/// its boss was terminated, a SIGKILL right after that write lost the report's record
/// (it still claimed the boss), and the boss was rehired before the event was applied
/// again, so the live update and the final reconciliation both found Personio equal to
/// the record. The reconciliation now compares with what Learn Amp shows. The kill
/// timing cannot be replayed exactly: the lost record occurs in about a third of the
/// runs; `full_sync::a_reconciliation_restores_a_manager_learn_amp_lacks_though_the_record_claims_it`
/// holds the same state deterministically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_seed_1795593225848232899_restores_the_manager_a_lost_record_hid() {
    crash_storm(1_795_593_225_848_232_899).await;
}

/// The storm of `seed`: 20 SIGKILLs, then the checks of the module documentation.
async fn crash_storm(seed: u64) {
    let started = Instant::now();
    println!("crash storm seed {seed} (CRASH_STORM_SEED={seed} replays the random choices)");
    let mut rng = StdRng::seed_from_u64(seed);

    let personio = Arc::new(
        PersonioSim::start(PersonioSimConfig {
            employees: EMPLOYEES,
            seed,
            ..PersonioSimConfig::default()
        })
        .await
        .expect("personio sim"),
    );
    // Personio retries for about 13 s: long enough for most kills, not for all (the
    // final reconciliation covers what is lost).
    personio.set_retry_delays(
        [100, 200, 400, 800, 1600, 3200, 3200, 3200]
            .into_iter()
            .map(Duration::from_millis)
            .collect(),
    );
    let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default())
        .await
        .expect("learn amp sim");
    learnamp.knobs.set_latency(LEARNAMP_LATENCY);
    let mut service = ServiceProcess::start(&[
        ("PERSONIO_SYNC_SECRET_KEY", SECRET_KEY),
        ("RUST_LOG", "warn"),
    ])
    .await;

    let spec = tenant_spec(
        TENANT,
        &personio,
        &learnamp,
        json!({"invite_policy": {"mode": "immediately"}}),
    );
    let (status, body) = service
        .admin(reqwest::Method::POST, "/admin/tenants", Some(&spec))
        .await;
    assert_eq!(status, 201, "{body}");

    // The tenant registers its subscription before the initial sync.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !personio
        .webhooks()
        .first()
        .is_some_and(|hook| hook.status == WebhookStatus::Enabled)
    {
        assert!(
            Instant::now() < deadline,
            "no enabled subscription within 30 s:\n{}",
            service.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let view = service.view(TENANT).await;
    let front = Front {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .expect("client"),
        url: view["webhook_url"]
            .as_str()
            .expect("webhook_url")
            .to_string(),
        token: personio.webhooks()[0]
            .token
            .as_ref()
            .expect("token")
            .expose()
            .to_string(),
        company_id: personio.company().company_id,
    };

    let stop = Arc::new(AtomicBool::new(false));
    let storm = tokio::spawn(Storm::new(personio.clone(), front, seed).run(stop.clone()));

    let mut during_initial_sync = 0;
    // Call-log positions of every kill (Learn Amp, Personio), for failure evidence.
    let mut kills_at: Vec<(usize, usize)> = Vec::new();
    for kill in 1..=KILLS {
        if kill == KILLS - KILLS_AFTER_INITIAL_SYNC + 1 {
            let view = service
                .wait_view(
                    TENANT,
                    "the initial sync (storm still on)",
                    Duration::from_secs(150),
                    |view| view["last_sync"]["finished_at"].is_string(),
                )
                .await;
            println!(
                "initial sync done after {:?}; {} events pending",
                started.elapsed(),
                view["pending_events"]
            );
        }
        let moment = wait_for_kill_moment(&mut rng, &learnamp).await;
        let (_, view) = service
            .admin(
                reqwest::Method::GET,
                &format!("/admin/tenants/{TENANT}"),
                None,
            )
            .await;
        let initial = !view["last_sync"]["finished_at"].is_string();
        during_initial_sync += usize::from(initial);
        let users = learnamp.users().len();
        let invitations = learnamp.invitations().len();
        kills_at.push((learnamp.log.len(), personio.log.len()));
        let status = service.kill_and_restart().await;
        assert!(!status.success(), "kill {kill}: {status}");
        println!(
            "kill {kill:2} {moment}: state {}, initial sync {}, {users} users, {invitations} invitations, pending {}",
            view["state"],
            if initial { "running" } else { "done" },
            view["pending_events"]
        );
    }
    let killing_took = started.elapsed();

    stop.store(true, Ordering::Relaxed);
    let report = storm.await.expect("storm task");
    println!(
        "storm: {:?}; {} own deliveries ({} attempts)",
        report.counts,
        report.posts.len(),
        report.posts.iter().map(|post| post.attempts).sum::<u32>()
    );
    let lost: Vec<String> = report
        .posts
        .iter()
        .filter_map(|post| {
            post.failure.as_ref().map(|failure| {
                format!(
                    "{} for person {} after {} attempts: {failure}",
                    post.event_name, post.person_id, post.attempts
                )
            })
        })
        .collect();
    assert!(
        lost.is_empty(),
        "own deliveries never answered 200: {lost:?}\n{}",
        service.log_tail()
    );
    settle_deliveries(&personio, Duration::from_secs(4), Duration::from_secs(60)).await;

    // The initial sync completes and the inbox drains with no operator action.
    let view = service
        .wait_view(
            TENANT,
            "the initial sync and an empty inbox",
            Duration::from_secs(120),
            |view| {
                view["state"] == "live"
                    && view["pending_events"] == 0
                    && view["last_sync"]["finished_at"].is_string()
            },
        )
        .await;
    let before_reconciliation = simulator_mismatches(&personio, &learnamp);
    println!(
        "converged by itself after {:?}: {} differences left for the reconciliation (first 5: {:?})",
        started.elapsed(),
        before_reconciliation.len(),
        &before_reconciliation[..before_reconciliation.len().min(5)]
    );

    // One more full reconciliation, for events whose delivery retries ran out.
    let previous = view["last_sync"]["finished_at"].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = service
            .admin(
                reqwest::Method::POST,
                &format!("/admin/tenants/{TENANT}/sync"),
                None,
            )
            .await;
        if status == 202 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "POST /sync answered {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let view = service
        .wait_view(
            TENANT,
            "the reconciliation",
            Duration::from_secs(120),
            |view| {
                view["last_sync"]["finished_at"].is_string()
                    && view["last_sync"]["finished_at"] != previous
                    && view["state"] == "live"
                    && view["pending_events"] == 0
            },
        )
        .await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut problems = simulator_mismatches(&personio, &learnamp);
    while !problems.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        problems = simulator_mismatches(&personio, &learnamp);
    }
    let panics = service.log_lines("panicked");
    let invitation_problems = invitation_problems(&learnamp);
    assert!(
        problems.is_empty() && invitation_problems.is_empty(),
        "after {KILLS} SIGKILLs (seed {seed}):\nLearn Amp differs from Personio: {}\n{}\ninvitations: {}\nview: {view}\npanics: {panics:?}\n{}",
        problems_summary(&problems),
        call_evidence(
            &[problems.as_slice(), invitation_problems.as_slice()].concat(),
            &personio,
            &learnamp,
            &kills_at
        ),
        problems_summary(&invitation_problems),
        service.log_tail()
    );
    let users = learnamp.users();
    let working = personio
        .employees()
        .iter()
        .filter(|person| !person.employee.is_inactive())
        .count();
    let deactivated = users
        .iter()
        .filter(|user| user.status == SimUserStatus::Deactivated)
        .count();
    assert_eq!(
        users.len() - deactivated,
        working,
        "one live user per working person"
    );
    println!(
        "{KILLS} SIGKILLs ({during_initial_sync} during the initial sync) in {killing_took:?}; \
         {} users ({deactivated} deactivated), {} invitations, {} panics logged; done in {:?}",
        users.len(),
        learnamp.invitations().len(),
        panics.len(),
        started.elapsed()
    );
}
