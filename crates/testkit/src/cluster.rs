//! Several real `personio-sync serve` processes behind Debian's nginx as a round-robin
//! reverse proxy: the multi-node setup of issue 17, on loopback, for tests and the load
//! tool.
//!
//! [`Cluster::start`] gives every node its own temporary directory (config, data
//! directory, logs) and port, and all of them the same config changes (the storage
//! backend, once there is a shared one). Every node announces the load balancer's URL
//! as its `public_url`: webhook URLs and page links must point at the front door, not
//! at one node. nginx runs from a generated `nginx.conf` in its own temporary directory
//! (pid file, logs and temp paths inside it, `daemon off`, one process) on a free
//! loopback port and proxies everything: webhooks, admin API, pages, `/metrics`.
//!
//! # nginx's retry rules, and why
//!
//! - `proxy_next_upstream error timeout` without `non_idempotent`: nginx passes a
//!   request to the next node when connecting fails (refused, 1 s connect timeout) and,
//!   for GET/HEAD only, also when the answer fails or times out after the request was
//!   sent. A POST that reached a node is never sent to a second one: that node may
//!   have stored the delivery (or created the tenant, or sent the invitation) and only
//!   the answer was lost. For a webhook delivery a second copy would be harmless, but
//!   only because processing is idempotent (a delivery names a person to fetch again);
//!   admin POSTs are not (a retried create answers 409 for a tenant that was created).
//!   So such a POST gets 502/504 and its sender retries, as Personio does for any
//!   delivery not answered 200. A POST to a node that is down (SIGKILLed: connection
//!   refused) is safe to pass on, since that node never saw it.
//! - No `http_5xx` conditions: a node's own 503 (inbox full, storage failing, tenant
//!   closing) reaches the client with its `Retry-After`, so tests see it.
//! - `max_fails=1 fail_timeout=2s` per node: one failure marks a node down for 2 s, so a
//!   killed node costs one refused connect every 2 s, and a restarted one gets requests
//!   again within 2 s.
//! - `proxy_read_timeout 5s`: a paused (SIGSTOPped) node still accepts connections (the
//!   kernel completes them), so only the read timeout notices it; a GET then moves on
//!   to the next node, a POST gets 504. No request of the service takes that long on
//!   a test's data.
//! - Keep-alive connections to the nodes (`keepalive 16`), as a production proxy would
//!   hold, so the load tool measures the nodes rather than connection set-up.
//! - `master_process off`: one nginx process, so SIGKILL on drop leaves no worker
//!   behind (a worker outlives a SIGKILLed master). It runs as the current user (no
//!   `user` switch happens without a master).

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use personio_sync::config::Config;

use crate::process::{ServiceProcess, free_port, service_binary};

/// Where Debian's `nginx-light` installs nginx.
pub const NGINX: &str = "/usr/sbin/nginx";
/// How long nginx may take to answer through the front door.
const NGINX_READY_WITHIN: Duration = Duration::from_secs(10);
/// How long a node may take to exit after SIGTERM (contract §6 allows 10 s).
const TERMINATE_WITHIN: Duration = Duration::from_secs(20);
/// How long SIGSTOP / SIGCONT may take to show in `/proc`.
const SIGNAL_WITHIN: Duration = Duration::from_secs(5);

/// The nginx binary: `$NGINX` if set, else [`NGINX`]; `None` when it is not there.
pub fn nginx_binary() -> Option<PathBuf> {
    let path = nginx_path();
    path.is_file().then_some(path)
}

fn nginx_path() -> PathBuf {
    std::env::var_os("NGINX").map_or_else(|| PathBuf::from(NGINX), PathBuf::from)
}

/// Whether the cluster tests can run here. Without nginx: a visible SKIP line and
/// `false`, or a failure when `CI` is set (CI never skips).
pub fn nginx_ready(test: &str) -> bool {
    if nginx_binary().is_some() {
        return true;
    }
    let message = format!(
        "SKIP {test}: missing nginx at {} (`apt-get install nginx-light`, or set NGINX to its path)",
        nginx_path().display()
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "{message} (CI is set, so the cluster tests may not skip)"
    );
    eprintln!("{message}");
    false
}

/// N service processes behind nginx. Dropping it SIGKILLs and reaps every node and
/// nginx, also when a test panics.
pub struct Cluster {
    nodes: Vec<Node>,
    nginx: Nginx,
}

impl Cluster {
    /// Starts `n` nodes of [`service_binary`] and nginx in front of them, and waits
    /// until every node answers `/healthz` directly and through nginx. Each node's
    /// config listens on its own free port, announces the load balancer's URL, keeps
    /// its data in its own directory, and is then changed by `config_fn(index, config)`
    /// (give every node the same changes unless a test needs otherwise).
    pub async fn start(n: usize, config_fn: impl Fn(usize, &mut Config)) -> Cluster {
        Cluster::start_binary(&service_binary(), n, config_fn).await
    }

    /// Like [`Cluster::start`], with the service binary at `binary`.
    pub async fn start_binary(
        binary: &Path,
        n: usize,
        config_fn: impl Fn(usize, &mut Config),
    ) -> Cluster {
        assert!(n > 0, "a cluster needs at least one node");
        let nginx_binary = nginx_binary().expect("nginx is installed (see nginx_ready)");
        let lb_port = free_port();
        let lb_url = format!("http://127.0.0.1:{lb_port}");
        let mut nodes: Vec<Node> = (0..n)
            .map(|index| {
                let process =
                    ServiceProcess::prepare(binary, &[("RUST_LOG", "info")], |dir, port| {
                        node_config(dir, port, &lb_url, |config| config_fn(index, config))
                    });
                Node {
                    index,
                    process,
                    paused: false,
                }
            })
            .collect();
        for node in &mut nodes {
            node.process.launch();
        }
        let ports: Vec<u16> = nodes.iter().map(|node| node.addr().port()).collect();
        let nginx = Nginx::start(&nginx_binary, lb_port, &ports);
        let mut cluster = Cluster { nodes, nginx };
        for node in &mut cluster.nodes {
            node.process.wait_healthy().await;
        }
        cluster.nginx.wait_ready().await;
        cluster
    }

    /// `http://127.0.0.1:PORT` of nginx, the front door of the cluster.
    pub fn lb_url(&self) -> &str {
        &self.nginx.url
    }

    /// Node `index` (0-based).
    pub fn node(&mut self, index: usize) -> &mut Node {
        &mut self.nodes[index]
    }

    /// Every node, in order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes (never: [`Cluster::start`] needs one).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The process ids of nginx and of every running node.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.nodes.iter().filter_map(|node| node.pid()).collect();
        pids.extend(self.nginx.pid());
        pids
    }

    /// The temporary directories of nginx and of every node: each of their processes
    /// names its directory on its command line (`--config DIR/config.toml`, `-p DIR`),
    /// so after the drop no process's command line may contain one of these.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .nodes
            .iter()
            .map(|node| node.process.dir().to_path_buf())
            .collect();
        dirs.push(self.nginx.dir.path().to_path_buf());
        dirs
    }

    /// nginx's error log (connect failures and nodes marked down are logged here).
    pub fn nginx_error_log(&self) -> String {
        std::fs::read_to_string(self.nginx.dir.path().join("error.log")).unwrap_or_default()
    }

    /// nginx's access log: one line per request, `status upstream_addr request`, where
    /// `upstream_addr` lists every node tried (`127.0.0.1:P1, 127.0.0.1:P2`).
    pub fn nginx_access_log(&self) -> String {
        std::fs::read_to_string(self.nginx.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Waits until every running, unpaused node answers `/healthz` and nginx answers
    /// through the front door.
    pub async fn wait_healthy(&mut self) {
        for node in &mut self.nodes {
            if node.is_running() && !node.paused {
                node.process.wait_healthy().await;
            }
        }
        self.nginx.wait_ready().await;
    }
}

/// One node: a [`ServiceProcess`] (its methods are reachable through `Deref`) with
/// the signals a cluster test sends.
pub struct Node {
    index: usize,
    process: ServiceProcess,
    paused: bool,
}

impl Node {
    /// The node's index in the cluster.
    pub fn index(&self) -> usize {
        self.index
    }

    /// `http://127.0.0.1:PORT` of this node alone.
    pub fn url(&self) -> &str {
        self.process.url()
    }

    /// Whether the process runs (paused counts as running).
    pub fn is_running(&self) -> bool {
        self.process.pid().is_some()
    }

    /// Whether the process is stopped by [`Node::pause`].
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// SIGKILL and reap (also of a paused node); returns the exit status.
    pub fn kill(&mut self) -> ExitStatus {
        self.paused = false;
        self.process.kill()
    }

    /// SIGTERM (and SIGCONT if paused, so the signal is handled), then waits up to 20 s
    /// for the exit and returns its status.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.process.terminate();
        if self.paused {
            self.process.signal("CONT");
            self.paused = false;
        }
        self.process.wait_exit(TERMINATE_WITHIN).await
    }

    /// SIGSTOP: the process stays, keeps its port and answers nothing (connections are
    /// still accepted by the kernel). Returns once `/proc` shows it stopped.
    pub async fn pause(&mut self) {
        assert!(!self.paused, "node {} is already paused", self.index);
        self.process.signal("STOP");
        self.paused = true;
        self.wait_stopped(true).await;
    }

    /// SIGCONT after [`Node::pause`]. Returns once `/proc` shows it running again.
    pub async fn resume(&mut self) {
        assert!(self.paused, "node {} is not paused", self.index);
        self.process.signal("CONT");
        self.paused = false;
        self.wait_stopped(false).await;
    }

    /// Starts the node again on the same port and data directory and waits until it
    /// answers `/healthz`; a node still running is first stopped with
    /// [`Node::terminate`].
    pub async fn restart(&mut self) {
        if self.is_running() {
            self.terminate().await;
        }
        self.process.restart().await;
    }

    /// The node's own `/metrics` text (the front door's series, no tenant labels).
    pub async fn metrics(&self) -> String {
        let response = self
            .process
            .http()
            .get(format!("{}/metrics", self.url()))
            .send()
            .await
            .unwrap_or_else(|error| panic!("/metrics of node {}: {error}", self.index));
        assert_eq!(
            response.status().as_u16(),
            200,
            "/metrics of node {}",
            self.index
        );
        response.text().await.expect("metrics text")
    }

    async fn wait_stopped(&self, stopped: bool) {
        let pid = self.process.pid().expect("running node");
        wait_until(
            &format!(
                "node {} (pid {pid}) {}",
                self.index,
                if stopped { "stopped" } else { "running" }
            ),
            SIGNAL_WITHIN,
            || async move { process_stopped(pid) == Some(stopped) },
        )
        .await;
    }
}

impl Deref for Node {
    type Target = ServiceProcess;

    fn deref(&self) -> &ServiceProcess {
        &self.process
    }
}

impl DerefMut for Node {
    fn deref_mut(&mut self) -> &mut ServiceProcess {
        &mut self.process
    }
}

/// Whether process `pid` is stopped (state `T`), from `/proc/PID/stat`; `None` when
/// there is no such process.
pub fn process_stopped(pid: u32) -> Option<bool> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses and may hold spaces.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    Some(state == "T")
}

/// Whether any process's command line contains `needle` (from `/proc/*/cmdline`).
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains(needle))
        })
        .collect()
}

/// Polls `check` every 20 ms until it holds, failing with `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out ({timeout:?}) waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of `series` (name with its labels, as printed: `name{label="v"}`) in a
/// `/metrics` text; 0 when absent.
pub fn metric_value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Merges the TOML text `fragment` into `config`, table by table (e.g. a shared
/// `[storage]` backend for every node, from a file): keys it names replace the
/// config's, the others stay. An unknown key or a wrong type is an error naming it.
pub fn merge_toml(config: &mut Config, fragment: &str) -> Result<(), String> {
    let mut table = toml::Table::try_from(&*config).map_err(|error| error.to_string())?;
    let overlay: toml::Table = fragment.parse().map_err(|error| format!("{error}"))?;
    merge_tables(&mut table, overlay);
    *config = toml::Value::Table(table)
        .try_into()
        .map_err(|error| format!("{error}"))?;
    Ok(())
}

fn merge_tables(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(overlay)) => {
                merge_tables(inner, overlay)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// A node's `config.toml`: listen on `port`, announce `lb_url`, data in `dir/data`, a
/// private metrics listener on a free port, then `configure`.
fn node_config(dir: &Path, port: u16, lb_url: &str, configure: impl FnOnce(&mut Config)) -> String {
    let mut config = Config::default();
    config.server.listen = format!("127.0.0.1:{port}");
    config.server.public_url = lb_url.to_string();
    config.server.metrics_listen = "127.0.0.1:0".into();
    config.storage.data_dir = dir.join("data");
    configure(&mut config);
    toml::to_string(&config).expect("config serialises")
}

/// nginx in front of the nodes.
struct Nginx {
    dir: tempfile::TempDir,
    url: String,
    child: Option<Child>,
}

impl Nginx {
    /// Writes `nginx.conf` for `ports` and starts nginx on `lb_port` (not waiting).
    fn start(binary: &Path, lb_port: u16, ports: &[u16]) -> Nginx {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, nginx_conf(dir.path(), lb_port, ports)).expect("nginx.conf");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("log file");
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("{} starts: {error}", binary.display()));
        Nginx {
            dir,
            url: format!("http://127.0.0.1:{lb_port}"),
            child: Some(child),
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Polls `/healthz` through nginx until some node answers 200.
    async fn wait_ready(&mut self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let deadline = Instant::now() + NGINX_READY_WITHIN;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().expect("try_wait")
            {
                self.child = None;
                panic!("nginx exited with {status}:\n{}", self.logs());
            }
            let answer = http.get(format!("{}/healthz", self.url)).send().await;
            if answer.is_ok_and(|response| response.status().as_u16() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx at {}: no /healthz within {NGINX_READY_WITHIN:?}:\n{}",
                self.url,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .map(|name| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The generated `nginx.conf` (see the module documentation for the choices).
fn nginx_conf(dir: &Path, lb_port: u16, ports: &[u16]) -> String {
    let dir = dir.display();
    let servers: String = ports
        .iter()
        .map(|port| format!("        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    format!(
        r#"# Generated by personio-sync-testkit's cluster harness.
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;

events {{
    worker_connections 4096;
}}

http {{
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    log_format upstream '$status $upstream_addr "$request"';
    access_log {dir}/access.log upstream;
    # The nodes enforce their own body limits.
    client_max_body_size 0;
    # Keep client connections open as the nodes do (nginx closes one after 1,000
    # requests by default, which the load tool's minimal client counts as an error).
    keepalive_requests 1000000;

    upstream personio_sync {{
{servers}        keepalive 16;
    }}

    server {{
        listen 127.0.0.1:{lb_port};
        location / {{
            proxy_pass http://personio_sync;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 1s;
            proxy_send_timeout 5s;
            proxy_read_timeout 5s;
            # Never non_idempotent: a POST that reached a node is not sent to another.
            proxy_next_upstream error timeout;
            proxy_next_upstream_timeout 15s;
        }}
    }}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_are_read_by_series() {
        let metrics = "# TYPE x counter\nx_total{outcome=\"stored\"} 3\nx_total{outcome=\"unknown_key\"} 12\n";
        assert_eq!(
            metric_value(metrics, "x_total{outcome=\"unknown_key\"}"),
            12.0
        );
        assert_eq!(metric_value(metrics, "x_total{outcome=\"stored\"}"), 3.0);
        assert_eq!(metric_value(metrics, "x_total{outcome=\"other\"}"), 0.0);
        assert_eq!(metric_value(metrics, "x_total"), 0.0);
    }

    #[test]
    fn the_nginx_config_keeps_everything_in_its_directory() {
        let conf = nginx_conf(Path::new("/tmp/lb"), 8080, &[9001, 9002]);
        assert!(conf.contains("listen 127.0.0.1:8080;"), "{conf}");
        assert!(conf.contains("server 127.0.0.1:9001 max_fails=1"), "{conf}");
        assert!(conf.contains("server 127.0.0.1:9002 max_fails=1"), "{conf}");
        assert!(
            conf.contains("proxy_next_upstream error timeout;"),
            "{conf}"
        );
        // Every file nginx writes (pid, two logs, five temp paths) is inside the directory.
        let mut paths = 0;
        for line in conf.lines().map(str::trim) {
            if let Some(path) = line.split_whitespace().nth(1)
                && path.starts_with('/')
                && !line.starts_with("location")
            {
                paths += 1;
                assert!(
                    path.starts_with("/tmp/lb/"),
                    "path outside the directory: {line}"
                );
            }
        }
        assert_eq!(paths, 8, "{conf}");
    }

    #[test]
    fn stopped_processes_are_read_from_proc() {
        assert_eq!(process_stopped(std::process::id()), Some(false));
        assert_eq!(process_stopped(u32::MAX), None);
    }

    #[test]
    fn toml_fragments_merge_into_the_config() {
        let mut config = Config::default();
        config.storage.data_dir = PathBuf::from("/tmp/n0/data");
        merge_toml(
            &mut config,
            "[storage]\ninbox_cap = 9\n[sync]\nconcurrency = 3\n",
        )
        .expect("merges");
        assert_eq!(config.storage.inbox_cap, 9);
        assert_eq!(config.sync.concurrency, 3);
        assert_eq!(config.storage.data_dir, Path::new("/tmp/n0/data"));
        let error = merge_toml(&mut config, "[storage]\nno_such_key = 1\n").unwrap_err();
        assert!(error.contains("no_such_key"), "{error}");
        assert!(merge_toml(&mut config, "[storage\n").is_err());
        assert_eq!(
            config.storage.inbox_cap, 9,
            "a failed merge changes nothing"
        );
    }

    #[test]
    fn node_configs_announce_the_load_balancer() {
        let text = node_config(
            Path::new("/tmp/n0"),
            9001,
            "http://127.0.0.1:8080",
            |config| {
                config.storage.inbox_cap = 7;
            },
        );
        let config: Config = toml::from_str(&text).expect("parses back");
        assert_eq!(config.server.listen, "127.0.0.1:9001");
        assert_eq!(config.server.public_url, "http://127.0.0.1:8080");
        assert_eq!(config.storage.data_dir, Path::new("/tmp/n0/data"));
        assert_eq!(config.storage.inbox_cap, 7);
    }
}
