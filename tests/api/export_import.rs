//! Issue 13 item 5 on the real binary: `export` never clobbers or writes through a
//! symlink, and a SIGKILL during `import` never leaves a half-imported data dir that
//! `serve` would open.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use personio_sync::domain::tenant::{WebhookSecrets, parse_spec};
use personio_sync::store::{EmployeeRecord, Store};
use serde_json::json;

use crate::helpers::TOKEN;

const TENANTS: usize = 50;
const EMPLOYEES: usize = 400;

/// A stopped service's data dir holding `tenants` tenants with `employees` records each.
async fn fill(dir: &Path, tenants: usize, employees: usize) -> Store {
    let store = Store::open(dir, 16).await.unwrap();
    for index in 0..tenants {
        let id = format!("tenant-{index:02}");
        let mut spec = parse_spec(json!({
            "id": id,
            "personio": {"base_url": "http://p", "client_id": "a", "client_secret": format!("p-secret-{index}")},
            "learnamp": {"base_url": "http://l", "client_id": "c", "client_secret": "l-secret"},
        }))
        .unwrap();
        spec.webhook = Some(WebhookSecrets::generate());
        store.put_tenant_spec(&spec).await.unwrap();
        let tree = store.tenant(&id).await.unwrap();
        for person in 0..employees {
            let record = EmployeeRecord {
                learnamp_id: person as u64 + 1,
                invited: true,
                ..EmployeeRecord::default()
            };
            tree.put_employee(&person.to_string(), &record).unwrap();
        }
        tree.mark_initial_sync_done().unwrap();
    }
    store.flush().await.unwrap();
    store
}

/// Every tenant tree, raw, by id.
type Trees = Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>;

async fn trees(store: &Store) -> Trees {
    let mut specs: Vec<String> = store
        .tenant_specs()
        .await
        .unwrap()
        .into_iter()
        .map(|spec| spec.id)
        .collect();
    specs.sort();
    let mut trees = Vec::with_capacity(specs.len());
    for id in specs {
        let document = personio_sync::export::export(store, true).await.unwrap();
        let tenant = document.tenants.into_iter().find(|t| t.id == id).unwrap();
        let raw = tenant.records.iter().map(|r| r.to_raw().unwrap()).collect();
        trees.push((id, raw));
    }
    trees
}

fn write_config(dir: &Path, data: &Path) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let config = format!("[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]\ndata_dir = {data:?}\n");
    std::fs::write(&path, config).unwrap();
    path
}

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_personio-sync"));
    command
        .env_remove("PERSONIO_SYNC_SECRET_KEY")
        .env("PERSONIO_SYNC_ADMIN_TOKEN", TOKEN)
        .stdin(Stdio::null());
    command
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_neither_clobbers_nor_writes_through_a_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(fill(&data, 2, 3).await);
    let config = write_config(dir.path(), &data);
    let export = |output: &Path, force: bool| {
        let mut command = binary();
        command
            .args(["export", "--with-secrets", "--config"])
            .arg(&config)
            .arg("--output")
            .arg(output);
        if force {
            command.arg("--force");
        }
        command.output().unwrap()
    };
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;

    let existing = dir.path().join("existing.json");
    std::fs::write(&existing, "precious").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = export(&existing, false);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "precious");
    assert_eq!(mode(&existing), 0o644);
    let forced = export(&existing, true);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_eq!(mode(&existing), 0o600);
    assert!(
        std::fs::read_to_string(&existing)
            .unwrap()
            .contains("p-secret-1")
    );

    let target = dir.path().join("someone-elses.txt");
    std::fs::write(&target, "not yours").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(!export(&link, false).status.success());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "not yours");
    assert!(export(&link, true).status.success());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "not yours");
    assert_eq!(mode(&target), 0o644);
    assert!(
        !std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(mode(&link), 0o600);
}

/// What a killed import left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// Nothing written yet: the data dir is as it was before the import.
    Untouched,
    /// `serve` refuses it with a clear error.
    Refused,
    /// Every tenant, intact.
    Complete,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_import_leaves_nothing_serve_would_open_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let source = fill(&dir.path().join("source"), TENANTS, EMPLOYEES).await;
    let expected = trees(&source).await;
    assert_eq!(expected.len(), TENANTS);
    let document = dir.path().join("export.json");
    let file = std::fs::File::create(&document).unwrap();
    personio_sync::export::write_document(
        file,
        &personio_sync::export::export(&source, true).await.unwrap(),
    )
    .unwrap();
    drop(source);

    let mut outcomes = Vec::new();
    let mut serve_checked = false;
    let mut delay = Duration::from_millis(0);
    for round in 0..60 {
        let data = dir.path().join(format!("data-{round}"));
        let config = write_config(dir.path(), &data);
        let mut child = binary()
            .args(["import", "--config"])
            .arg(&config)
            .arg("--input")
            .arg(&document)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(delay).await;
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let status = child.wait().unwrap();
        let left = inspect(&data, &expected).await;
        if left == Left::Refused && !serve_checked {
            serve_checked = true;
            assert_serve_refuses(&config);
        }
        outcomes.push((delay, left));
        if finished {
            assert!(status.success(), "the import failed by itself");
            break;
        }
        delay += Duration::from_millis(if delay < Duration::from_millis(100) {
            50
        } else {
            15
        });
    }
    println!("kill delay → outcome: {outcomes:?}");
    assert!(serve_checked, "no kill landed mid-import: {outcomes:?}");
    let refused = outcomes
        .iter()
        .filter(|(_, left)| *left == Left::Refused)
        .count();
    println!("{} kills, {refused} mid-import", outcomes.len());
    assert_eq!(outcomes.last().map(|(_, left)| *left), Some(Left::Complete));
}

/// Classifies a data dir after a killed import; panics on a partial one.
async fn inspect(data: &Path, expected: &Trees) -> Left {
    if personio_sync::export::refuse_unfinished_import(data).is_err() {
        return Left::Refused;
    }
    let entries: Vec<String> = match std::fs::read_dir(data) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => return Left::Untouched,
    };
    if entries.is_empty() {
        return Left::Untouched;
    }
    let store = Store::open(data, 16).await.unwrap_or_else(|error| {
        panic!("a data dir serve would open does not open ({entries:?}): {error}")
    });
    let found = trees(&store).await;
    assert_eq!(
        found.len(),
        expected.len(),
        "a partial import would be served"
    );
    assert!(
        found == *expected,
        "an import would be served with records missing"
    );
    Left::Complete
}

/// `serve` on a data dir holding an unfinished import exits at once, saying why.
fn assert_serve_refuses(config: &Path) {
    let mut child = binary()
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve opened a data dir holding an unfinished import");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unfinished import"), "{stderr}");
}
