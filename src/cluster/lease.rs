//! The SQL of leases and nodes (tables `leases` and `nodes`, migration 0001).
//!
//! Every expiry is computed and compared by the DATABASE's clock (`now()`), never a
//! node's: nodes' clocks may disagree, the database's is the one every node and every
//! fence check reads. Each statement that changes a lease is atomic on its own (a row
//! lock decides between nodes racing for one tenant).

use std::time::Duration;

use sqlx::{PgPool, Row};

/// A lease statement failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The database refused or could not be reached.
    #[error("lease table: {0}")]
    Database(#[from] sqlx::Error),
}

/// A lease this node just took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    /// The tenant.
    pub tenant: String,
    /// The new epoch (the previous one plus one): the fence of this node's writes.
    pub epoch: i64,
    /// Whether the lease was taken over from an owner that let it expire (it may have
    /// lost unflushed writes: the tenant reconciles), rather than free or released.
    pub from_expired: bool,
}

/// A lease nobody holds validly: free (never held or released) or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The tenant.
    pub tenant: String,
    /// Whether an owner let it expire (false: free).
    pub expired: bool,
}

/// The answer of one renew.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renewed {
    /// Leases extended by the lease duration from the database's now.
    pub renewed: Vec<String>,
    /// Leases that are no longer this node's: another node took them (owner or epoch
    /// changed), or they expired before the renew reached the database.
    pub lost: Vec<String>,
}

/// One node's handle on the lease and node tables.
#[derive(Clone)]
pub struct LeaseTable {
    pool: PgPool,
    node_id: String,
    lease: Duration,
}

impl LeaseTable {
    /// Leases of `node_id` lasting `lease` (`cluster.lease_seconds`) past each renew.
    pub fn new(pool: PgPool, node_id: impl Into<String>, lease: Duration) -> Self {
        Self {
            pool,
            node_id: node_id.into(),
            lease,
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The lease duration, in seconds, as the database's intervals take it.
    fn lease_secs(&self) -> f64 {
        self.lease.as_secs_f64()
    }

    /// Registers this node (or refreshes its row after a restart with the same id): live
    /// from now, not draining.
    pub async fn register(&self, address: &str) -> Result<(), LeaseError> {
        sqlx::query(
            "INSERT INTO nodes (node_id, address, heartbeat_at, draining) \
             VALUES ($1, $2, now(), false) \
             ON CONFLICT (node_id) DO UPDATE \
             SET address = EXCLUDED.address, heartbeat_at = now(), draining = false",
        )
        .bind(&self.node_id)
        .bind(address)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks this node alive now (re-creating its row if it was removed); answers
    /// whether an operator set it draining.
    pub async fn heartbeat(&self, address: &str) -> Result<bool, LeaseError> {
        let row = sqlx::query(
            "INSERT INTO nodes (node_id, address, heartbeat_at) VALUES ($1, $2, now()) \
             ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now() \
             RETURNING draining",
        )
        .bind(&self.node_id)
        .bind(address)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("draining")?)
    }

    /// Removes this node's row (clean shutdown, after its leases are released).
    pub async fn deregister(&self) -> Result<(), LeaseError> {
        sqlx::query("DELETE FROM nodes WHERE node_id = $1")
            .bind(&self.node_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets whether node `node_id` is draining (it then takes no tenant and gives its
    /// leases up); whether such a node is registered.
    pub async fn set_draining(&self, node_id: &str, draining: bool) -> Result<bool, LeaseError> {
        let done = sqlx::query("UPDATE nodes SET draining = $2 WHERE node_id = $1")
            .bind(node_id)
            .bind(draining)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Nodes that take tenants: a heartbeat within the lease duration, not draining.
    pub async fn live_nodes(&self) -> Result<usize, LeaseError> {
        let row = sqlx::query(
            "SELECT count(*) AS live FROM nodes \
             WHERE heartbeat_at > now() - make_interval(secs => $1) AND NOT draining",
        )
        .bind(self.lease_secs())
        .fetch_one(&self.pool)
        .await?;
        let live: i64 = row.try_get("live")?;
        Ok(usize::try_from(live).unwrap_or(0))
    }

    /// Gives every tenant in `tenants` a lease row (free, epoch 0) if it has none.
    pub async fn ensure(&self, tenants: &[String]) -> Result<(), LeaseError> {
        if tenants.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO leases (tenant) SELECT * FROM unnest($1::text[]) \
             ON CONFLICT (tenant) DO NOTHING",
        )
        .bind(tenants)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Leases nobody holds validly: free ones and expired ones (this node's own
    /// expired leases included).
    pub async fn candidates(&self) -> Result<Vec<Candidate>, LeaseError> {
        let rows = sqlx::query(
            "SELECT tenant, owner IS NOT NULL AS expired FROM leases \
             WHERE owner IS NULL OR expires_at IS NULL OR expires_at <= now()",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Candidate {
                    tenant: row.try_get("tenant")?,
                    expired: row.try_get("expired")?,
                })
            })
            .collect()
    }

    /// Takes whichever of `tenants` are free or expired, each atomically: owner = this
    /// node, epoch + 1, expiry = the database's now + the lease duration. A tenant
    /// another node holds validly, or is taking at this moment, is left out of the
    /// answer. Gives a tenant without a lease row one first.
    pub async fn acquire(&self, tenants: &[String]) -> Result<Vec<Acquired>, LeaseError> {
        if tenants.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure(tenants).await?;
        // The row lock (SKIP LOCKED: a tenant another node is taking right now is not
        // waited for) makes the check and the update one step; `prior.owner` is the
        // owner the lease had before, so a non-null one was an expired lease.
        let rows = sqlx::query(
            "WITH prior AS ( \
                 SELECT tenant, owner FROM leases \
                 WHERE tenant = ANY($2::text[]) \
                   AND (owner IS NULL OR expires_at IS NULL OR expires_at <= now()) \
                 FOR UPDATE SKIP LOCKED \
             ) \
             UPDATE leases AS l \
             SET owner = $1, epoch = l.epoch + 1, \
                 expires_at = now() + make_interval(secs => $3) \
             FROM prior \
             WHERE l.tenant = prior.tenant \
             RETURNING l.tenant, l.epoch, prior.owner IS NOT NULL AS from_expired",
        )
        .bind(&self.node_id)
        .bind(tenants)
        .bind(self.lease_secs())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Acquired {
                    tenant: row.try_get("tenant")?,
                    epoch: row.try_get("epoch")?,
                    from_expired: row.try_get("from_expired")?,
                })
            })
            .collect()
    }

    /// Extends every lease in `held` (tenant, epoch) in one statement, if it is still
    /// this node's with that epoch and has not expired; the rest are lost.
    pub async fn renew(&self, held: &[(String, i64)]) -> Result<Renewed, LeaseError> {
        if held.is_empty() {
            return Ok(Renewed::default());
        }
        let (tenants, epochs): (Vec<String>, Vec<i64>) = held.iter().cloned().unzip();
        let rows = sqlx::query(
            "UPDATE leases AS l SET expires_at = now() + make_interval(secs => $4) \
             FROM unnest($2::text[], $3::int8[]) AS held(tenant, epoch) \
             WHERE l.tenant = held.tenant AND l.epoch = held.epoch AND l.owner = $1 \
               AND l.expires_at > now() \
             RETURNING l.tenant",
        )
        .bind(&self.node_id)
        .bind(&tenants)
        .bind(&epochs)
        .bind(self.lease_secs())
        .fetch_all(&self.pool)
        .await?;
        let renewed: Vec<String> = rows
            .iter()
            .map(|row| row.try_get("tenant"))
            .collect::<Result<_, _>>()?;
        let lost = tenants
            .into_iter()
            .filter(|tenant| !renewed.contains(tenant))
            .collect();
        Ok(Renewed { renewed, lost })
    }

    /// Gives up the leases in `held` (tenant, epoch) that are still this node's with
    /// that epoch: owner cleared, epoch kept (the next owner's is higher), free at once.
    /// Answers the tenants released.
    pub async fn release(&self, held: &[(String, i64)]) -> Result<Vec<String>, LeaseError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let (tenants, epochs): (Vec<String>, Vec<i64>) = held.iter().cloned().unzip();
        let rows = sqlx::query(
            "UPDATE leases AS l SET owner = NULL, expires_at = NULL \
             FROM unnest($2::text[], $3::int8[]) AS held(tenant, epoch) \
             WHERE l.tenant = held.tenant AND l.epoch = held.epoch AND l.owner = $1 \
             RETURNING l.tenant",
        )
        .bind(&self.node_id)
        .bind(&tenants)
        .bind(&epochs)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get("tenant"))
            .collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cluster::testdb;

    const LONG: Duration = Duration::from_secs(60);
    const SHORT: Duration = Duration::from_millis(300);

    fn t(name: &str) -> Vec<String> {
        vec![name.to_string()]
    }

    /// Waits (with a deadline) until `tenant` is a candidate with the given expiry flag.
    async fn wait_candidate(table: &LeaseTable, tenant: &str, expired: bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let candidates = table.candidates().await.unwrap();
            let want = Candidate {
                tenant: tenant.into(),
                expired,
            };
            if candidates.contains(&want) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{tenant} never became a candidate (expired: {expired}): {candidates:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn a_released_lease_is_free_at_once_and_its_taker_does_not_reconcile() {
        let Some(db) =
            testdb::fresh("a_released_lease_is_free_at_once_and_its_taker_does_not_reconcile")
                .await
        else {
            return;
        };
        let a = LeaseTable::new(db.pool.clone(), "a", LONG);
        let b = LeaseTable::new(db.pool.clone(), "b", LONG);
        let first = a.acquire(&t("acme")).await.unwrap();
        assert_eq!(
            first,
            [Acquired {
                tenant: "acme".into(),
                epoch: 1,
                from_expired: false
            }]
        );
        // Held for a minute: nobody else gets it.
        assert!(b.acquire(&t("acme")).await.unwrap().is_empty());
        assert!(b.candidates().await.unwrap().is_empty());
        // A release with a stale epoch does nothing; with the held one, frees it at once.
        assert!(a.release(&[("acme".into(), 7)]).await.unwrap().is_empty());
        assert!(b.release(&[("acme".into(), 1)]).await.unwrap().is_empty());
        assert_eq!(a.release(&[("acme".into(), 1)]).await.unwrap(), ["acme"]);
        assert_eq!(
            b.candidates().await.unwrap(),
            [Candidate {
                tenant: "acme".into(),
                expired: false
            }]
        );
        let taken = b.acquire(&t("acme")).await.unwrap();
        assert_eq!(
            taken,
            [Acquired {
                tenant: "acme".into(),
                epoch: 2,
                from_expired: false
            }]
        );
        db.drop().await;
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_with_a_higher_epoch_and_its_old_owner_learns_it_lost_it() {
        let Some(db) = testdb::fresh(
            "an_expired_lease_is_taken_with_a_higher_epoch_and_its_old_owner_learns_it_lost_it",
        )
        .await
        else {
            return;
        };
        let a_short = LeaseTable::new(db.pool.clone(), "a", SHORT);
        let a = LeaseTable::new(db.pool.clone(), "a", LONG);
        let b = LeaseTable::new(db.pool.clone(), "b", LONG);
        assert_eq!(a.acquire(&t("kept")).await.unwrap()[0].epoch, 1);
        assert_eq!(a_short.acquire(&t("lapsed")).await.unwrap()[0].epoch, 1);
        // Expiry is the database's: the short lease becomes a candidate by itself.
        wait_candidate(&b, "lapsed", true).await;
        let both = vec!["kept".to_string(), "lapsed".to_string()];
        let taken = b.acquire(&both).await.unwrap();
        assert_eq!(
            taken,
            [Acquired {
                tenant: "lapsed".into(),
                epoch: 2,
                from_expired: true
            }]
        );
        let renewed = a
            .renew(&[("kept".into(), 1), ("lapsed".into(), 1)])
            .await
            .unwrap();
        assert_eq!(renewed.renewed, ["kept"]);
        assert_eq!(renewed.lost, ["lapsed"]);
        // b's lease, renewed by b, stays b's; a stale release by a does nothing.
        assert!(a.release(&[("lapsed".into(), 1)]).await.unwrap().is_empty());
        let renewed = b.renew(&[("lapsed".into(), 2)]).await.unwrap();
        assert_eq!(renewed.renewed, ["lapsed"]);
        // An expired lease nobody took is lost too: renewing it is refused.
        assert_eq!(a_short.acquire(&t("idle")).await.unwrap()[0].epoch, 1);
        wait_candidate(&b, "idle", true).await;
        let renewed = a_short.renew(&[("idle".into(), 1)]).await.unwrap();
        assert_eq!(renewed.lost, ["idle"]);
        db.drop().await;
    }

    #[tokio::test]
    async fn of_five_concurrent_acquires_of_one_tenant_exactly_one_wins() {
        let Some(db) =
            testdb::fresh("of_five_concurrent_acquires_of_one_tenant_exactly_one_wins").await
        else {
            return;
        };
        for round in 0..20 {
            let tenant = format!("tenant{round}");
            let barrier = Arc::new(tokio::sync::Barrier::new(5));
            let tasks: Vec<_> = (0..5)
                .map(|node| {
                    let table = LeaseTable::new(db.pool.clone(), format!("n{node}"), LONG);
                    let barrier = barrier.clone();
                    let tenant = tenant.clone();
                    tokio::spawn(async move {
                        barrier.wait().await;
                        table.acquire(&[tenant]).await.unwrap()
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for task in tasks {
                winners.extend(task.await.unwrap());
            }
            assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
            assert_eq!(winners[0].epoch, 1);
        }
        db.drop().await;
    }

    #[tokio::test]
    async fn live_nodes_are_those_with_a_recent_heartbeat_that_are_not_draining() {
        let Some(db) =
            testdb::fresh("live_nodes_are_those_with_a_recent_heartbeat_that_are_not_draining")
                .await
        else {
            return;
        };
        let a = LeaseTable::new(db.pool.clone(), "a", SHORT);
        let b = LeaseTable::new(db.pool.clone(), "b", SHORT);
        let c = LeaseTable::new(db.pool.clone(), "c", SHORT);
        for node in [&a, &b, &c] {
            node.register("http://node").await.unwrap();
        }
        assert_eq!(a.live_nodes().await.unwrap(), 3);
        assert!(a.set_draining("b", true).await.unwrap());
        assert!(!a.set_draining("nobody", true).await.unwrap());
        assert!(
            b.heartbeat("http://node").await.unwrap(),
            "b sees it is draining"
        );
        assert!(!a.heartbeat("http://node").await.unwrap());
        assert_eq!(a.live_nodes().await.unwrap(), 2);
        c.deregister().await.unwrap();
        assert_eq!(a.live_nodes().await.unwrap(), 1);
        // Without heartbeats a node stops counting once a lease duration has passed.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while a.live_nodes().await.unwrap() != 0 {
            assert!(tokio::time::Instant::now() < deadline, "a still counted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Registering again clears draining.
        b.register("http://node").await.unwrap();
        assert_eq!(b.live_nodes().await.unwrap(), 1);
        db.drop().await;
    }
}
