//! What the cluster directory reaches through the store on PostgreSQL: the pool (for
//! its own tables) and the inbox notifications. Both are `None` on sled.

use super::Store;
pub(crate) use super::backend::postgres::InboxSignal;

impl Store {
    /// The PostgreSQL pool of this store (`None` on sled).
    pub fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        self.backend
            .postgres()
            .map(|backend| backend.pool().clone())
    }

    /// Notifications of events stored for any tenant by any node (`None` on sled).
    pub(crate) fn listen_inbox(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<InboxSignal>> {
        self.backend
            .postgres()
            .map(|backend| backend.listen_inbox())
    }
}
