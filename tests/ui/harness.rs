//! Running a browser script: the SKIP rule, the environment, the deadline, the result.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// The longest a script may run.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(300);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Whether the browser tests can run here. Without Chromium or the npm packages: a
/// visible SKIP line and `false`, or a failure when `CI` is set.
pub fn ready(test: &str) -> bool {
    let mut missing = Vec::new();
    if !chromium().exists() {
        missing.push("Chromium (`apt-get install chromium`, or set CHROMIUM to its path)");
    }
    if !root()
        .join("tests/ui/node_modules/playwright-core")
        .exists()
        || !root().join("tests/ui/node_modules/axe-core").exists()
    {
        missing.push("the npm packages (`npm ci --prefix tests/ui`)");
    }
    if missing.is_empty() {
        return true;
    }
    let message = format!("SKIP ui::{test}: missing {}", missing.join(" and "));
    assert!(
        std::env::var_os("CI").is_none(),
        "{message} (CI is set, so the browser tests may not skip)"
    );
    eprintln!("{message}");
    false
}

/// What a script printed on its `RESULT {json}` line (`null` when none).
pub struct Outcome {
    /// The result line's JSON.
    pub result: Value,
}

/// Runs `tests/ui/js/{script}.mjs` as test `test` with `env`; fails the test (with the
/// script's output) unless it exits 0 within the deadline.
pub async fn run_script(script: &str, test: &str, env: &[(&str, String)]) -> Outcome {
    let shots = root().join("target/ui");
    let mut command = tokio::process::Command::new("node");
    command
        .arg(root().join(format!("tests/ui/js/{script}.mjs")))
        .current_dir(root().join("tests/ui"))
        .env("UI_TEST", test)
        .env("UI_SHOT_DIR", &shots)
        .env("CHROMIUM", chromium())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(SCRIPT_DEADLINE, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!("ui::{test}: {script}.mjs did not finish within {SCRIPT_DEADLINE:?}")
        })
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "ui::{test}: {script}.mjs failed ({}); screenshots in {}\n{stdout}\n{stderr}",
        output.status,
        shots.display()
    );
    let result = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .map(|json| serde_json::from_str(json).expect("the RESULT line is JSON"))
        .unwrap_or(Value::Null);
    Outcome { result }
}
