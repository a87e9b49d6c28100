//! Issue 17 acceptance, on loopback: `serve` nodes on one PostgreSQL database behind
//! Debian's nginx (round robin), each tenant against its own pair of simulators (one
//! Personio company, one Learn Amp account: a simulator is one company).
//!
//! - [`three_nodes_survive_a_sigkill_and_a_sigterm_mid_storm`]: 30 tenants created
//!   through the load balancer; a storm of Personio-side changes (positions, names,
//!   offices, hires, leavers, rehires) whose webhooks the simulators deliver through
//!   nginx, retrying what is not answered 200 as Personio does; one node SIGKILLed
//!   mid-storm, another SIGTERMed later. After each stop every tenant is `live` again,
//!   run by a surviving node, within the lease expiry plus 5 s (measured and printed);
//!   after the storm every delivery was accepted, every event applied (inboxes empty in
//!   the database), and each tenant's Learn Amp equals its Personio with no duplicate
//!   user and every user invited exactly once.
//! - [`a_paused_node_past_its_lease_is_refused_by_the_fence`]: the owner of a tenant is
//!   SIGSTOPped while it applies changes, past its lease; another node takes the lease
//!   over (a higher epoch) and applies further changes; the paused node, resumed, has
//!   its commits refused by the fence (`personio_sync_fenced_writes_total` on its
//!   `/metrics`), and the tenant ends correct, leased by one node, without duplicates.
//! - [`a_settings_preview_shown_by_one_node_is_confirmed_through_another`]: the settings
//!   preview of one process is confirmed through the other (one signing key for the
//!   cluster), and the node that does not run the tenant shows a preview its owner
//!   planned.
//!
//! All skip with a visible line without nginx or a PostgreSQL test server (and fail
//! instead with `CI` set). `FAILOVER_SEED=<n>` replays the storm's random choices.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::{PgPool, Row};

use crate::crash_storm::{department_keeps_someone, invitation_problems};
use crate::helpers::{
    FIRST_NAMES, POSITIONS, admin_request, postgres, problems_summary, seed_from_env,
    simulator_mismatches, tenant_spec,
};
use personio_sync::config::{Config, StorageBackend};
use personio_sync_sim::generator::SimEmployee;
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::person::EmployeeStatus;
use personio_sync_sim::personio::{DeliveryOutcome, PersonioSim, PersonioSimConfig};
use personio_sync_testkit::cluster::{Cluster, Node, metric_value, nginx_ready, wait_until};

/// `cluster.lease_seconds` of every node: short, so the test sees several expiries.
const LEASE_SECONDS: u64 = 6;
/// `cluster.renew_seconds` of every node.
const RENEW_SECONDS: u64 = 2;
/// The acceptance bound: every tenant is `live` again this long after a node stops.
const LIVE_AGAIN_WITHIN: Duration = Duration::from_secs(LEASE_SECONDS + 5);
/// Employees of each generated company.
const EMPLOYEES: usize = 10;
/// A fixed secrets key shared by every node (each unseals the specs the others stored).
const SECRET_KEY: &str = "fa11043123456789abcdef0123456789abcdef0123456789abcdef0123456789";
/// The commits the database refused (the lease row names another owner or epoch), on
/// each node's `/metrics`.
const FENCED_WRITES: &str = "personio_sync_fenced_writes_total{by=\"database\"}";

/// The simulators' delivery retries: about 25 s, longer than any stop of the tests
/// lasts, so a delivery is lost only if the service loses it.
fn retry_delays() -> Vec<Duration> {
    [
        100, 200, 400, 800, 1600, 3200, 3200, 3200, 3200, 3200, 3200, 3200,
    ]
    .into_iter()
    .map(Duration::from_millis)
    .collect()
}

// ---------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------

/// One customer: its tenant id and its two simulators.
struct Company {
    tenant: String,
    personio: Arc<PersonioSim>,
    learnamp: LearnAmpSim,
}

/// `count` companies of [`EMPLOYEES`] each, tenants `<prefix>-00`, `<prefix>-01`, …
async fn companies(prefix: &str, count: usize, seed: u64) -> Vec<Company> {
    let mut companies = Vec::new();
    for index in 0..count {
        let personio = PersonioSim::start(PersonioSimConfig {
            employees: EMPLOYEES,
            seed: seed.wrapping_add(index as u64),
            ..PersonioSimConfig::default()
        })
        .await
        .expect("personio sim");
        personio.set_retry_delays(retry_delays());
        let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default())
            .await
            .expect("learn amp sim");
        companies.push(Company {
            tenant: format!("{prefix}-{index:02}"),
            personio: Arc::new(personio),
            learnamp,
        });
    }
    companies
}

/// The id node `index` has in the lease table.
fn node_id(index: usize) -> String {
    format!("node-{index}")
}

/// A secrets key file every node reads (mode 0600).
fn key_file(dir: &Path) -> PathBuf {
    let path = dir.join("secret.key");
    std::fs::write(&path, SECRET_KEY).expect("key file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("key file mode");
    }
    path
}

/// Every node: the shared database and key, its own node id, short leases.
fn cluster_config(database_url: &str, key_file: &Path) -> impl Fn(usize, &mut Config) {
    let url = database_url.to_string();
    let key_file = key_file.to_path_buf();
    move |index, config| {
        config.storage.backend = StorageBackend::Postgres;
        config.storage.postgres_url = url.clone();
        config.storage.postgres_pool = 4;
        config.storage.key_file = key_file.clone();
        config.cluster.node_id = node_id(index);
        config.cluster.lease_seconds = LEASE_SECONDS;
        config.cluster.renew_seconds = RENEW_SECONDS;
    }
}

/// Creates every company's tenant through the front door (invitations sent at once).
async fn create_tenants(lb: &str, companies: &[Company]) {
    for company in companies {
        let spec = tenant_spec(
            &company.tenant,
            &company.personio,
            &company.learnamp,
            json!({"invite_policy": {"mode": "immediately"}}),
        );
        let (status, body) =
            admin_request(lb, reqwest::Method::POST, "/admin/tenants", Some(&spec)).await;
        assert_eq!(status, 201, "create {}: {body}", company.tenant);
    }
}

// ---------------------------------------------------------------------------------------
// What the database and the front door say
// ---------------------------------------------------------------------------------------

/// A row of `leases`.
#[derive(Debug, Clone)]
struct Lease {
    owner: Option<String>,
    epoch: i64,
    /// Not expired by the database's clock.
    valid: bool,
}

async fn leases(pool: &PgPool) -> BTreeMap<String, Lease> {
    sqlx::query(
        "SELECT tenant, owner, epoch, coalesce(expires_at > now(), false) AS valid FROM leases",
    )
    .fetch_all(pool)
    .await
    .expect("leases")
    .into_iter()
    .map(|row| {
        (
            row.get("tenant"),
            Lease {
                owner: row.get("owner"),
                epoch: row.get("epoch"),
                valid: row.get("valid"),
            },
        )
    })
    .collect()
}

/// A row of `tenant_views`: the state its owner last published, and when.
#[derive(Debug, Clone)]
struct Published {
    state: String,
    pending: i64,
    updated_at: f64,
}

async fn published_views(pool: &PgPool) -> BTreeMap<String, Published> {
    sqlx::query(
        "SELECT tenant, view->>'state' AS state,
                coalesce((view->>'pending_events')::bigint, 0) AS pending,
                extract(epoch FROM updated_at)::float8 AS updated_at
         FROM tenant_views",
    )
    .fetch_all(pool)
    .await
    .expect("tenant_views")
    .into_iter()
    .map(|row| {
        (
            row.get("tenant"),
            Published {
                state: row.get::<Option<String>, _>("state").unwrap_or_default(),
                pending: row.get("pending"),
                updated_at: row.get("updated_at"),
            },
        )
    })
    .collect()
}

/// The database's clock, in seconds since the epoch.
async fn db_now(pool: &PgPool) -> f64 {
    sqlx::query_scalar("SELECT extract(epoch FROM now())::float8")
        .fetch_one(pool)
        .await
        .expect("now()")
}

/// Stored inbox groups of every tenant.
async fn inbox_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM inbox")
        .fetch_one(pool)
        .await
        .expect("inbox count")
}

/// Every tenant's view as the front door serves it (`None` if it did not answer 200).
async fn front_door_views(lb: &str) -> Option<BTreeMap<String, Value>> {
    let (status, body) = admin_request(lb, reqwest::Method::GET, "/admin/tenants", None).await;
    if status != 200 {
        return None;
    }
    Some(
        body.as_array()?
            .iter()
            .map(|view| (view["id"].as_str().unwrap_or("").to_string(), view.clone()))
            .collect(),
    )
}

/// The tenants node `owner` holds a lease on.
fn held_by(leases: &BTreeMap<String, Lease>, owner: &str) -> BTreeSet<String> {
    leases
        .iter()
        .filter(|(_, lease)| lease.owner.as_deref() == Some(owner))
        .map(|(tenant, _)| tenant.clone())
        .collect()
}

/// Why `tenant` is not live on a running node (`None`: it is): its lease must be held,
/// unexpired, by one of `running`; its owner must have published `live` (after `since`,
/// by the database's clock, when it `moved` from a stopped node); the front door must
/// show it `live`.
fn not_live(
    tenant: &str,
    leases: &BTreeMap<String, Lease>,
    views: &BTreeMap<String, Published>,
    front: &BTreeMap<String, Value>,
    running: &[String],
    moved: bool,
    since: f64,
) -> Option<String> {
    let Some(lease) = leases.get(tenant) else {
        return Some("no lease row".into());
    };
    let owner = lease.owner.as_deref().unwrap_or("nobody");
    if !lease.valid || !running.iter().any(|node| node == owner) {
        return Some(format!(
            "lease held by {owner} (epoch {}, valid {})",
            lease.epoch, lease.valid
        ));
    }
    let Some(view) = views.get(tenant) else {
        return Some("no published view".into());
    };
    if moved && view.updated_at <= since {
        return Some(format!(
            "view not published since the stop (state {})",
            view.state
        ));
    }
    if view.state != "live" {
        return Some(format!("published state {}", view.state));
    }
    match front.get(tenant).map(|view| view["state"].clone()) {
        Some(state) if state == "live" => None,
        state => Some(format!("front door state {state:?}")),
    }
}

/// Waits until every tenant is live on a running node again after a stop at `stopped`
/// (`since` on the database's clock); returns how long that took. `front` is the
/// database, the load balancer and the companies. Tenants the stopped
/// node held are in `moved`. Fails past [`LIVE_AGAIN_WITHIN`] plus 20 s (to print the
/// figure), then on the bound itself.
async fn time_until_all_live(
    front: (&PgPool, &str, &[Company]),
    running: &[String],
    moved: &BTreeSet<String>,
    since: f64,
    stopped: Instant,
    what: &str,
) -> Duration {
    let (pool, lb, companies) = front;
    let give_up = stopped + LIVE_AGAIN_WITHIN + Duration::from_secs(20);
    let mut leased_after = None;
    let mut last_report = Instant::now();
    loop {
        let leases = leases(pool).await;
        let leased = companies.iter().all(|company| {
            leases.get(&company.tenant).is_some_and(|lease| {
                lease.valid
                    && running
                        .iter()
                        .any(|node| lease.owner.as_ref() == Some(node))
            })
        });
        if leased && leased_after.is_none() {
            leased_after = Some(stopped.elapsed());
        }
        let views = published_views(pool).await;
        let front = front_door_views(lb).await.unwrap_or_default();
        let waiting: Vec<String> = companies
            .iter()
            .filter_map(|company| {
                let tenant = &company.tenant;
                not_live(
                    tenant,
                    &leases,
                    &views,
                    &front,
                    running,
                    moved.contains(tenant),
                    since,
                )
                .map(|why| format!("{tenant}: {why}"))
            })
            .collect();
        let took = stopped.elapsed();
        if waiting.is_empty() {
            println!(
                "{what}: every tenant leased by a running node after {:.2} s, live again after {:.2} s ({} moved; bound {} s)",
                leased_after.unwrap_or(took).as_secs_f64(),
                took.as_secs_f64(),
                moved.len(),
                LIVE_AGAIN_WITHIN.as_secs()
            );
            assert!(
                took <= LIVE_AGAIN_WITHIN,
                "{what}: every tenant live again only after {took:?} (bound {LIVE_AGAIN_WITHIN:?})"
            );
            return took;
        }
        assert!(
            Instant::now() < give_up,
            "{what}: after {took:?}, {} tenants not live on a running node: {waiting:#?}",
            waiting.len()
        );
        if leased_after.is_some() && last_report.elapsed() > Duration::from_secs(1) {
            last_report = Instant::now();
            println!(
                "{what}: after {:.1} s, {} tenants still not live, first: {:?}",
                took.as_secs_f64(),
                waiting.len(),
                &waiting[..waiting.len().min(3)]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Deliveries
// ---------------------------------------------------------------------------------------

/// The simulators' webhook deliveries, over every company.
#[derive(Debug, Default)]
struct Deliveries {
    /// Events sent (first attempts).
    sent: usize,
    /// Attempts, retries included.
    attempts: usize,
    /// Attempts answered 200 (each delivery ends at its first).
    accepted: usize,
    /// Deliveries that ended without a 200: an answer not retried, or the last retry.
    lost: Vec<String>,
}

impl Deliveries {
    fn of(companies: &[Company]) -> Deliveries {
        let last_attempt = retry_delays().len() as u32 + 1;
        let mut deliveries = Deliveries::default();
        for company in companies {
            for record in company.personio.deliveries() {
                deliveries.attempts += 1;
                if record.attempt == 1 {
                    deliveries.sent += 1;
                }
                let ended = match &record.outcome {
                    DeliveryOutcome::Status(200) => {
                        deliveries.accepted += 1;
                        continue;
                    }
                    DeliveryOutcome::Status(status) => {
                        *status < 500 || *status == 501 || record.attempt == last_attempt
                    }
                    DeliveryOutcome::Error(_) => record.attempt == last_attempt,
                };
                if ended {
                    deliveries.lost.push(format!(
                        "{} {} {} attempt {}: {:?}",
                        company.tenant,
                        record.event_name,
                        record.payload,
                        record.attempt,
                        record.outcome
                    ));
                }
            }
        }
        deliveries
    }

    /// Whether every delivery has ended (accepted or lost).
    fn settled(&self) -> bool {
        self.accepted + self.lost.len() >= self.sent
    }
}

// ---------------------------------------------------------------------------------------
// The storm
// ---------------------------------------------------------------------------------------

/// Random Personio-side changes over every company; the simulators deliver the
/// webhooks.
struct Storm {
    personio: Vec<Arc<PersonioSim>>,
    rng: StdRng,
    today: NaiveDate,
    next_hire: u64,
    counts: BTreeMap<&'static str, usize>,
}

impl Storm {
    fn new(companies: &[Company], seed: u64) -> Storm {
        Storm {
            personio: companies
                .iter()
                .map(|company| company.personio.clone())
                .collect(),
            rng: StdRng::seed_from_u64(seed ^ 0x0fa1_10e7),
            today: Utc::now().date_naive(),
            next_hire: 700_001,
            counts: BTreeMap::new(),
        }
    }

    /// Changes a random company every 10 to 40 ms until `stop`; returns the changes
    /// made by kind.
    async fn run(mut self, stop: Arc<AtomicBool>) -> BTreeMap<&'static str, usize> {
        while !stop.load(Ordering::Relaxed) {
            let company = self.rng.random_range(0..self.personio.len());
            if let Some(kind) = self.mutate(company) {
                *self.counts.entry(kind).or_default() += 1;
            }
            let pause = self.rng.random_range(10..40);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        self.counts
    }

    /// One random change of company `index`: its kind, or `None` when the drawn
    /// change is not possible now.
    fn mutate(&mut self, index: usize) -> Option<&'static str> {
        let personio = self.personio[index].clone();
        let people = personio.employees();
        let working: Vec<&SimEmployee> = people
            .iter()
            .filter(|person| !person.employee.is_inactive())
            .collect();
        let (kind, person) = match self.rng.random_range(0..100) {
            0..45 => {
                let mut person = (*working.choose(&mut self.rng)?).clone();
                person.employee.position = POSITIONS.choose(&mut self.rng).map(|s| s.to_string());
                ("position", person)
            }
            45..55 => {
                let mut person = (*people.choose(&mut self.rng)?).clone();
                person.employee.first_name =
                    FIRST_NAMES.choose(&mut self.rng).map(|s| s.to_string());
                ("name", person)
            }
            55..62 => {
                let offices = personio.company().offices;
                let mut person = (*working.choose(&mut self.rng)?).clone();
                person.employee.office = offices.choose(&mut self.rng).cloned();
                ("office", person)
            }
            62..76 => {
                let template = (*working.choose(&mut self.rng)?).clone();
                ("hire", self.hire(template))
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
                ("leaver", person)
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
                ("rehire", person)
            }
        };
        personio.upsert_employee(person);
        Some(kind)
    }

    /// A new active employee copied from `template`, with a unique id and email.
    fn hire(&mut self, mut person: SimEmployee) -> SimEmployee {
        let number = self.next_hire;
        self.next_hire += 1;
        let supervisor = person.employee.id.clone();
        let employee = &mut person.employee;
        employee.id = number.to_string();
        employee.email = Some(format!("failover.{number}@storm.example.test"));
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

// ---------------------------------------------------------------------------------------
// The end state
// ---------------------------------------------------------------------------------------

/// Every company's problems: Learn Amp against Personio (duplicates by email and
/// external id included) and invitations (each user exactly once).
fn all_problems(companies: &[Company]) -> Vec<String> {
    companies
        .iter()
        .flat_map(|company| {
            simulator_mismatches(&company.personio, &company.learnamp)
                .into_iter()
                .chain(invitation_problems(&company.learnamp))
                .map(|problem| format!("{}: {problem}", company.tenant))
        })
        .collect()
}

/// Waits until every delivery ended, every inbox is empty, every tenant is `live` with
/// nothing pending on one of `running`, and every company matches; then asserts the
/// lot. Prints the figures.
async fn assert_converged(
    pool: &PgPool,
    lb: &str,
    companies: &[Company],
    running: &[String],
    cluster: &Cluster,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let deliveries = Deliveries::of(companies);
        if deliveries.settled() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries did not settle: {} sent, {} accepted, {} lost",
            deliveries.sent,
            deliveries.accepted,
            deliveries.lost.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deliveries = Deliveries::of(companies);
    println!(
        "deliveries: {} events sent, {} attempts, {} accepted, {} lost",
        deliveries.sent,
        deliveries.attempts,
        deliveries.accepted,
        deliveries.lost.len()
    );
    assert!(
        deliveries.lost.is_empty(),
        "deliveries never answered 200: {:#?}",
        deliveries.lost
    );

    let mut problems = Vec::new();
    loop {
        let inbox = inbox_rows(pool).await;
        let views = published_views(pool).await;
        let leases = leases(pool).await;
        let front = front_door_views(lb).await.unwrap_or_default();
        let mut waiting: Vec<String> = companies
            .iter()
            .filter_map(|company| {
                let tenant = &company.tenant;
                if let Some(why) = not_live(tenant, &leases, &views, &front, running, false, 0.0) {
                    return Some(format!("{tenant}: {why}"));
                }
                let pending = views.get(tenant).map_or(-1, |view| view.pending);
                (pending != 0).then(|| format!("{tenant}: {pending} events pending"))
            })
            .collect();
        if inbox != 0 {
            waiting.push(format!("{inbox} inbox rows in the database"));
        }
        if waiting.is_empty() {
            problems = all_problems(companies);
            if problems.is_empty() {
                let applied: u64 = front
                    .values()
                    .filter_map(|view| view["live"]["events_applied"].as_u64())
                    .sum();
                let owners: BTreeMap<String, usize> =
                    leases.values().fold(BTreeMap::new(), |mut owners, lease| {
                        *owners
                            .entry(lease.owner.clone().unwrap_or_default())
                            .or_default() += 1;
                        owners
                    });
                println!(
                    "converged: inbox empty, nothing pending, {applied} events applied (as the views count them), leases by owner {owners:?}"
                );
                return;
            }
        }
        if Instant::now() >= deadline {
            let logs: String = cluster
                .nodes()
                .iter()
                .filter(|node| node.is_running())
                .map(|node| format!("node {}:\n{}", node.index(), node.log_tail()))
                .collect();
            panic!(
                "not converged within 60 s after the storm:\nwaiting: {waiting:#?}\n{}\n{logs}",
                problems_summary(&problems)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every tenant is live (front door) and leased, after the creation.
async fn wait_all_live(pool: &PgPool, lb: &str, companies: &[Company], running: &[String]) {
    let started = Instant::now();
    let mut waiting = Vec::new();
    while started.elapsed() < Duration::from_secs(90) {
        let leases = leases(pool).await;
        let views = published_views(pool).await;
        let front = front_door_views(lb).await.unwrap_or_default();
        waiting = companies
            .iter()
            .filter_map(|company| {
                let tenant = &company.tenant;
                let synced = front
                    .get(tenant)
                    .is_some_and(|view| view["last_sync"]["finished_at"].is_string());
                match not_live(tenant, &leases, &views, &front, running, false, 0.0) {
                    Some(why) => Some(format!("{tenant}: {why}")),
                    None if !synced => Some(format!("{tenant}: no full sync yet")),
                    None => None,
                }
            })
            .collect();
        if waiting.is_empty() {
            println!(
                "{} tenants created and live after {:.1} s",
                companies.len(),
                started.elapsed().as_secs_f64()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("tenants not live within 90 s of their creation: {waiting:#?}");
}

/// `line` without the terminal's colour codes.
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn fenced_writes(node: &Node) -> f64 {
    metric_value(&node.metrics().await, FENCED_WRITES)
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_survive_a_sigkill_and_a_sigterm_mid_storm() {
    const TEST: &str = "cluster_failover::three_nodes_survive_a_sigkill_and_a_sigterm_mid_storm";
    if !nginx_ready(TEST) {
        return;
    }
    let Some(database) = postgres::fresh_database(TEST).await else {
        return;
    };
    let started = Instant::now();
    let seed = seed_from_env("FAILOVER_SEED", 17_017);
    println!("failover storm seed {seed} (FAILOVER_SEED={seed} replays the random choices)");
    let pool = PgPool::connect(database.url()).await.expect("test pool");
    let companies = companies("storm", 30, seed).await;
    let keys = tempfile::tempdir().expect("temp dir");
    let key_file = key_file(keys.path());
    let mut cluster = Cluster::start(3, cluster_config(database.url(), &key_file)).await;
    let lb = cluster.lb_url().to_string();
    let mut running: Vec<String> = (0..3).map(node_id).collect();

    create_tenants(&lb, &companies).await;
    wait_all_live(&pool, &lb, &companies, &running).await;
    let now = leases(&pool).await;
    let shares: Vec<usize> = running
        .iter()
        .map(|node| held_by(&now, node).len())
        .collect();
    println!("leases by node before the storm: {shares:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let storm = tokio::spawn(Storm::new(&companies, seed).run(stop.clone()));
    // Mid-storm: once the storm's deliveries are flowing.
    wait_until("300 deliveries accepted", Duration::from_secs(30), || {
        let accepted = Deliveries::of(&companies).accepted;
        async move { accepted >= 300 }
    })
    .await;

    // SIGKILL node 1: its leases expire and the other two take its tenants over.
    let moved = held_by(&leases(&pool).await, &node_id(1));
    assert!(!moved.is_empty(), "node 1 holds no tenant to lose");
    let since = db_now(&pool).await;
    let killed_at = Instant::now();
    let status = cluster.node(1).kill();
    assert!(!status.success(), "SIGKILL: {status}");
    running.retain(|node| node != &node_id(1));
    let after_kill = time_until_all_live(
        (&pool, &lb, &companies),
        &running,
        &moved,
        since,
        killed_at,
        "SIGKILL node 1",
    )
    .await;

    // The storm goes on; then SIGTERM node 2: it releases its leases on the way out.
    let accepted = Deliveries::of(&companies).accepted;
    wait_until(
        "200 more deliveries accepted",
        Duration::from_secs(30),
        || {
            let now = Deliveries::of(&companies).accepted;
            async move { now >= accepted + 200 }
        },
    )
    .await;
    let moved = held_by(&leases(&pool).await, &node_id(2));
    assert!(!moved.is_empty(), "node 2 holds no tenant to give up");
    let since = db_now(&pool).await;
    let terminated_at = Instant::now();
    let status = cluster.node(2).terminate().await;
    let exited_after = terminated_at.elapsed();
    assert!(
        status.success(),
        "SIGTERM: node 2 exited with {status}\n{}",
        cluster.node(2).log_tail()
    );
    running.retain(|node| node != &node_id(2));
    let released: Vec<String> = cluster
        .node(2)
        .log_lines("leases released at shutdown")
        .iter()
        .map(|line| without_colours(line))
        .collect();
    println!("node 2 at SIGTERM: {released:?}");
    let after_term = time_until_all_live(
        (&pool, &lb, &companies),
        &running,
        &moved,
        since,
        terminated_at,
        "SIGTERM node 2",
    )
    .await;

    // A little more storm on the last node, then let everything drain.
    let accepted = Deliveries::of(&companies).accepted;
    wait_until(
        "100 more deliveries accepted",
        Duration::from_secs(30),
        || {
            let now = Deliveries::of(&companies).accepted;
            async move { now >= accepted + 100 }
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let counts = storm.await.expect("storm task");
    println!(
        "storm: {} changes {counts:?}; node 2 exited {:.2} s after SIGTERM",
        counts.values().sum::<usize>(),
        exited_after.as_secs_f64()
    );
    assert_converged(&pool, &lb, &companies, &running, &cluster).await;
    let panics: Vec<String> = cluster
        .nodes()
        .iter()
        .flat_map(|node| node.log_lines("panicked"))
        .collect();
    assert!(panics.is_empty(), "panics: {panics:#?}");
    println!(
        "live again after SIGKILL {:.2} s, after SIGTERM {:.2} s (bound {} s); whole test {:.1} s",
        after_kill.as_secs_f64(),
        after_term.as_secs_f64(),
        LIVE_AGAIN_WITHIN.as_secs(),
        started.elapsed().as_secs_f64()
    );
    drop(cluster);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_past_its_lease_is_refused_by_the_fence() {
    const TEST: &str = "cluster_failover::a_paused_node_past_its_lease_is_refused_by_the_fence";
    if !nginx_ready(TEST) {
        return;
    }
    let Some(database) = postgres::fresh_database(TEST).await else {
        return;
    };
    let started = Instant::now();
    let pool = PgPool::connect(database.url()).await.expect("test pool");
    let companies = companies("fence", 4, 4242).await;
    // Each Learn Amp call takes a while, so the owner is mid-work when it is paused.
    for company in &companies {
        company
            .learnamp
            .knobs
            .set_latency(Duration::from_millis(60));
    }
    let keys = tempfile::tempdir().expect("temp dir");
    let key_file = key_file(keys.path());
    let mut cluster = Cluster::start(2, cluster_config(database.url(), &key_file)).await;
    let lb = cluster.lb_url().to_string();
    let all: Vec<String> = (0..2).map(node_id).collect();
    create_tenants(&lb, &companies).await;
    wait_all_live(&pool, &lb, &companies, &all).await;

    let target = &companies[0];
    let before = leases(&pool).await;
    let lease = before[&target.tenant].clone();
    let owner = lease.owner.clone().expect("an owner");
    let paused = all.iter().position(|node| node == &owner).expect("a node");
    let other = 1 - paused;
    let held = held_by(&before, &owner);
    let refused_before = fenced_writes(&cluster.nodes()[paused]).await;
    println!(
        "{} is held by {owner} (epoch {}), with {held:?}; fenced writes there so far: {refused_before}",
        target.tenant, lease.epoch
    );

    // Work in flight on the owner: positions of everyone working in each of its tenants.
    let mut storm = Storm::new(&companies, 99);
    for (index, company) in companies.iter().enumerate() {
        if held.contains(&company.tenant) {
            for person in company.personio.employees() {
                if !person.employee.is_inactive() {
                    let mut person = person.clone();
                    person.employee.position =
                        POSITIONS.choose(&mut storm.rng).map(|s| s.to_string());
                    company.personio.upsert_employee(person);
                }
            }
            storm.mutate(index);
        }
    }
    let changed_from = target.learnamp.log.len();
    wait_until(
        "the owner writing the changes to Learn Amp",
        Duration::from_secs(20),
        || {
            let calls = target.learnamp.log.len();
            async move { calls > changed_from + 2 }
        },
    )
    .await;
    cluster.node(paused).pause().await;
    let paused_at = Instant::now();

    // Past the lease: the other node takes it over with a higher epoch.
    let pool_ref = &pool;
    let tenant = target.tenant.clone();
    let other_id = node_id(other);
    let epoch_before = lease.epoch;
    wait_until(
        "the other node holding the paused node's tenant",
        LIVE_AGAIN_WITHIN + Duration::from_secs(10),
        || {
            let (tenant, other_id) = (tenant.clone(), other_id.clone());
            async move {
                let now = leases(pool_ref).await;
                now.get(&tenant).is_some_and(|lease| {
                    lease.owner.as_deref() == Some(other_id.as_str())
                        && lease.valid
                        && lease.epoch > epoch_before
                })
            }
        },
    )
    .await;
    let takeover = leases(&pool).await[&target.tenant].clone();
    println!(
        "{} taken over by {other_id} (epoch {} -> {}) {:.2} s after the pause",
        target.tenant,
        lease.epoch,
        takeover.epoch,
        paused_at.elapsed().as_secs_f64()
    );

    // Changes while the old owner is paused, applied by the new one.
    for _ in 0..5 {
        storm.mutate(0);
    }
    let mut problems = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        problems = simulator_mismatches(&target.personio, &target.learnamp);
        if problems.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        problems.is_empty(),
        "the new owner did not apply the changes: {}",
        problems_summary(&problems)
    );
    let users_before_resume = target.learnamp.users().len();
    let invitations_before_resume = target.learnamp.invitations().len();

    // SIGCONT: the old owner's commits for the tenant are refused by the fence.
    cluster.node(paused).resume().await;
    let resumed_at = Instant::now();
    let mut refused = refused_before;
    while resumed_at.elapsed() < Duration::from_secs(15) {
        if let Ok(metrics) =
            tokio::time::timeout(Duration::from_secs(2), cluster.nodes()[paused].metrics()).await
        {
            refused = metric_value(&metrics, FENCED_WRITES);
            if refused > refused_before {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Which tenants lost their lease there, and whose pending writes were refused.
    let lease_lines: Vec<String> = cluster.nodes()[paused]
        .log_lines("lease lost")
        .iter()
        .map(|line| without_colours(line))
        .collect();
    println!(
        "paused {:.2} s; after SIGCONT the old owner counts {} refused commits; its log: {lease_lines:#?}",
        (resumed_at - paused_at).as_secs_f64(),
        refused - refused_before,
    );
    assert!(
        refused > refused_before,
        "the resumed node's commits were not refused by the fence ({FENCED_WRITES} {refused_before} -> {refused})\n{}",
        cluster.nodes()[paused].log_tail()
    );

    // The tenant ends correct, leased by the other node alone, without duplicates.
    let all_nodes = all.clone();
    assert_converged(&pool, &lb, &companies, &all_nodes, &cluster).await;
    let end = leases(&pool).await[&target.tenant].clone();
    assert!(
        end.owner.as_deref() == Some(other_id.as_str()) && end.epoch >= takeover.epoch,
        "{} ended leased by {:?} (epoch {}), not {other_id}",
        target.tenant,
        end.owner,
        end.epoch
    );
    assert_eq!(
        target.learnamp.users().len(),
        users_before_resume,
        "the resumed node created users"
    );
    assert_eq!(
        target.learnamp.invitations().len(),
        invitations_before_resume,
        "the resumed node sent invitations"
    );
    println!(
        "fence test done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(cluster);
    pool.close().await;
}

/// Posts the settings form with `invite` to `node` (directly, not through nginx) and
/// answers the preview page it shows.
async fn settings_preview(
    http: &reqwest::Client,
    node: &str,
    cookie: &str,
    csrf: &str,
    invite: &str,
) -> String {
    let response = http
        .post(format!("{node}/app/prev-00/settings"))
        .header("cookie", cookie)
        .form(&crate::cluster_directory::settings_form(csrf, invite))
        .send()
        .await
        .expect("settings answered");
    let status = response.status().as_u16();
    let page = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "preview on {node}: {page}");
    assert!(page.contains("Preview of your change"), "{page}");
    assert!(
        page.contains("<caption>People who would be invited, and when</caption>"),
        "{page}"
    );
    page
}

/// Posts `Confirm` of `preview` to `node` (directly); it must apply the change.
async fn confirm_preview(
    http: &reqwest::Client,
    node: &str,
    cookie: &str,
    csrf: &str,
    preview: &str,
) {
    use crate::cluster_directory::field_value;
    let response = http
        .post(format!("{node}/app/prev-00/settings/confirm"))
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf.to_string()),
            ("settings", field_value(preview, "settings")),
            ("signature", field_value(preview, "signature")),
        ])
        .send()
        .await
        .expect("confirm answered");
    let status = response.status().as_u16();
    let page = response.text().await.unwrap_or_default();
    assert_eq!(status, 303, "confirm on {node}: {page}");
}

/// A settings preview rendered by one `serve` process is confirmed through another
/// (the signing key is the cluster's, not the process's), and a preview asked of the
/// node that does not run the tenant is planned by its owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_settings_preview_shown_by_one_node_is_confirmed_through_another() {
    const TEST: &str =
        "cluster_failover::a_settings_preview_shown_by_one_node_is_confirmed_through_another";
    if !nginx_ready(TEST) {
        return;
    }
    let Some(database) = postgres::fresh_database(TEST).await else {
        return;
    };
    let pool = PgPool::connect(database.url()).await.expect("test pool");
    let companies = companies("prev", 1, 17).await;
    let company = &companies[0];
    let keys = tempfile::tempdir().expect("temp dir");
    let key_file = key_file(keys.path());
    let cluster = Cluster::start(2, cluster_config(database.url(), &key_file)).await;
    let lb = cluster.lb_url().to_string();
    let spec = tenant_spec(
        &company.tenant,
        &company.personio,
        &company.learnamp,
        json!({}),
    );
    let (status, body) =
        admin_request(&lb, reqwest::Method::POST, "/admin/tenants", Some(&spec)).await;
    assert_eq!(status, 201, "{body}");
    let all: Vec<String> = (0..2).map(node_id).collect();
    wait_all_live(&pool, &lb, &companies, &all).await;
    let owner = leases(&pool).await[&company.tenant]
        .owner
        .clone()
        .expect("an owner");
    let owner = all.iter().position(|node| node == &owner).expect("a node");
    let owner_url = cluster.nodes()[owner].url().to_string();
    let other_url = cluster.nodes()[1 - owner].url().to_string();

    // Signed in through the node that does not run the tenant.
    let (status, body) = admin_request(
        &lb,
        reqwest::Method::POST,
        &format!("/admin/tenants/{}/invitations", company.tenant),
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let link = body["url"].as_str().unwrap();
    let link = format!("{other_url}{}", &link[link.find("/connect/").unwrap()..]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let opened = http.get(&link).send().await.unwrap();
    assert_eq!(opened.status().as_u16(), 303);
    let cookie = opened.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = http
        .get(format!("{other_url}/app/prev-00/settings"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csrf = crate::cluster_directory::field_value(&page.text().await.unwrap(), "csrf");

    // Shown by the owner, confirmed through the other process.
    let on_owner = settings_preview(&http, &owner_url, &cookie, &csrf, "on_hire_date").await;
    // Shown by the other process (planned by the owner), confirmed through the owner.
    let on_other = settings_preview(&http, &other_url, &cookie, &csrf, "immediately").await;
    let invite_policy = || async {
        let value: Value =
            sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM meta WHERE key = $1")
                .bind(b"tenant\0prev-00".to_vec())
                .fetch_one(&pool)
                .await
                .map(|bytes| serde_json::from_slice(&bytes).expect("a spec"))
                .expect("the spec row");
        value["settings"]["invite_policy"]["mode"].clone()
    };
    confirm_preview(&http, &other_url, &cookie, &csrf, &on_owner).await;
    assert_eq!(invite_policy().await, "on_hire_date");
    confirm_preview(&http, &owner_url, &cookie, &csrf, &on_other).await;
    assert_eq!(invite_policy().await, "immediately");
}
