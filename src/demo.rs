//! `personio-sync demo`: both simulators, the service and one demo tenant on loopback;
//! runs the initial sync, changes a few people in Personio, shows the service picking
//! the changes up, and keeps serving until Ctrl-C.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::actors::status::{TenantState, TenantView};
use crate::admin_client::AdminClient;
use crate::app::{Application, Options, shutdown_signal};
use crate::config::Config;
use crate::domain::Secret;
use crate::domain::tenant::random_hex;
use crate::retry::RetryPolicy;
use crate::store::Store;
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::person::EmployeeStatus;
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};

/// Runs the demo.
pub async fn run(employees: usize, listen: String) -> anyhow::Result<()> {
    crate::telemetry::init(crate::config::LogFormat::Text);
    let personio = PersonioSim::start(PersonioSimConfig {
        employees,
        ..PersonioSimConfig::default()
    })
    .await
    .context("cannot start the Personio simulator")?;
    let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default())
        .await
        .context("cannot start the Learn Amp simulator")?;
    println!("Personio simulator:  {}", personio.base_url);
    println!("Learn Amp simulator: {}", learnamp.base_url);

    let data_dir = tempfile::tempdir().context("cannot create a temporary data dir")?;
    let mut config = Config::default();
    config.server.listen = listen;
    // Any free port: a demo must not clash with a service running beside it.
    config.server.metrics_listen = "127.0.0.1:0".into();
    config.storage.data_dir = data_dir.path().to_path_buf();
    config.validate_listen()?;
    let store = Store::open_with_key(
        data_dir.path(),
        64,
        crate::store::crypto::SecretKey::generate(),
    )?;
    let admin_token = random_hex(24);
    let options = Options {
        retry: RetryPolicy::fast(),
        ..Options::default()
    };
    let app = Application::build(&config, store, Secret::new(admin_token.clone()), options).await?;
    let base = format!("http://{}", app.local_addr());
    let metrics_addr = app.metrics_addr();
    let server = tokio::spawn(app.run(shutdown_signal()));
    let admin = AdminClient::new(base.clone(), Secret::new(admin_token.clone()));

    println!("\nCreating tenant `demo` (invite policy: immediately) ...");
    let spec = json!({
        "id": "demo",
        "personio": {"base_url": personio.base_url, "client_id": "sim-client", "client_secret": "sim-secret"},
        "learnamp": {"base_url": learnamp.base_url, "client_id": "sim-client", "client_secret": "sim-secret"},
        "settings": {"invite_policy": {"mode": "immediately"}}
    });
    admin.create(&spec).await?;
    let view = wait_for_sync(&admin).await?;
    print_report("Initial sync", &view);
    let users = learnamp.users();
    println!(
        "Learn Amp now holds {} users ({} deactivated), {} teams; {} invitations sent.",
        users.len(),
        users
            .iter()
            .filter(|user| user.status == personio_sync_sim::learnamp::SimUserStatus::Deactivated)
            .count(),
        learnamp.teams().len(),
        learnamp.invitations().len()
    );

    println!("\nChanging Personio: a promotion, a new hire and a leaver ...");
    let mut people = personio.employees();
    people.sort_by(|a, b| a.employee.id.cmp(&b.employee.id));
    let active: Vec<_> = people
        .iter()
        .filter(|person| person.employee.status == Some(EmployeeStatus::Active))
        .cloned()
        .collect();
    if active.len() < 2 {
        bail!("the demo needs at least two active employees");
    }
    let mut promoted = active[0].clone();
    promoted.employee.position = Some("Head of Demonstrations".into());
    println!(
        "  {} {} → jobTitle `Head of Demonstrations`",
        promoted.employee.first_name.clone().unwrap_or_default(),
        promoted.employee.last_name.clone().unwrap_or_default()
    );
    personio.upsert_employee(promoted);
    let mut leaver = active[1].clone();
    leaver.employee.status = Some(EmployeeStatus::Inactive);
    println!(
        "  {} {} → inactive",
        leaver.employee.first_name.clone().unwrap_or_default(),
        leaver.employee.last_name.clone().unwrap_or_default()
    );
    personio.upsert_employee(leaver);
    let mut hire = active[0].clone();
    let new_id = people
        .iter()
        .filter_map(|person| person.employee.id.parse::<u64>().ok())
        .max()
        .unwrap_or(1000)
        + 1;
    hire.employee.id = new_id.to_string();
    hire.employee.first_name = Some("Grace".into());
    hire.employee.last_name = Some("Hopper".into());
    hire.employee.email = Some(format!("grace.hopper.{new_id}@demo.example"));
    hire.picture = None;
    hire.employee.has_profile_picture = false;
    println!("  Grace Hopper joins (id {new_id})");
    personio.upsert_employee(hire);

    println!("Personio sends webhooks; waiting for Learn Amp to reflect the changes ...");
    let changed = Instant::now();
    let promoted_id = active[0].employee.id.clone();
    let leaver_id = active[1].employee.id.clone();
    let hire_id = new_id.to_string();
    let deadline = changed + Duration::from_secs(60);
    loop {
        let promoted_done = learnamp
            .user_by_external_id(&promoted_id)
            .and_then(|user| user.job_title)
            .as_deref()
            == Some("Head of Demonstrations");
        let leaver_done = learnamp
            .user_by_external_id(&leaver_id)
            .is_some_and(|user| {
                user.status == personio_sync_sim::learnamp::SimUserStatus::Deactivated
            });
        let hire_done = learnamp.user_by_external_id(&hire_id).is_some();
        if promoted_done && leaver_done && hire_done {
            break;
        }
        if Instant::now() > deadline {
            bail!("the webhook changes did not reach Learn Amp within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reached_after = changed.elapsed();
    let view = loop {
        let view = admin.view("demo").await?;
        if view.pending_events == 0 || Instant::now() > deadline {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "All three changes reached Learn Amp {} ms after the Personio edit ({} webhook events applied).",
        reached_after.as_millis(),
        view.live.events_applied,
    );
    let plan = admin.dry_run("demo").await?;
    println!(
        "A dry run now plans {} creates, {} updates, {} deactivations, {} invitations: nothing left to do.",
        plan["creates"].as_array().map_or(0, Vec::len),
        plan["updates"].as_array().map_or(0, Vec::len),
        plan["deactivations"].as_array().map_or(0, Vec::len),
        plan["invitations"].as_array().map_or(0, Vec::len)
    );

    println!("\nThe service keeps running. Try:");
    println!("  curl -H 'Authorization: Bearer {admin_token}' {base}/admin/tenants");
    println!(
        "  curl -X POST -H 'Authorization: Bearer {admin_token}' '{base}/admin/tenants/demo/sync?dry_run=true'"
    );
    if let Some(addr) = metrics_addr {
        println!("  curl http://{addr}/metrics   # per-tenant metrics (private listener)");
    }
    println!("Press Ctrl-C to stop.");
    server.await.context("the server task failed")??;
    drop(data_dir);
    Ok(())
}

fn print_report(title: &str, view: &TenantView) {
    let sync = view.last_sync.clone().unwrap_or_default();
    println!(
        "{title}: state {}, created {}, updated {}, deactivated {}, reactivated {}, invited {}, unchanged {}, failed {}",
        json!(view.state),
        sync.created,
        sync.updated,
        sync.deactivated,
        sync.reactivated,
        sync.invited,
        sync.unchanged,
        sync.failed
    );
}

/// Waits until the demo tenant's first full sync has finished.
async fn wait_for_sync(admin: &AdminClient) -> anyhow::Result<TenantView> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let view = admin.view("demo").await?;
        let finished = view.last_sync.is_some();
        if finished && view.state != TenantState::Syncing {
            return Ok(view);
        }
        if view.state == TenantState::Failed {
            bail!(
                "the demo tenant failed: {}",
                view.last_error.unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!("the sync did not finish within 5 minutes: {view:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
