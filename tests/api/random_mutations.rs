//! Issue acceptance: a seeded randomised run of at least 500 Personio mutations over
//! at least 100 employees (names, emails, positions, departments, offices, supervisors,
//! hires, terminations, deletions, rehires), delivered as webhooks in shuffled order with
//! 20% duplicates, ends with Learn Amp equal to the mapping of Personio's final state
//! and no duplicate user.
//!
//! The simulator's own (ordered) deliveries are switched off by disabling its
//! subscription, so the test's shuffled, duplicated deliveries are the only ones. Every
//! delivery is sent after the change it announces (as Personio would), but possibly
//! several rounds later, and duplicates travel separately from their originals.
//!
//! The seed is printed; `MUTATION_SEED=<n>` replays a run.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::helpers::{
    FIRST_NAMES, POSITIONS, TestApp, assert_learnamp_matches_personio, learnamp_mismatches,
    problems_summary, seed_from_env, set_subscriptions_status, spawn_app, webhook_body,
    webhook_payload,
};
use crate::webhooks::{live_tenant, post_raw};
use personio_sync_sim::generator::{OrgUnitKind, SimEmployee, tiny_png};
use personio_sync_sim::person::{EmployeeStatus, OrgRef};

/// Employees generated before the first mutation.
const EMPLOYEES: usize = 120;
/// Mutations applied to Personio.
const MUTATIONS: usize = 520;
/// Mutations are applied in this many rounds, deliveries sent between rounds.
const ROUNDS: usize = 10;
/// Share of deliveries sent twice.
const DUPLICATE_SHARE: f64 = 0.2;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 8;
/// Id of the first hire.
const FIRST_HIRE_ID: u64 = 70_001;

/// One webhook delivery to send: what the simulator would send for a change.
#[derive(Debug, Clone)]
struct Delivery {
    event_name: &'static str,
    payload: Value,
}

/// The delivery of `event_name` (`person.*` or `employment.*`) about person `id`.
fn event(event_name: &'static str, id: &str) -> Delivery {
    Delivery {
        event_name,
        payload: webhook_payload(event_name, id),
    }
}

/// The kinds of mutation, with their weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Name,
    Email,
    Position,
    Department,
    Office,
    Supervisor,
    Several,
    Hire,
    Termination,
    Deletion,
    Rehire,
}

const KINDS: &[(Kind, u32)] = &[
    (Kind::Name, 11),
    (Kind::Email, 11),
    (Kind::Position, 12),
    (Kind::Department, 11),
    (Kind::Office, 9),
    (Kind::Supervisor, 11),
    (Kind::Several, 6),
    (Kind::Hire, 11),
    (Kind::Termination, 8),
    (Kind::Deletion, 4),
    (Kind::Rehire, 6),
];

const LAST_NAMES: &[&str] = &["Quast", "Oyelaran", "Nakamura", "Øberg", "de la Cruz", "Li"];

/// Generates and applies mutations, keeping what the checks need.
struct Mutator {
    rng: StdRng,
    seed: u64,
    today: NaiveDate,
    departments: Vec<OrgRef>,
    offices: Vec<OrgRef>,
    /// Departments some non-inactive person was ever in: each must keep one, since
    /// Learn Amp keeps their teams (`remove_empty_teams` is off) and the matcher
    /// expects one team per department of a non-inactive person.
    used_departments: BTreeSet<String>,
    /// Every person id that ever existed.
    ever: HashSet<String>,
    next_hire: u64,
    emails: u64,
    applied: HashMap<Kind, usize>,
}

impl Mutator {
    fn new(app: &TestApp, seed: u64) -> Self {
        let company = app.personio.company();
        let departments = company
            .org_units
            .iter()
            .filter(|unit| unit.kind == OrgUnitKind::Department)
            .map(|unit| OrgRef {
                id: unit.id.clone(),
                name: unit.name.clone(),
            })
            .collect();
        let used_departments = company
            .employees
            .iter()
            .filter(|person| !person.employee.is_inactive())
            .filter_map(|person| person.employee.department.as_ref())
            .map(|department| department.id.clone())
            .collect();
        let ever = company
            .employees
            .iter()
            .map(|person| person.employee.id.clone())
            .collect();
        Self {
            rng: StdRng::seed_from_u64(seed ^ 0x6d75_7461_7465),
            seed,
            today: Utc::now().date_naive(),
            departments,
            offices: company.offices,
            used_departments,
            ever,
            next_hire: FIRST_HIRE_ID,
            emails: 0,
            applied: HashMap::new(),
        }
    }

    fn fresh_email(&mut self) -> String {
        self.emails += 1;
        format!("mut{}.{}@mutations.example.test", self.seed, self.emails)
    }

    fn pick_kind(&mut self) -> Kind {
        let total: u32 = KINDS.iter().map(|(_, weight)| weight).sum();
        let mut ticket = self.rng.random_range(0..total);
        for (kind, weight) in KINDS {
            if ticket < *weight {
                return *kind;
            }
            ticket -= weight;
        }
        Kind::Position
    }

    /// Whether every used department keeps a non-inactive member after `change`
    /// (`None` = deletion of `id`).
    fn keeps_departments(
        &self,
        people: &[SimEmployee],
        id: &str,
        change: Option<&SimEmployee>,
    ) -> bool {
        let mut staffed: HashSet<&str> = HashSet::new();
        for person in people.iter().filter(|p| p.employee.id != id).chain(change) {
            if !person.employee.is_inactive()
                && let Some(department) = &person.employee.department
            {
                staffed.insert(department.id.as_str());
            }
        }
        self.used_departments
            .iter()
            .all(|department| staffed.contains(department.as_str()))
    }

    /// Applies one random mutation to the Personio simulator and returns the deliveries
    /// that announce it; `None` when the drawn mutation is not possible right now.
    fn mutate(&mut self, app: &TestApp) -> Option<Vec<Delivery>> {
        let people = app.personio.employees();
        let kind = self.pick_kind();
        let existing: Vec<&SimEmployee> = people.iter().collect();
        let inactive: Vec<&SimEmployee> =
            people.iter().filter(|p| p.employee.is_inactive()).collect();
        let working: Vec<&SimEmployee> = people
            .iter()
            .filter(|p| !p.employee.is_inactive())
            .collect();
        let target = match kind {
            Kind::Hire => None,
            Kind::Rehire => Some((*inactive.choose(&mut self.rng)?).clone()),
            Kind::Termination => Some((*working.choose(&mut self.rng)?).clone()),
            _ => Some((*existing.choose(&mut self.rng)?).clone()),
        };
        if kind == Kind::Deletion {
            let id = target?.employee.id;
            if !self.keeps_departments(&people, &id, None) {
                return None;
            }
            assert!(app.personio.delete_employee(&id), "delete {id}");
            *self.applied.entry(kind).or_default() += 1;
            return Some(vec![
                event("person.deleted", &id),
                event("employment.deleted", &id),
            ]);
        }
        let (person, deliveries) = match target {
            None => self.hire(&people),
            Some(mut person) => {
                let deliveries = self.change(kind, &mut person, &people);
                (person, deliveries)
            }
        };
        if !self.keeps_departments(&people, &person.employee.id, Some(&person)) {
            return None;
        }
        if !person.employee.is_inactive()
            && let Some(department) = &person.employee.department
        {
            self.used_departments.insert(department.id.clone());
        }
        self.ever.insert(person.employee.id.clone());
        app.personio.upsert_employee(person);
        *self.applied.entry(kind).or_default() += 1;
        Some(deliveries)
    }

    fn random_supervisor(&mut self, people: &[SimEmployee], not: &str) -> Option<String> {
        if self.rng.random_bool(0.1) {
            return None;
        }
        people
            .iter()
            .filter(|p| p.employee.id != not)
            .collect::<Vec<_>>()
            .choose(&mut self.rng)
            .map(|p| p.employee.id.clone())
    }

    fn hire(&mut self, people: &[SimEmployee]) -> (SimEmployee, Vec<Delivery>) {
        let id_number = self.next_hire;
        self.next_hire += 1;
        let id = id_number.to_string();
        let mut person = people
            .choose(&mut self.rng)
            .cloned()
            .expect("somebody to copy");
        person.created_at = String::new();
        let employee = &mut person.employee;
        employee.id = id.clone();
        employee.first_name = FIRST_NAMES.choose(&mut self.rng).map(|s| s.to_string());
        employee.last_name = LAST_NAMES.choose(&mut self.rng).map(|s| s.to_string());
        employee.position = POSITIONS.choose(&mut self.rng).map(|s| s.to_string());
        employee.department = self.departments.choose(&mut self.rng).cloned();
        employee.office = self.offices.choose(&mut self.rng).cloned();
        employee.termination_date = None;
        employee.last_working_day = None;
        let onboarding = self.rng.random_bool(0.3);
        let (status, hire_date) = if onboarding {
            let days = self.rng.random_range(1..60);
            (EmployeeStatus::Onboarding, self.today + Days::new(days))
        } else {
            let days = self.rng.random_range(0..30);
            (EmployeeStatus::Active, self.today - Days::new(days))
        };
        employee.status = Some(status);
        employee.hire_date = Some(hire_date);
        person.picture = self.rng.random_bool(0.5).then(|| tiny_png(id_number, 7));
        person.employee.email = Some(self.fresh_email());
        person.employee.supervisor_id = self.random_supervisor(people, &id);
        (
            person,
            vec![
                event("person.created", &id),
                event("employment.created", &id),
            ],
        )
    }

    fn change(
        &mut self,
        kind: Kind,
        person: &mut SimEmployee,
        people: &[SimEmployee],
    ) -> Vec<Delivery> {
        let id = person.employee.id.clone();
        let kinds = if kind == Kind::Several {
            let mut several = vec![
                Kind::Name,
                Kind::Email,
                Kind::Position,
                Kind::Department,
                Kind::Office,
                Kind::Supervisor,
            ];
            several.shuffle(&mut self.rng);
            several.truncate(self.rng.random_range(2..5));
            several
        } else {
            vec![kind]
        };
        let (mut person_changed, mut employment_changed) = (false, false);
        for kind in kinds {
            let employee = &mut person.employee;
            match kind {
                Kind::Name => {
                    person_changed = true;
                    let first = FIRST_NAMES.choose(&mut self.rng).map(|s| s.to_string());
                    if self.rng.random_bool(0.5) {
                        employee.first_name = first;
                    } else {
                        employee.last_name =
                            LAST_NAMES.choose(&mut self.rng).map(|s| s.to_string());
                    }
                }
                Kind::Email => {
                    person_changed = true;
                    employee.email = Some(self.fresh_email());
                }
                Kind::Position => {
                    employment_changed = true;
                    employee.position = POSITIONS.choose(&mut self.rng).map(|s| s.to_string());
                }
                Kind::Department => {
                    employment_changed = true;
                    employee.department = self.departments.choose(&mut self.rng).cloned();
                }
                Kind::Office => {
                    employment_changed = true;
                    employee.office = self.offices.choose(&mut self.rng).cloned();
                }
                Kind::Supervisor => {
                    employment_changed = true;
                    employee.supervisor_id = self.random_supervisor(people, &id);
                }
                Kind::Termination => {
                    employment_changed = true;
                    employee.status = Some(EmployeeStatus::Inactive);
                    let days = self.rng.random_range(0..20);
                    employee.termination_date = Some(self.today - Days::new(days));
                    employee.last_working_day = employee.termination_date;
                }
                Kind::Rehire => {
                    employment_changed = true;
                    employee.status = Some(EmployeeStatus::Active);
                    employee.termination_date = None;
                    employee.last_working_day = None;
                    employee.hire_date = Some(self.today);
                }
                Kind::Several | Kind::Hire | Kind::Deletion => {}
            }
        }
        let mut deliveries = Vec::new();
        if person_changed {
            deliveries.push(event("person.updated", &id));
        }
        if employment_changed {
            deliveries.push(event("employment.updated", &id));
        }
        deliveries
    }
}

/// Posts `batch` to the tenant's webhook URL, `IN_FLIGHT` at a time; each must be 200.
async fn send(app: &TestApp, url: &str, token: &str, company_id: &str, batch: Vec<Delivery>) {
    let results: Vec<(Delivery, u16, Value)> = futures::stream::iter(batch)
        .map(|delivery| async move {
            let body = webhook_body(company_id, delivery.event_name, delivery.payload.clone());
            let bytes = serde_json::to_vec(&body).expect("json");
            let (status, answer) = post_raw(app, url, Some(token), bytes).await;
            (delivery, status, answer)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for (delivery, status, answer) in results {
        assert_eq!(status, 200, "{delivery:?} answered {status}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffled_duplicated_webhooks_for_500_random_mutations_converge() {
    let seed = seed_from_env("MUTATION_SEED", 0x5EED_2026);
    println!("random mutations: seed {seed} (replay with MUTATION_SEED={seed})");
    let started = Instant::now();
    let app = spawn_app(EMPLOYEES, seed).await;
    let view = live_tenant(&app, "mut", json!({})).await;
    assert_eq!(app.personio.employees().len(), EMPLOYEES);
    let url = view["webhook_url"]
        .as_str()
        .expect("webhook_url")
        .to_string();
    let token = app.personio.webhooks()[0]
        .token
        .clone()
        .expect("subscription token");
    let token = token.expose().to_string();
    let company_id = app.personio.company().company_id;
    set_subscriptions_status(&app.personio, "DISABLED").await;
    let users_before = app.learnamp.users().len();
    let applied_before = view["live"]["events_applied"].as_u64().unwrap_or(0);
    println!(
        "initial sync of {EMPLOYEES} employees ({users_before} users) in {:?}",
        started.elapsed()
    );

    let mut mutator = Mutator::new(&app, seed);
    let mut shuffle_rng = StdRng::seed_from_u64(seed ^ 0x7368_7566);
    let mut pool: Vec<Delivery> = Vec::new();
    let (mut mutations, mut deliveries, mut duplicates, mut sent) = (0, 0, 0, 0);
    let per_round = MUTATIONS.div_ceil(ROUNDS);
    for round in 0..ROUNDS {
        let mut done = 0;
        let mut attempts = 0;
        while done < per_round && mutations < MUTATIONS {
            attempts += 1;
            assert!(attempts < per_round * 20, "no possible mutation left");
            let Some(announced) = mutator.mutate(&app) else {
                continue;
            };
            done += 1;
            mutations += 1;
            for delivery in announced {
                deliveries += 1;
                if shuffle_rng.random_bool(DUPLICATE_SHARE) {
                    duplicates += 1;
                    pool.push(delivery.clone());
                }
                pool.push(delivery);
            }
        }
        pool.shuffle(&mut shuffle_rng);
        let keep = if round + 1 == ROUNDS {
            0
        } else {
            shuffle_rng.random_range(0..=pool.len() / 2)
        };
        let batch: Vec<Delivery> = pool.drain(keep..).collect();
        sent += batch.len();
        send(&app, &url, &token, &company_id, batch).await;
    }
    assert!(pool.is_empty());
    println!(
        "{mutations} mutations {:?}: {deliveries} deliveries + {duplicates} duplicates = {sent} sent, in {:?}",
        mutator.applied,
        started.elapsed()
    );
    assert!(mutations >= 500, "{mutations} mutations");
    assert_eq!(sent, deliveries + duplicates);
    for kind in KINDS.iter().map(|(kind, _)| kind) {
        assert!(
            mutator.applied.get(kind).copied().unwrap_or(0) > 0,
            "no {kind:?} mutation in this run"
        );
    }

    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let view = app.view("mut").await;
        let problems = if view["pending_events"] == 0 {
            learnamp_mismatches(&app)
        } else {
            vec![format!("{} events pending", view["pending_events"])]
        };
        if problems.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not converged after {sent} deliveries: {view}\n{}",
            problems_summary(&problems)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("converged after {:?}", started.elapsed());
    assert_learnamp_matches_personio(&app);

    let view = app.view("mut").await;
    assert_eq!(view["state"], "live", "{view}");
    assert_eq!(view["last_error"], Value::Null, "{view}");
    assert_eq!(
        view["live"]["events_applied"].as_u64(),
        Some(applied_before + sent as u64),
        "every delivery stored and applied exactly once: {view}"
    );
    // No duplicate user: one user per person who ever existed at most, each linked.
    let users = app.learnamp.users();
    let mut linked = HashSet::new();
    for user in &users {
        let external = user
            .integration_external_id
            .as_deref()
            .unwrap_or_else(|| panic!("user {} ({}) has no external id", user.id, user.email));
        assert!(
            mutator.ever.contains(external),
            "user {} linked to unknown person {external}",
            user.id
        );
        assert!(linked.insert(external), "two users for person {external}");
    }
    let working = app
        .personio
        .employees()
        .iter()
        .filter(|p| !p.employee.is_inactive())
        .count();
    assert!(users.len() >= working && users.len() <= mutator.ever.len());
    println!(
        "{} users for {} people ever ({} working now); done in {:?}",
        users.len(),
        mutator.ever.len(),
        working,
        started.elapsed()
    );
}

/// Posts person events for `ids`, in order, one at a time; each must be 200.
async fn announce(app: &TestApp, url: &str, token: &str, events: &[(&'static str, &str)]) {
    let company_id = app.personio.company().company_id;
    for (event_name, id) in events {
        send(app, url, token, &company_id, vec![event(event_name, id)]).await;
    }
}

/// A new hire copied from `template` with id `id`, a fresh email and `supervisor`.
fn new_hire(template: &SimEmployee, id: &str, supervisor: Option<&str>) -> SimEmployee {
    let mut hire = template.clone();
    hire.created_at = String::new();
    hire.employee.id = id.to_string();
    hire.employee.email = Some(format!("batch.{id}@mutations.example.test"));
    hire.employee.status = Some(EmployeeStatus::Active);
    hire.employee.termination_date = None;
    hire.employee.supervisor_id = supervisor.map(str::to_string);
    hire
}

/// The smallest form of what the randomised test finds: people named in one inbox
/// batch together with their (new or leaving) manager. Learn Amp is down while the
/// events arrive, so the tenant's next drain applies them as one batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_in_one_batch_with_their_manager_get_the_right_manager() {
    let app = spawn_app(12, 8).await;
    let view = live_tenant(&app, "batch", json!({})).await;
    let url = view["webhook_url"].as_str().expect("url").to_string();
    let token = app.personio.webhooks()[0].token.clone().expect("token");
    let token = token.expose().to_string();
    set_subscriptions_status(&app.personio, "DISABLED").await;
    let people = app.personio.employees();
    let working = |id: &str| {
        app.personio
            .employee(id)
            .is_some_and(|p| !p.employee.is_inactive())
    };
    // An existing manager who leaves, and one of their existing reports.
    let (leaver, report) = people
        .iter()
        .filter(|p| !p.employee.is_inactive())
        .find_map(|p| {
            let boss = p.employee.supervisor_id.as_deref()?;
            (working(boss) && boss != "1001").then(|| (boss.to_string(), p.clone()))
        })
        .expect("an active report of an active manager");
    let template = people[1].clone();

    app.learnamp.knobs.set_outage(true);
    // 1. A new manager and their new report.
    app.personio
        .upsert_employee(new_hire(&template, "80001", None));
    app.personio
        .upsert_employee(new_hire(&template, "80002", Some("80001")));
    // 2. A manager leaves; an existing report changes job; a new hire reports to them.
    let mut gone = app.personio.employee(&leaver).expect("leaver");
    gone.employee.status = Some(EmployeeStatus::Inactive);
    app.personio.upsert_employee(gone);
    let mut promoted = report.clone();
    promoted.employee.position = Some("Batch Tester".into());
    app.personio.upsert_employee(promoted);
    app.personio
        .upsert_employee(new_hire(&template, "80003", Some(&leaver)));
    // 3. A manager's email changes; a new hire reports to them.
    let renamed_id = people
        .iter()
        .map(|p| p.employee.id.clone())
        .find(|id| working(id) && *id != leaver && *id != report.employee.id)
        .expect("another working person");
    let mut renamed = app.personio.employee(&renamed_id).expect("renamed");
    renamed.employee.email = Some("renamed.manager@mutations.example.test".into());
    app.personio.upsert_employee(renamed);
    app.personio
        .upsert_employee(new_hire(&template, "80004", Some(&renamed_id)));
    announce(
        &app,
        &url,
        &token,
        &[
            ("person.created", "80001"),
            ("person.created", "80002"),
            ("employment.updated", &leaver),
            ("employment.updated", &report.employee.id),
            ("person.created", "80003"),
            ("person.updated", &renamed_id),
            ("person.created", "80004"),
        ],
    )
    .await;
    app.wait_for("batch", Duration::from_secs(30), |view| {
        view["state"] == "degraded"
    })
    .await;
    app.learnamp.knobs.set_outage(false);
    app.wait_for("batch", Duration::from_secs(30), |view| {
        view["pending_events"] == 0 && view["state"] == "live"
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let problems = learnamp_mismatches(&app);
        if problems.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "manager {leaver} left, report {}: {problems:#?}",
            report.employee.id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
