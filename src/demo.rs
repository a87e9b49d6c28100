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
    // The terminal is the demo's narrative; the service's log goes to a file it names.
    let log_path = std::env::temp_dir().join("personio-sync-demo.log");
    let log_file = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create the log file {}", log_path.display()))?;
    crate::telemetry::init_to_file(log_file);
    println!("The service logs to {}", log_path.display());
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
    // The demo's webhooks and links point at wherever it listens (port 0: the bound port).
    // An unspecified host (0.0.0.0) is reached through loopback.
    let reachable = match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => format!("127.0.0.1:{}", addr.port()),
        _ => listen.clone(),
    };
    config.server.public_url = format!("http://{reachable}");
    config.server.listen = listen;
    // Any free port: a demo must not clash with a service running beside it.
    config.server.metrics_listen = "127.0.0.1:0".into();
    config.storage.data_dir = data_dir.path().to_path_buf();
    config.validate_listen()?;
    let store = Store::open_with_key(
        data_dir.path(),
        64,
        crate::store::crypto::SecretKey::generate(),
    )
    .await?;
    let admin_token = random_hex(24);
    // "Sign in with Personio" against the simulator's provider; its client is the
    // simulator's API client.
    config.personio.base_url = personio.base_url.clone();
    config.personio_oidc.issuer = personio.base_url.clone();
    config.personio_oidc.client_id = "sim-client".into();
    let options = Options {
        retry: RetryPolicy::fast(),
        oidc_client_secret: Some(Secret::new("sim-secret")),
        ..Options::default()
    };
    let app = Application::build(&config, store, Secret::new(admin_token.clone()), options).await?;
    let base = format!("http://{}", app.local_addr());
    let metrics_addr = app.metrics_addr();
    let server = tokio::spawn(app.run(shutdown_signal()));
    let admin = AdminClient::new(base.clone(), Secret::new(admin_token.clone()));

    println!(
        "\nCreating tenant `demo` (invite policy: immediately), awaiting its Personio connection ..."
    );
    let spec = json!({
        "id": "demo",
        "learnamp": {"base_url": learnamp.base_url, "client_id": "sim-client", "client_secret": "sim-secret"},
        "settings": {"invite_policy": {"mode": "immediately"}}
    });
    admin.create(&spec).await?;
    let invitation = admin
        .send(
            reqwest::Method::POST,
            "/admin/tenants/demo/invitations",
            Some(&json!({"expires_in_days": 7})),
        )
        .await?;
    let invite_url = invitation
        .body
        .as_ref()
        .and_then(|body| body["url"].as_str())
        .map(str::to_string)
        .with_context(|| format!("the invitation was not made ({})", invitation.status))?;
    let (admin_email, admin_password) = personio.oidc_admin();
    println!("Invitation for the customer's admin: {invite_url}");
    println!("The customer's app (after connecting): {base}/app/demo/");
    println!("Personio admin login at the simulator: {admin_email} {admin_password}");
    println!(
        "Connecting as that admin's browser would: open the link, Sign in with Personio, log in, Allow ..."
    );
    let overview = connect_as_browser(&invite_url, &admin_email, &admin_password).await?;
    println!("Connected; the overview is at {overview}");
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

/// Connects the demo tenant as the admin's browser would, over plain HTTP without
/// following redirects: opens the invitation (keeping the session cookie), presses
/// `Sign in with Personio`, logs in and allows at the simulator, and follows the way
/// back to the service. Answers the overview URL it ends on.
pub async fn connect_as_browser(
    invite_url: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = invite_url
        .split_once("/connect/")
        .map(|(base, _)| base.to_string())
        .context("the invitation URL has no /connect/ path")?;
    let opened = http.get(invite_url).send().await?;
    let cookie = opened
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::to_string)
        .with_context(|| {
            format!(
                "opening the invitation started no session ({})",
                opened.status()
            )
        })?;
    let connect_page = http
        .get(format!("{base}/connect"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await?
        .text()
        .await?;
    let (action, fields) = form_with_button(&connect_page, "Sign in with Personio")
        .context("the connect page has no `Sign in with Personio` form")?;
    let started = http
        .post(format!("{base}{action}"))
        .header(reqwest::header::COOKIE, &cookie)
        .form(&fields)
        .send()
        .await?;
    let authorize_url =
        location(&started).context("`Sign in with Personio` did not lead to Personio")?;
    let provider = reqwest::Url::parse(&authorize_url)?;
    let login_page = http
        .get(authorize_url.as_str())
        .send()
        .await?
        .text()
        .await?;
    let (action, mut fields) = form_with_button(&login_page, "Sign in")
        .context("the Personio login page has no `Sign in` form")?;
    fields.retain(|(name, _)| name != "email" && name != "password");
    fields.push(("email".into(), email.into()));
    fields.push(("password".into(), password.into()));
    let consent_page = http
        .post(provider.join(&action)?)
        .form(&fields)
        .send()
        .await?
        .text()
        .await?;
    let (action, mut fields) = form_with_button(&consent_page, "Allow")
        .context("signing in at Personio did not lead to its consent page")?;
    fields.push(("decision".into(), "allow".into()));
    let allowed = http
        .post(provider.join(&action)?)
        .form(&fields)
        .send()
        .await?;
    let callback = location(&allowed).context("`Allow` did not lead back to the service")?;
    let back = http
        .get(callback.as_str())
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await?;
    match location(&back) {
        Some(overview) if overview.starts_with("/app/") => Ok(format!("{base}{overview}")),
        _ => {
            let status = back.status();
            let page = back.text().await.unwrap_or_default();
            bail!(
                "the service did not connect ({status}): {}",
                page_text(&page)
            );
        }
    }
}

/// The `Location` of a redirect.
fn location(response: &reqwest::Response) -> Option<String> {
    response
        .status()
        .is_redirection()
        .then(|| response.headers().get(reqwest::header::LOCATION))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// The form holding a button whose text is `button`: its action and its hidden fields.
fn form_with_button(html: &str, button: &str) -> Option<(String, Vec<(String, String)>)> {
    html.split("<form").skip(1).find_map(|form| {
        let form = form.split("</form>").next()?;
        if !form.contains(&format!(">{button}</button>")) {
            return None;
        }
        let action = attribute(form, "action")?;
        let fields = form
            .split("<input")
            .skip(1)
            .filter(|input| attribute(input, "type").as_deref() == Some("hidden"))
            .filter_map(|input| {
                Some((
                    attribute(input, "name")?,
                    attribute(input, "value").unwrap_or_default(),
                ))
            })
            .collect();
        Some((action, fields))
    })
}

/// The value of `name="…"` in the tag starting `tag` (the simulators' and the
/// service's markup: double quotes, `&amp;`-style escapes for `&`, `"`, `<`, `>`).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let tag = tag.split('>').next()?;
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let value = &tag[start..start + tag[start..].find('"')?];
    Some(
        value
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&#60;", "<")
            .replace("&gt;", ">")
            .replace("&#62;", ">")
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

/// The visible text of a page, roughly (for an error message).
fn page_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for character in html.split("<main").nth(1).unwrap_or(html).chars() {
        match character {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(character),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
