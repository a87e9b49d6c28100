//! The real `personio-sync serve` binary as a child process, for the tests that kill it
//! (SIGKILL, SIGTERM, SIGSTOP) and start it again on the same port and data directory,
//! alone ([`ServiceProcess::start`]) or as a node of a [`crate::cluster::Cluster`].
//!
//! Every start writes its stderr to `service-<n>.log` next to the config and the data
//! directory, so a failure message can quote the current start's log and a test can
//! search the logs of all starts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{TOKEN, admin_request};

/// How long a start may take to answer `/healthz`.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);
/// Lines of the current start's log quoted in failure messages.
const LOG_TAIL_LINES: usize = 40;

/// The `personio-sync` binary to run: `$PERSONIO_SYNC_BIN` if set, else the one cargo
/// built for the running test (`$NEXTEST_BIN_EXE_personio-sync` under nextest), else
/// `personio-sync` in the target directory of the running executable (beside it, or one
/// level up from `deps/`). Panics naming what to build when there is none.
pub fn service_binary() -> PathBuf {
    let from_env = ["PERSONIO_SYNC_BIN", "NEXTEST_BIN_EXE_personio-sync"]
        .iter()
        .find_map(std::env::var_os)
        .map(PathBuf::from);
    if let Some(binary) = from_env {
        return binary;
    }
    let name = format!("personio-sync{}", std::env::consts::EXE_SUFFIX);
    let exe = std::env::current_exe().expect("path of the running executable");
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(&name))
        .collect();
    candidates
        .iter()
        .find(|candidate| candidate.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no personio-sync binary at {candidates:?}: build it (`cargo build --bin personio-sync`) or set PERSONIO_SYNC_BIN"
            )
        })
}

/// The service binary on a fixed port and data directory, with an admin client. The
/// process is SIGKILLed and reaped on drop, so a failing test leaves none behind.
pub struct ServiceProcess {
    dir: tempfile::TempDir,
    binary: PathBuf,
    port: u16,
    base: String,
    http: reqwest::Client,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// The exit status of the last process, once it was reaped.
    exit: Option<ExitStatus>,
    starts: usize,
}

impl ServiceProcess {
    /// Writes a config (a free port on 127.0.0.1, a data directory in a new temporary
    /// directory), starts [`service_binary`] with the admin token and `env` (e.g.
    /// `RUST_LOG`), and waits until it answers `/healthz`.
    pub async fn start(env: &[(&str, &str)]) -> ServiceProcess {
        let mut service = ServiceProcess::prepare(&service_binary(), env, default_config);
        service.restart().await;
        service
    }

    /// A service not started yet: a new temporary directory holding `config.toml` with
    /// the text `config(dir, port)` returns for that directory and a free port on
    /// 127.0.0.1 (the config must listen on that port; [`ServiceProcess::data_dir`] is
    /// `dir/data`). Start it with [`ServiceProcess::launch`] or
    /// [`ServiceProcess::restart`].
    pub fn prepare(
        binary: &Path,
        env: &[(&str, &str)],
        config: impl FnOnce(&Path, u16) -> String,
    ) -> ServiceProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        std::fs::write(dir.path().join("config.toml"), config(dir.path(), port))
            .expect("config written");
        ServiceProcess {
            dir,
            binary: binary.to_path_buf(),
            port,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            env: env
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            child: None,
            exit: None,
            starts: 0,
        }
    }

    /// `127.0.0.1:PORT` of the front door.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:PORT` of the front door.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The temporary directory holding `config.toml`, the logs and (by default) the
    /// data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory (`storage.data_dir` of the default config).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The HTTP client (10 s timeout).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The process id of the running process (`None` once it was reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the binary again on the same port and data directory and waits until it
    /// answers `/healthz`. The previous process must have been killed or have exited.
    pub async fn restart(&mut self) {
        self.launch();
        self.wait_healthy().await;
    }

    /// Starts the binary without waiting for it (see [`ServiceProcess::wait_healthy`]).
    /// The previous process must have been killed or have exited.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "the service is still running");
        self.starts += 1;
        let stderr = std::fs::File::create(self.log_path(self.starts)).expect("log file");
        let child = Command::new(&self.binary)
            .arg("serve")
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .env("PERSONIO_SYNC_ADMIN_TOKEN", TOKEN)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("{} starts: {error}", self.binary.display()));
        self.child = Some(child);
        self.exit = None;
    }

    /// SIGKILL, then a new process on the same port and data directory, healthy.
    /// Returns the exit status of the killed one.
    pub async fn kill_and_restart(&mut self) -> ExitStatus {
        let status = self.kill();
        self.restart().await;
        status
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running child");
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait after SIGKILL");
        self.exit = Some(status);
        status
    }

    /// Sends SIGTERM (without waiting for the exit: see [`ServiceProcess::exited`]).
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends `signal` (a name `kill` knows: `TERM`, `STOP`, `CONT`) to the running
    /// process.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().expect("running child");
        let kill = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(kill.success(), "kill -{signal} {pid}: {kill}");
    }

    /// The exit status once the process has exited (reaping it), `None` while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait().expect("try_wait")
        {
            self.child = None;
            self.exit = Some(status);
        }
        self.exit
    }

    /// Polls until the process has exited (reaping it), failing after `timeout` with the
    /// tail of the log.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "start {} on port {}: still running after {timeout:?}:\n{}",
                self.starts,
                self.port,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `/healthz` until it answers 200, failing if the process exits or after 30 s.
    pub async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        loop {
            if let Some(status) = self.exited() {
                panic!(
                    "start {} on port {}: the service exited with {status}:\n{}",
                    self.starts,
                    self.port,
                    self.log_tail()
                );
            }
            if self.answers_healthz().await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "start {} on port {}: no /healthz within {HEALTHY_WITHIN:?}:\n{}",
                self.starts,
                self.port,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn answers_healthz(&self) -> bool {
        let answer = self.http.get(format!("{}/healthz", self.base)).send().await;
        answer.is_ok_and(|response| response.status().as_u16() == 200)
    }

    /// Whether nothing answers on the service's port any more (not even an error).
    pub async fn is_unreachable(&self) -> bool {
        self.http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .is_err()
    }

    /// Any admin call with the right token; returns status and body (`null` if the
    /// body is not JSON).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        admin_request(&self.base, method, path, body).await
    }

    /// The view of `tenant`, which must answer 200.
    pub async fn view(&self, tenant: &str) -> Value {
        let (status, view) = self
            .admin(
                reqwest::Method::GET,
                &format!("/admin/tenants/{tenant}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "view of {tenant}: {view}");
        view
    }

    /// Polls the view of `tenant` until `done` holds, failing after `timeout` with the
    /// last view and the tail of the log.
    pub async fn wait_view(
        &self,
        tenant: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let view = self.view(tenant).await;
            if done(&view) {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "timed out ({timeout:?}) waiting for {what}: {view}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_path(&self, start: usize) -> PathBuf {
        self.dir.path().join(format!("service-{start}.log"))
    }

    /// The last lines of the current start's stderr (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// Every line of every start's stderr containing `needle`, prefixed with its start.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        (1..=self.starts)
            .flat_map(|start| {
                let text = std::fs::read_to_string(self.log_path(start)).unwrap_or_default();
                text.lines()
                    .filter(|line| line.contains(needle))
                    .map(|line| format!("[start {start}] {line}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

/// The config of [`ServiceProcess::start`]: listen on (and announce) `port`, data in
/// `dir/data`.
fn default_config(dir: &Path, port: u16) -> String {
    let data = dir.join("data");
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\nmetrics_listen = \"127.0.0.1:0\"\n\n[storage]\ndata_dir = {data:?}\n"
    )
}
