//! The LISTEN task: turns `NOTIFY inbox, '<tenant>'` (sent by every inbox insert, on
//! any node) into signals for this node, reconnecting when the connection drops.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

/// The channel inbox inserts notify.
pub(super) const CHANNEL: &str = "inbox";

/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the LISTEN task reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InboxSignal {
    /// Events for this tenant were stored.
    Tenant(String),
    /// The task (re)started listening: notifications sent before may be lost, so
    /// every inbox may hold events nobody was told about. Sent first on every
    /// (re)connection.
    Listening,
}

/// Starts the task; it ends when the receiver is dropped or the pool is closed.
pub(super) fn spawn(pool: PgPool) -> mpsc::UnboundedReceiver<InboxSignal> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(run(pool, sender));
    receiver
}

async fn run(pool: PgPool, sender: mpsc::UnboundedSender<InboxSignal>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if sender.is_closed() || pool.is_closed() {
            return;
        }
        let mut listener = match connect(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "cannot LISTEN for inbox events");
                tokio::select! {
                    () = sender.closed() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if sender.send(InboxSignal::Listening).is_err() {
            return;
        }
        loop {
            let received = tokio::select! {
                () = sender.closed() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    let tenant = notification.payload().to_string();
                    if sender.send(InboxSignal::Tenant(tenant)).is_err() {
                        return;
                    }
                }
                // The connection dropped: listen afresh, then say notifications may
                // have been missed.
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "LISTEN connection failed");
                    break;
                }
            }
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
