//! `personio-sync tenants sync ID --wait`: starts a full sync and follows the view's
//! `progress` with a progress bar (on a terminal only) until `last_sync` changes.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::actors::status::{TenantState, TenantView};
use crate::admin_client::AdminClient;
use crate::sync::progress::{Progress, SyncPhase};

/// How often the view is read while waiting.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// The bar: drawn on stdout when it is a terminal, hidden otherwise (a pipe or a file
/// gets only the final counts).
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
    if std::io::stdout().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stdout());
    }
    bar.set_style(phase_style());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Before the plan exists: the phase and a spinner (there is nothing to count yet).
fn phase_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:>10} {spinner} ({elapsed})").expect("a valid template")
}

/// Applying: the steps done of the steps planned.
fn steps_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({elapsed})")
        .expect("a valid template")
        .progress_chars("=> ")
}

/// What the bar shows for `progress`.
fn show(bar: &ProgressBar, progress: &Progress) {
    let phase = match progress.phase {
        SyncPhase::Reading => "reading",
        SyncPhase::Planning => "planning",
        SyncPhase::Applying => "applying",
    };
    bar.set_message(phase);
    match progress.total {
        Some(total) => {
            bar.set_style(steps_style());
            bar.set_length(total);
            bar.set_position(progress.done);
        }
        None => bar.set_style(phase_style()),
    }
}

/// Where a view stands relative to the sync being waited for.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still reading, planning or applying (or not begun yet).
    Running,
    /// A new `last_sync` is there and the tenant is no longer syncing.
    Finished,
    /// The sync began and ended without a new report (its error is in `last_error`).
    Failed,
}

/// Judges `view`: `previous` is the `last_sync.finished_at` before the request and
/// `began` whether the sync was seen running.
pub fn judge(view: &TenantView, previous: Option<&str>, began: bool) -> Outcome {
    let running = view.progress.is_some() || view.state == TenantState::Syncing;
    let finished_at = view
        .last_sync
        .as_ref()
        .map(|sync| sync.finished_at.as_str());
    if running {
        Outcome::Running
    } else if finished_at.is_some() && finished_at != previous {
        Outcome::Finished
    } else if began {
        Outcome::Failed
    } else {
        Outcome::Running
    }
}

/// Starts a full sync of `id` and waits until it ends (at most `timeout`); answers the
/// view with its new `last_sync`.
pub async fn sync_and_wait(
    client: &AdminClient,
    id: &str,
    confirm: bool,
    timeout: Duration,
) -> anyhow::Result<TenantView> {
    let before = client.view(id).await?;
    let previous = before.last_sync.map(|sync| sync.finished_at);
    client.start_sync(id, confirm).await?;
    let bar = progress_bar();
    bar.set_message("queued");
    let deadline = Instant::now() + timeout;
    let mut began = false;
    loop {
        let view = client.view(id).await?;
        if let Some(progress) = &view.progress {
            show(&bar, progress);
        }
        match judge(&view, previous.as_deref(), began) {
            Outcome::Finished => {
                bar.finish_and_clear();
                return Ok(view);
            }
            Outcome::Failed => {
                bar.abandon();
                anyhow::bail!(
                    "the sync of {id} ended without a report: {}",
                    view.last_error.as_deref().unwrap_or("no error shown")
                );
            }
            Outcome::Running => {
                began |= view.progress.is_some() || view.state == TenantState::Syncing;
            }
        }
        if Instant::now() >= deadline {
            bar.abandon();
            anyhow::bail!("the sync of {id} did not finish within {timeout:?}");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::report::SyncReport;

    fn view(
        state: TenantState,
        progress: Option<Progress>,
        finished_at: Option<&str>,
    ) -> TenantView {
        let mut view = TenantView::starting("t", String::new());
        view.state = state;
        view.progress = progress;
        view.last_sync = finished_at.map(|at| SyncReport {
            finished_at: at.into(),
            ..SyncReport::default()
        });
        view
    }

    #[test]
    fn waits_for_a_new_report_after_the_sync_ran() {
        let applying = Some(Progress {
            phase: SyncPhase::Applying,
            done: 1,
            total: Some(4),
        });
        let old = Some("t0");
        // Queued: the old report, not begun.
        assert_eq!(
            judge(&view(TenantState::Live, None, old), old, false),
            Outcome::Running
        );
        assert_eq!(
            judge(&view(TenantState::Syncing, applying, old), old, false),
            Outcome::Running
        );
        // Progress gone, state still syncing while the counts are published.
        assert_eq!(
            judge(&view(TenantState::Syncing, None, old), old, true),
            Outcome::Running
        );
        assert_eq!(
            judge(&view(TenantState::Live, None, Some("t1")), old, true),
            Outcome::Finished
        );
        // A sync too quick to be seen still finishes.
        assert_eq!(
            judge(&view(TenantState::Degraded, None, Some("t1")), old, false),
            Outcome::Finished
        );
        // Begun, ended, no new report: failed.
        assert_eq!(
            judge(&view(TenantState::Degraded, None, old), old, true),
            Outcome::Failed
        );
        // The first sync of a tenant.
        assert_eq!(
            judge(&view(TenantState::Live, None, Some("t1")), None, false),
            Outcome::Finished
        );
    }
}
