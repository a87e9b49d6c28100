//! Secrets at rest and in every output: the real binary (`serve`, debug logging as JSON
//! lines on stderr) against in-process simulators that accept distinctive client
//! secrets; a tenant is created, synced, fed webhooks, given bad requests and a refused
//! credential; then the captured log, every admin answer, every CLI output and every
//! file under the data dir are searched for the secrets. `export` and `import` run on
//! the stopped service's data dir.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::person::EmployeeStatus;
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_personio-sync");
const ADMIN_TOKEN: &str = "leak-test-admin-token-5d0e8c1f2a9b7e64";
const PERSONIO_SECRET: &str = "PSECRET-7b1f0c9ad2e4";
const LEARNAMP_SECRET: &str = "LSECRET-e83a55c01f6b";
const WRONG_SECRET: &str = "PWRONG-2c9d7e41a0b3";
const KEY_HEX: &str = "8f3c2a1b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

/// The service binary, its stderr captured.
struct Service {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn log(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("log lock")).into_owned()
    }

    /// SIGTERM, then waits (up to 15 s) for the exit.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// A command of the binary with a clean environment: the admin token and the key.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("PERSONIO_SYNC_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PERSONIO_SYNC_SECRET_KEY", KEY_HEX)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "debug");
    command
}

fn write_config(dir: &Path, data_dir: &Path) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "log_format = \"json\"\n[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"\"\n[storage]\ndata_dir = {:?}\ncache_mb = 16\n",
        data_dir.display().to_string()
    );
    std::fs::write(&path, text).expect("config written");
    path
}

/// Starts `serve` and waits for its "serving" line to learn the address.
fn spawn_service(config: &Path) -> Service {
    let mut child = command(&["serve", "--config", &config.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("service binary starts");
    let mut pipe = child.stderr.take().expect("stderr piped");
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while let Ok(read) = pipe.read(&mut buffer) {
            if read == 0 {
                break;
            }
            sink.lock()
                .expect("log lock")
                .extend_from_slice(&buffer[..read]);
        }
    });
    let mut service = Service {
        child,
        stderr,
        base: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let addr = service.log().lines().find_map(|line| {
            let line: Value = serde_json::from_str(line).ok()?;
            (line["fields"]["message"] == "personio-sync serving")
                .then(|| line["fields"]["addr"].as_str().map(str::to_string))
                .flatten()
        });
        if let Some(addr) = addr {
            service.base = format!("http://{addr}");
            return service;
        }
        if let Ok(Some(status)) = service.child.try_wait() {
            panic!("service exited with {status}: {}", service.log());
        }
        assert!(
            Instant::now() < deadline,
            "service did not start: {}",
            service.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Admin calls, every answer kept.
struct Admin {
    http: reqwest::Client,
    base: String,
    answers: Vec<String>,
}

impl Admin {
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("admin call");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        self.answers.push(text.clone());
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn json(&mut self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("json");
        self.call(method, path, Some(ADMIN_TOKEN), Some(bytes))
            .await
    }

    async fn view(&mut self, id: &str) -> Value {
        let (status, view) = self
            .call(
                "GET",
                &format!("/admin/tenants/{id}"),
                Some(ADMIN_TOKEN),
                None,
            )
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    /// Polls the view until `done`; `None` after `timeout`.
    async fn wait(
        &mut self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let view = self.view(id).await;
            if done(&view) {
                return Some(view);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

fn all_bytes_under(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            bytes.extend(all_bytes_under(&path));
        } else {
            bytes.extend(std::fs::read(&path).expect("read file"));
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Every secret of `secrets` found in `haystack`, named.
fn leaks(place: &str, haystack: &[u8], secrets: &[(&str, &str)]) -> Vec<String> {
    secrets
        .iter()
        .filter(|(_, secret)| contains(haystack, secret))
        .map(|(name, _)| format!("{name} found in {place}"))
        .collect()
}

fn tenant_spec(personio: &PersonioSim, learnamp: &LearnAmpSim) -> Value {
    json!({
        "id": "leak",
        "personio": {"base_url": personio.base_url, "client_id": "leak-test-p", "client_secret": PERSONIO_SECRET},
        "learnamp": {"base_url": learnamp.base_url, "client_id": "leak-test-l", "client_secret": LEARNAMP_SECRET},
        "settings": {"invite_policy": {"mode": "immediately"}}
    })
}

/// Bad requests of every kind; each must be refused.
async fn send_bad_requests(admin: &mut Admin, spec: &Value) {
    let token = Some(ADMIN_TOKEN);
    let cases: Vec<(&str, String, Option<Vec<u8>>, u16)> = vec![
        (
            "POST",
            "/admin/tenants".into(),
            Some(b"{nope".to_vec()),
            400,
        ),
        (
            "POST",
            "/admin/tenants".into(),
            Some(spec.to_string().into_bytes()),
            409,
        ),
        ("GET", "/admin/tenants/nobody".into(), None, 404),
        ("POST", "/admin/tenants/leak/sync?bogus=1".into(), None, 422),
    ];
    for (method, path, body, expected) in cases {
        let (status, answer) = admin.call(method, &path, token, body).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
    }
    let (status, _) = admin.call("GET", "/admin/tenants", None, None).await;
    assert_eq!(status, 401);
    let mut bad_id = spec.clone();
    bad_id["id"] = json!("Bad_Id");
    let mut unknown_field = spec.clone();
    unknown_field["personio"]["client_secret_2"] = json!(PERSONIO_SECRET);
    let mut numeric_client_id = spec.clone();
    numeric_client_id["learnamp"]["client_id"] = json!(42);
    for invalid in [bad_id, unknown_field, numeric_client_id] {
        let (status, answer) = admin.json("POST", "/admin/tenants", &invalid).await;
        assert_eq!(status, 422, "{answer}");
    }
    for patch in [
        json!({"settings": {"timezone": "Mars/Olympus_Mons"}}),
        json!({"learnamp": {"client_secret": 42}}),
        json!({"personio": {"client_secret": PERSONIO_SECRET, "bogus": true}}),
        json!({"webhook": {"token": "x"}}),
        json!({"settings": {"max_deactivation_ratio": "lots"}}),
    ] {
        let (status, answer) = admin.json("PATCH", "/admin/tenants/leak", &patch).await;
        assert_eq!(status, 422, "{patch}: {answer}");
    }
}

/// Webhook deliveries: refused ones and good ones, and a change in Personio.
async fn send_webhooks(admin: &mut Admin, personio: &PersonioSim, url: &str, token: &str) {
    let http = reqwest::Client::new();
    let good = json!({"company_id": "1", "event_name": "person.updated",
        "occurred_at": "2026-01-01T00:00:00Z", "payload": {"id": "1001"}});
    let attempts = [
        (Some("Bearer wrong"), good.to_string(), 401),
        (None, good.to_string(), 401),
        (Some(token), "{not json".to_string(), 400),
        (Some(token), json!({"company_id": 1}).to_string(), 400),
        (Some(token), good.to_string(), 200),
    ];
    for (auth, body, expected) in attempts {
        let mut request = http
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.expect("delivery");
        let status = response.status().as_u16();
        admin
            .answers
            .push(response.text().await.unwrap_or_default());
        assert_eq!(status, expected);
    }
    let mut people = personio.employees();
    people.sort_by(|a, b| a.employee.id.cmp(&b.employee.id));
    if let Some(person) = people
        .iter()
        .find(|p| p.employee.status == Some(EmployeeStatus::Active))
    {
        let mut promoted = person.clone();
        promoted.employee.position = Some("Chief Secret Keeper".into());
        personio.upsert_employee(promoted);
    }
}

/// Runs a CLI command of the binary; (success, stdout + stderr).
fn run_cli(args: &[&str]) -> (bool, Vec<u8>) {
    let output = command(args).output().expect("cli runs");
    let mut text = output.stdout;
    text.extend_from_slice(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_appear_in_no_log_view_error_body_or_stored_file() {
    let personio = PersonioSim::start(PersonioSimConfig {
        employees: 12,
        seed: 77,
        client_id: "leak-test-p".into(),
        client_secret: PERSONIO_SECRET.into(),
        ..PersonioSimConfig::default()
    })
    .await
    .expect("personio sim");
    let learnamp = LearnAmpSim::start(LearnAmpSimConfig {
        client_id: "leak-test-l".into(),
        client_secret: LEARNAMP_SECRET.into(),
        ..LearnAmpSimConfig::default()
    })
    .await
    .expect("learn amp sim");
    let work = tempfile::tempdir().expect("temp dir");
    let data_dir = work.path().join("data");
    let config = write_config(work.path(), &data_dir);
    let mut service = spawn_service(&config);
    let mut admin = Admin {
        http: reqwest::Client::new(),
        base: service.base.clone(),
        answers: Vec::new(),
    };

    let spec = tenant_spec(&personio, &learnamp);
    let (status, view) = admin.json("POST", "/admin/tenants", &spec).await;
    assert_eq!(status, 201, "{view}");
    let synced = admin
        .wait("leak", Duration::from_secs(120), |view| {
            view["last_sync"]["finished_at"].is_string() && view["state"] == "live"
        })
        .await;
    assert!(
        synced.is_some(),
        "initial sync: {}",
        admin.view("leak").await
    );
    let view = admin.view("leak").await;
    let webhook_url = view["webhook_url"]
        .as_str()
        .expect("webhook_url")
        .to_string();
    let webhook_key = webhook_url
        .rsplit('/')
        .next()
        .expect("key segment")
        .to_string();
    let token = personio.webhooks()[0]
        .token
        .clone()
        .expect("token subscription");
    let token = token.expose().to_string();
    let token_secret = token.trim_start_matches("Bearer ").to_string();
    assert!(token_secret.len() >= 32 && webhook_key.len() >= 32);

    send_bad_requests(&mut admin, &spec).await;
    send_webhooks(&mut admin, &personio, &webhook_url, &token).await;
    let (status, plan) = admin
        .call(
            "POST",
            "/admin/tenants/leak/sync?dry_run=true",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{plan}");

    // A refused credential, then the right one again.
    let wrong = json!({"personio": {"client_secret": WRONG_SECRET}});
    let (status, answer) = admin.json("PATCH", "/admin/tenants/leak", &wrong).await;
    assert_eq!(status, 200, "{answer}");
    let refused = admin
        .wait("leak", Duration::from_secs(60), |view| {
            view["state"] == "failed"
        })
        .await;
    assert!(refused.is_some(), "{}", admin.view("leak").await);
    let right = json!({"personio": {"client_secret": PERSONIO_SECRET}});
    let (status, answer) = admin.json("PATCH", "/admin/tenants/leak", &right).await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = admin
        .call(
            "POST",
            "/admin/tenants/leak/restart",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let recovered = admin
        .wait("leak", Duration::from_secs(60), |view| {
            view["state"] == "live"
        })
        .await;
    assert!(recovered.is_some(), "{}", admin.view("leak").await);

    // The CLI clients of the admin API.
    let base = service.base.clone();
    let (ok, list) = run_cli(&["tenants", "list", "--json", "--url", &base]);
    assert!(ok, "{}", String::from_utf8_lossy(&list));
    assert!(contains(&list, "\"leak\""));
    let (ok, table) = run_cli(&["tenants", "list", "--url", &base]);
    assert!(
        ok && contains(&table, "\nleak "),
        "{}",
        String::from_utf8_lossy(&table)
    );
    let (ok, missing) = run_cli(&["tenants", "show", "nobody", "--url", &base]);
    assert!(!ok && contains(&missing, "not_found"));
    let (ok, restart) = run_cli(&["tenants", "restart", "leak", "--url", &base]);
    assert!(ok, "{}", String::from_utf8_lossy(&restart));
    let (ok, plan) = run_cli(&["tenants", "sync", "leak", "--dry-run", "--url", &base]);
    assert!(
        ok && contains(&plan, "\"creates\""),
        "{}",
        String::from_utf8_lossy(&plan)
    );
    let mut cli_output = [list, table, missing, restart, plan].concat();

    let log = service.log();
    let exit = service.stop();
    assert!(exit.is_some(), "the service did not stop on SIGTERM");
    assert!(log.lines().count() > 20, "too little log captured: {log}");
    assert!(log.contains("tenant created"), "{log}");

    // export / import on the stopped data dir.
    let config_arg = config.display().to_string();
    let (ok, export) = run_cli(&["export", "--config", &config_arg]);
    assert!(ok, "{}", String::from_utf8_lossy(&export));
    assert!(contains(&export, "\"client_secret\": null"));
    assert!(contains(&export, "emp/"), "mappings exported");
    let export_file = work.path().join("full.json");
    let export_arg = export_file.display().to_string();
    let (ok, output) = run_cli(&[
        "export",
        "--config",
        &config_arg,
        "--with-secrets",
        "--output",
        &export_arg,
    ]);
    assert!(ok, "{}", String::from_utf8_lossy(&output));
    let full = std::fs::read(&export_file).expect("export file");
    assert!(
        contains(&full, PERSONIO_SECRET),
        "--with-secrets exports secrets"
    );
    let restored_dir = work.path().join("restored");
    let restored_config_dir = work.path().join("restored-config");
    std::fs::create_dir_all(&restored_config_dir).expect("dir");
    let restored_config = write_config(&restored_config_dir, &restored_dir);
    let restored_arg = restored_config.display().to_string();
    let (ok, output) = run_cli(&["import", "--config", &restored_arg, "--input", &export_arg]);
    assert!(ok, "{}", String::from_utf8_lossy(&output));
    cli_output.extend(output);
    let (ok, again) = run_cli(&["import", "--config", &restored_arg, "--input", &export_arg]);
    assert!(
        !ok && contains(&again, "not empty"),
        "{}",
        String::from_utf8_lossy(&again)
    );
    let (ok, reexport) = run_cli(&["export", "--config", &restored_arg]);
    assert!(ok && contains(&reexport, "emp/"));
    cli_output.extend(reexport);
    cli_output.extend(export);

    let files = all_bytes_under(&data_dir);
    assert!(
        contains(&files, "leak-test-p"),
        "the scan sees the stored spec"
    );
    assert!(
        !data_dir.join("secret.key").exists(),
        "the key came from the environment, not the data dir"
    );
    let client_secrets = [
        ("the Personio client secret", PERSONIO_SECRET),
        ("the Learn Amp client secret", LEARNAMP_SECRET),
        ("the refused Personio client secret", WRONG_SECRET),
        ("the webhook token", token_secret.as_str()),
    ];
    let mut every_secret = client_secrets.to_vec();
    every_secret.push(("the webhook key", webhook_key.as_str()));
    assert!(
        contains(admin.answers.concat().as_bytes(), &webhook_key),
        "the answers were captured (the view's webhook_url holds the key)"
    );
    let mut found = Vec::new();
    found.extend(leaks("the log", log.as_bytes(), &every_secret));
    found.extend(leaks("the sled files", &files, &every_secret));
    found.extend(leaks(
        "the restored sled files",
        &all_bytes_under(&restored_dir),
        &every_secret,
    ));
    found.extend(leaks(
        "the admin answers",
        admin.answers.concat().as_bytes(),
        &client_secrets,
    ));
    found.extend(leaks("the CLI output", &cli_output, &client_secrets));
    assert!(found.is_empty(), "{found:#?}");
}
