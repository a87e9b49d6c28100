//! What the integration tests, the benchmarks and the load tool share: [`spawn`] starts
//! both simulators, a temporary store and the real service on port 0 ([`spawn_app`] and
//! its variants are the tests' shorthands); [`TestApp`] reaches the admin API through
//! the service's [`AdminClient`]; the checks compare Learn Amp with Personio.
//! [`process`] runs the real binary as a child process, [`cluster`] several of them
//! behind nginx.

pub mod cluster;
pub mod process;

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::Utc;

pub use personio_sync::admin_client::{AdminClient, AdminError, Answer};
use personio_sync::app::{Application, Options};
use personio_sync::config::{Config, StorageBackend};
use personio_sync::domain::Secret;
use personio_sync::retry::RetryPolicy;
use personio_sync::store::crypto::KeySource;
/// A fresh PostgreSQL database per test (`fresh_database`), or a SKIP line without
/// `PERSONIO_SYNC_TEST_PG_URL` (a panic with `CI` set): the service's own helper.
pub use personio_sync::store::postgres_testing as postgres;
use personio_sync::store::{PgOptions, Store};
use personio_sync_sim::generator::{SimEmployee, employment_id_for};
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig, SimUser, SimUserStatus};
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The admin token of every test app.
pub const TOKEN: &str = "test-admin-token-0123456789abcdef01234567";

/// A running service with its simulators.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The service address.
    pub addr: SocketAddr,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The admin API, with [`TOKEN`].
    pub admin: AdminClient,
    /// The Personio simulator.
    pub personio: PersonioSim,
    /// The Learn Amp simulator.
    pub learnamp: LearnAmpSim,
    /// The service's shared state (tenant views, webhook router, supervisor), for fault injection.
    pub state: personio_sync::http::AppState,
    /// `http://127.0.0.1:PORT` of the private metrics listener (empty when
    /// [`Setup::metrics`] is off).
    pub metrics_base: String,
    _data_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// How strict the Learn Amp simulator of a test app is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaMode {
    /// The assumed contracts exist; credentials may omit `scope`.
    Default,
    /// A real account at its strictest: `--documented-only --scoped-credentials`.
    Strict,
}

impl LaMode {
    /// The simulator's configuration in this mode.
    pub fn config(self) -> LearnAmpSimConfig {
        let strict = self == LaMode::Strict;
        LearnAmpSimConfig {
            documented_only: strict,
            scoped_credentials: strict,
            ..LearnAmpSimConfig::default()
        }
    }
}

/// Starts simulators (with `employees` generated from `seed`) and the service.
pub async fn spawn_app(employees: usize, seed: u64) -> TestApp {
    spawn_app_in(LaMode::Default, employees, seed).await
}

/// Like [`spawn_app`], with the Learn Amp simulator in `mode`.
pub async fn spawn_app_in(mode: LaMode, employees: usize, seed: u64) -> TestApp {
    spawn_app_with_in(
        mode,
        PersonioSimConfig {
            employees,
            seed,
            ..PersonioSimConfig::default()
        },
    )
    .await
}

/// Starts simulators with a custom Personio config, and the service.
pub async fn spawn_app_with(personio_config: PersonioSimConfig) -> TestApp {
    spawn_app_with_in(LaMode::Default, personio_config).await
}

/// Like [`spawn_app_with`], with the Learn Amp simulator in `mode`.
pub async fn spawn_app_with_in(mode: LaMode, personio_config: PersonioSimConfig) -> TestApp {
    spawn_app_configured_in(mode, personio_config, |_| {}).await
}

/// Starts simulators with a custom Personio config, and the service with its config
/// (port 0 for both listeners, a temporary data dir) changed by `configure`.
pub async fn spawn_app_configured(
    personio_config: PersonioSimConfig,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    spawn_app_configured_in(LaMode::Default, personio_config, configure).await
}

/// Like [`spawn_app_configured`], with the Learn Amp simulator in `mode`.
pub async fn spawn_app_configured_in(
    mode: LaMode,
    personio_config: PersonioSimConfig,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        personio_sync::telemetry::init(personio_sync::config::LogFormat::Text);
    }
    let setup = Setup {
        personio: personio_config,
        learnamp: mode.config(),
        ..Setup::default()
    };
    spawn(setup, configure).await.expect("service starts")
}

/// How [`spawn`] sets up the simulators and the service. The default is the tests':
/// fast retries, a 10 s request timeout, quick restarts, a metrics listener.
pub struct Setup {
    /// The Personio simulator.
    pub personio: PersonioSimConfig,
    /// The Learn Amp simulator.
    pub learnamp: LearnAmpSimConfig,
    /// Retry policy of the API clients.
    pub retry: RetryPolicy,
    /// Timeout of each API call.
    pub request_timeout: Duration,
    /// First delay before the supervisor restarts a failed tenant.
    pub restart_base: Duration,
    /// Whether the private metrics listener runs.
    pub metrics: bool,
    /// Cache of the store, MiB.
    pub cache_mb: u64,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            personio: PersonioSimConfig::default(),
            learnamp: LearnAmpSimConfig::default(),
            retry: RetryPolicy::fast(),
            request_timeout: Duration::from_secs(10),
            restart_base: Duration::from_millis(50),
            metrics: true,
            cache_mb: 32,
        }
    }
}

/// Starts both simulators and the service (port 0 for its listeners, a temporary data
/// dir, admin token [`TOKEN`], `[personio] base_url` at the Personio simulator) with its
/// config changed by `configure`.
pub async fn spawn(setup: Setup, configure: impl FnOnce(&mut Config)) -> anyhow::Result<TestApp> {
    spawn_with_sims(setup, |config, _| configure(config)).await
}

/// Like [`spawn`], with `configure` also given the Personio simulator (e.g. for
/// [`oidc_at_simulator`]).
pub async fn spawn_with_sims(
    setup: Setup,
    configure: impl FnOnce(&mut Config, &PersonioSim),
) -> anyhow::Result<TestApp> {
    let sim_client_secret = setup.personio.client_secret.clone();
    let personio = PersonioSim::start(setup.personio).await?;
    let learnamp = LearnAmpSim::start(setup.learnamp).await?;
    let data_dir = tempfile::tempdir()?;
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.server.metrics_listen = if setup.metrics {
        "127.0.0.1:0".into()
    } else {
        String::new()
    };
    config.storage.data_dir = data_dir.path().to_path_buf();
    config.personio.base_url = personio.base_url.clone();
    configure(&mut config, &personio);
    let store = match config.storage.backend {
        StorageBackend::Sled => Store::open(data_dir.path(), setup.cache_mb).await?,
        StorageBackend::Postgres => {
            let options = PgOptions {
                url: config.storage.postgres_url.clone(),
                password: None,
                pool: config.storage.postgres_pool,
            };
            Store::open_postgres(&options, data_dir.path(), KeySource::DataDir).await?
        }
    };
    // "Sign in with Personio" against the simulator uses its API client's secret.
    let oidc_client_secret = config
        .personio_oidc
        .enabled()
        .then(|| Secret::new(sim_client_secret));
    let options = Options {
        retry: setup.retry,
        request_timeout: setup.request_timeout,
        restart_base: setup.restart_base,
        oidc_client_secret,
    };
    let app = Application::build(&config, store, Secret::new(TOKEN), options).await?;
    let addr = app.local_addr();
    let base = format!("http://{addr}");
    let metrics_base = app
        .metrics_addr()
        .map(|addr| format!("http://{addr}"))
        .unwrap_or_default();
    let state = app.state().clone();
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    Ok(TestApp {
        admin: AdminClient::new(base.clone(), Secret::new(TOKEN)),
        base,
        addr,
        http: reqwest::Client::new(),
        personio,
        learnamp,
        state,
        metrics_base,
        _data_dir: data_dir,
        shutdown: Some(shutdown),
    })
}

impl TestApp {
    /// A tenant spec pointing at this app's simulators.
    pub fn spec(&self, id: &str, settings: Value) -> Value {
        tenant_spec(id, &self.personio, &self.learnamp, settings)
    }

    /// `POST /admin/tenants`, returning status and body.
    pub async fn create_tenant(&self, spec: &Value) -> (u16, Value) {
        self.admin("POST", "/admin/tenants", Some(spec)).await
    }

    /// Any admin call with the right token.
    pub async fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let answer = self
            .admin
            .send(method, path, body)
            .await
            .expect("admin call");
        (answer.status.as_u16(), answer.body.unwrap_or(Value::Null))
    }

    /// The tenant view.
    pub async fn view(&self, id: &str) -> Value {
        let (status, body) = self
            .admin("GET", &format!("/admin/tenants/{id}"), None)
            .await;
        assert_eq!(status, 200, "view of {id}: {body}");
        body
    }

    /// Polls the view until `done` holds, failing after `timeout`.
    pub async fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let view = self.view(id).await;
            if done(&view) {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "condition not met within {timeout:?}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for a full sync that finished after `previous` (and is not running).
    pub async fn wait_for_sync(&self, id: &str, previous: Option<&str>) -> Value {
        let previous = previous.map(str::to_string);
        self.wait_for(id, Duration::from_secs(240), move |view| {
            let finished = view["last_sync"]["finished_at"]
                .as_str()
                .map(str::to_string);
            finished.is_some() && finished != previous && view["state"] != "syncing"
        })
        .await
    }
}

/// Makes the service store its data in the fresh PostgreSQL `database` (a config
/// change for [`spawn`] and the `spawn_app_configured` family).
pub fn use_postgres(config: &mut Config, database: &postgres::TestDatabase) {
    config.storage.backend = StorageBackend::Postgres;
    config.storage.postgres_url = database.url().to_string();
    config.storage.postgres_pool = 4;
}

/// Turns on "Sign in with Personio" against the simulator's OpenID provider (issuer =
/// its base URL, client = its API client; the kit passes the client secret).
pub fn oidc_at_simulator(config: &mut Config, personio: &PersonioSim) {
    config.personio_oidc.issuer = personio.base_url.clone();
    config.personio_oidc.client_id = SIM_CLIENT_ID.into();
}

/// The client id both simulators accept by default.
pub const SIM_CLIENT_ID: &str = "sim-client";
/// The client secret both simulators accept by default.
pub const SIM_CLIENT_SECRET: &str = "sim-secret";

/// A tenant spec with `settings`, pointing at the two simulators.
pub fn tenant_spec(
    id: &str,
    personio: &PersonioSim,
    learnamp: &LearnAmpSim,
    settings: Value,
) -> Value {
    json!({
        "id": id,
        "personio": {"base_url": personio.base_url, "client_id": "sim-client", "client_secret": "sim-secret"},
        "learnamp": {"base_url": learnamp.base_url, "client_id": "sim-client", "client_secret": "sim-secret"},
        "settings": settings
    })
}

/// An admin call to the service at `base` with the right token; returns status and body
/// (`null` if the body is not JSON).
pub async fn admin_request(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let answer = AdminClient::new(base, Secret::new(TOKEN))
        .send(method, path, body)
        .await
        .expect("admin call");
    (answer.status.as_u16(), answer.body.unwrap_or(Value::Null))
}

/// First names the randomised tests give to changed and hired people.
pub const FIRST_NAMES: &[&str] = &["Rosa", "Ivo", "Maren", "Tariq", "Yuki", "Ola", "Björn"];
/// Positions the randomised tests give to changed and hired people.
pub const POSITIONS: &[&str] = &[
    "Staff Engineer",
    "Head of People",
    "Sales Lead",
    "Data Analyst",
    "Office Manager",
    "QA Engineer",
    "Controller",
];

/// The seed of a randomised test: the number in the environment variable `var` (to
/// replay a run), otherwise `default`.
pub fn seed_from_env(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|seed| seed.trim().parse().ok())
        .unwrap_or(default)
}

/// The payload Personio sends for `event_name` about `person_id`: the person's id for
/// `person.*` events, the employment's id and the person's for `employment.*` ones.
pub fn webhook_payload(event_name: &str, person_id: &str) -> Value {
    if event_name.starts_with("person.") {
        json!({"id": person_id})
    } else {
        json!({"id": employment_id_for(person_id), "person_id": person_id})
    }
}

/// A webhook delivery body as Personio sends it, occurring now.
pub fn webhook_body(company_id: &str, event_name: &str, payload: Value) -> Value {
    json!({
        "company_id": company_id,
        "event_name": event_name,
        "occurred_at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "payload": payload,
        "meta": {},
    })
}

/// What a Learn Amp user must look like for a Personio employee (contract §5), checked
/// field by field. Returns the problems found. With `documented_only` the account has
/// no `leaveDate` and no avatar upload, so neither is checked.
pub fn check_user(
    person: &SimEmployee,
    user: &SimUser,
    la_ids: &HashMap<String, u64>,
    people: &HashMap<String, SimEmployee>,
    team_ids: &HashMap<String, u64>,
    documented_only: bool,
) -> Vec<String> {
    let employee = &person.employee;
    let mut problems = Vec::new();
    let mut differ = |field: &str, actual: &dyn Debug, expected: &dyn Debug| {
        problems.push(format!(
            "person {} {field}: {actual:?} != {expected:?}",
            employee.id
        ));
    };
    // Text fields: an empty value counts as no value.
    let mut expect = |field: &str, actual: Option<&str>, expected: Option<&str>| {
        let actual = actual.filter(|value| !value.is_empty());
        let expected = expected.filter(|value| !value.is_empty());
        if actual != expected {
            differ(field, &actual, &expected);
        }
    };
    expect(
        "firstName",
        Some(&user.first_name),
        employee.first_name.as_deref(),
    );
    expect(
        "lastName",
        Some(&user.last_name),
        employee.last_name.as_deref(),
    );
    expect("email", Some(&user.email), employee.email.as_deref());
    expect(
        "jobTitle",
        user.job_title.as_deref(),
        employee.position.as_deref(),
    );
    expect(
        "location",
        user.location.as_deref(),
        employee.office.as_ref().map(|o| o.name.as_str()),
    );
    let hire = employee.hire_date.map(|d| d.to_string());
    expect("hireDate", user.hire_date.as_deref(), hire.as_deref());
    let leave = employee
        .termination_date
        .map(|d| d.to_string())
        .filter(|_| !documented_only);
    expect("leaveDate", user.leave_date.as_deref(), leave.as_deref());
    expect(
        "integrationExternalId",
        user.integration_external_id.as_deref(),
        Some(&employee.id),
    );
    let expected_team = employee
        .department
        .as_ref()
        .and_then(|d| team_ids.get(&d.id))
        .copied();
    if user.primary_team_id != expected_team {
        differ("primaryTeam", &user.primary_team_id, &expected_team);
    }
    let expected_manager = employee
        .supervisor_id
        .as_ref()
        .filter(|id| {
            people
                .get(*id)
                .is_some_and(|boss| !boss.employee.is_inactive())
        })
        .and_then(|id| la_ids.get(id))
        .copied();
    if user.manager_id != expected_manager {
        differ("manager", &user.manager_id, &expected_manager);
    }
    let expected_avatar = person
        .picture
        .as_deref()
        .filter(|_| !documented_only)
        .map(|bytes| format!("{:x}", Sha256::digest(bytes)));
    if user.avatar_sha256 != expected_avatar {
        differ("avatar", &user.avatar_sha256, &expected_avatar);
    }
    problems
}

/// Checks that Learn Amp holds exactly the mapping of Personio's current state: one
/// user per non-inactive employee with every field, inactive ones absent or
/// deactivated, one team per department, no duplicates. Panics with every problem.
pub fn assert_learnamp_matches_personio(app: &TestApp) {
    let problems = learnamp_mismatches(app);
    assert!(problems.is_empty(), "{}", problems_summary(&problems));
}

/// `problems` for a failure message: their number and the first 30, one a line.
pub fn problems_summary(problems: &[String]) -> String {
    format!(
        "{} problems, first 30:\n{}",
        problems.len(),
        problems[..problems.len().min(30)].join("\n")
    )
}

/// Every difference between Learn Amp and the mapping of Personio's current state: the
/// checks of [`assert_learnamp_matches_personio`], returned instead of panicking, so a
/// test can poll until they are gone.
pub fn learnamp_mismatches(app: &TestApp) -> Vec<String> {
    simulator_mismatches(&app.personio, &app.learnamp)
}

/// The checks of [`learnamp_mismatches`] on two simulators (tests that run the real
/// binary have no `TestApp`).
pub fn simulator_mismatches(personio: &PersonioSim, learnamp: &LearnAmpSim) -> Vec<String> {
    let people: HashMap<String, SimEmployee> = personio
        .employees()
        .into_iter()
        .map(|person| (person.employee.id.clone(), person))
        .collect();
    let users = learnamp.users();
    let mut problems = Vec::new();
    let mut emails = HashSet::new();
    let mut externals = HashSet::new();
    for user in &users {
        if !emails.insert(user.email.to_lowercase()) {
            problems.push(format!("duplicate email {}", user.email));
        }
        if let Some(external) = &user.integration_external_id
            && !externals.insert(external.clone())
        {
            problems.push(format!("duplicate external id {external}"));
        }
    }
    let la_ids: HashMap<String, u64> = users
        .iter()
        .filter_map(|user| {
            user.integration_external_id
                .clone()
                .map(|ext| (ext, user.id))
        })
        .collect();
    let teams = learnamp.teams();
    let team_ids: HashMap<String, u64> = teams
        .iter()
        .filter_map(|team| {
            team.integration_external_id
                .clone()
                .map(|ext| (ext, team.id))
        })
        .collect();
    let mut departments: HashMap<String, String> = HashMap::new();
    for person in people.values() {
        let employee = &person.employee;
        let user = users
            .iter()
            .find(|user| user.integration_external_id.as_deref() == Some(employee.id.as_str()));
        if employee.is_inactive() {
            if let Some(user) = user
                && user.status != SimUserStatus::Deactivated
            {
                problems.push(format!(
                    "inactive person {} is not deactivated",
                    employee.id
                ));
            }
            continue;
        }
        if let Some(department) = &employee.department {
            departments.insert(department.id.clone(), department.name.clone());
        }
        match user {
            None => problems.push(format!("person {} has no Learn Amp user", employee.id)),
            Some(user) => {
                if user.status == SimUserStatus::Deactivated {
                    problems.push(format!("active person {} is deactivated", employee.id));
                }
                problems.extend(check_user(
                    person,
                    user,
                    &la_ids,
                    &people,
                    &team_ids,
                    learnamp.documented_only(),
                ));
            }
        }
    }
    for (id, name) in &departments {
        match teams
            .iter()
            .find(|team| team.integration_external_id.as_deref() == Some(id))
        {
            None => problems.push(format!("department {id} has no team")),
            Some(team) if &team.name != name => {
                problems.push(format!("team {id} named {} != {name}", team.name))
            }
            Some(_) => {}
        }
    }
    let managed_teams = teams
        .iter()
        .filter(|team| team.integration_external_id.is_some())
        .count();
    if managed_teams != departments.len() {
        problems.push(format!(
            "{managed_teams} teams with external ids for {} departments",
            departments.len()
        ));
    }
    problems
}

/// Sets the status (`"ENABLED"` or `"DISABLED"`) of every webhook subscription of the
/// Personio simulator through its v2 API, as an operator could in Personio. A disabled
/// subscription receives no automatic delivery, so a test's own deliveries are the
/// only ones (a tenant re-enables its subscription when it starts).
pub async fn set_subscriptions_status(personio: &PersonioSim, status: &str) {
    let http = reqwest::Client::new();
    let token = personio_v2_token(&http, personio).await;
    for hook in personio.webhooks() {
        let response = http
            .patch(format!("{}/v2/webhooks/{}", personio.base_url, hook.id))
            .bearer_auth(&token)
            .header("x-personio-app-id", "PERSONIO_SYNC_TESTS")
            .json(&json!({"status": status}))
            .send()
            .await
            .expect("webhook patch");
        assert_eq!(response.status().as_u16(), 200, "PATCH webhook {}", hook.id);
    }
    assert!(
        personio
            .webhooks()
            .iter()
            .all(|hook| format!("{:?}", hook.status).eq_ignore_ascii_case(status)),
        "subscriptions not {status}"
    );
}

/// An access token of the Personio simulator's v2 API (client credentials of the
/// simulator's client), as an operator would use to manage subscriptions.
pub async fn personio_v2_token(http: &reqwest::Client, personio: &PersonioSim) -> String {
    let token: Value = http
        .post(format!("{}/v2/auth/token", personio.base_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sim-client"),
            ("client_secret", "sim-secret"),
        ])
        .send()
        .await
        .expect("v2 token call")
        .json()
        .await
        .expect("v2 token body");
    token["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}
