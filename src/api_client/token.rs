//! The bearer-token cache of one client: read without waiting, renewed before expiry,
//! at most one refresh in flight, and a refused token dropped only if still current.

use std::future::Future;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use crate::domain::Secret;

/// Tokens are renewed this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// A token as the token endpoint gave it.
pub(crate) struct FreshToken {
    /// The bearer token.
    pub(crate) value: Secret,
    /// `expires_in` in seconds, when given.
    pub(crate) expires_in: Option<u64>,
}

/// A bearer token and when to renew it.
struct CachedToken {
    value: Secret,
    renew_at: Instant,
}

/// The token cache of one client (shared by its clones).
pub(crate) struct TokenCache {
    /// The current token, read without waiting.
    current: StdMutex<Option<CachedToken>>,
    /// Held while a token is fetched, so that only one refresh is in flight.
    refresh: tokio::sync::Mutex<()>,
    /// Lifetime assumed when the token answer gives no `expires_in`.
    default_lifetime: Duration,
}

impl TokenCache {
    /// An empty cache; tokens without `expires_in` live `default_lifetime`.
    pub(crate) fn new(default_lifetime: Duration) -> Self {
        Self {
            current: StdMutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            default_lifetime,
        }
    }

    /// A valid token: the cached one, or one from `fetch`. Concurrent callers wait for
    /// the single refresh in flight instead of starting their own.
    pub(crate) async fn get<E, Fut>(&self, fetch: impl FnOnce() -> Fut) -> Result<Secret, E>
    where
        Fut: Future<Output = Result<FreshToken, E>>,
    {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let _refreshing = self.refresh.lock().await;
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let fresh = fetch().await?;
        let lifetime = fresh
            .expires_in
            .map_or(self.default_lifetime, Duration::from_secs);
        *crate::locks::lock(&self.current) = Some(CachedToken {
            value: fresh.value.clone(),
            renew_at: Instant::now() + renewal_delay(lifetime),
        });
        Ok(fresh.value)
    }

    /// The cached token if it is not due for renewal.
    fn cached(&self) -> Option<Secret> {
        crate::locks::lock(&self.current)
            .as_ref()
            .filter(|token| Instant::now() < token.renew_at)
            .map(|token| token.value.clone())
    }

    /// Drops the cached token if it is still `used` (another task may have renewed it).
    pub(crate) fn invalidate(&self, used: &Secret) {
        let mut guard = crate::locks::lock(&self.current);
        if guard.as_ref().is_some_and(|token| &token.value == used) {
            *guard = None;
        }
    }
}

/// When to renew a token of the given lifetime: 60 s early, or at half-life for
/// lifetimes too short for that margin.
pub(crate) fn renewal_delay(lifetime: Duration) -> Duration {
    if lifetime > TOKEN_MARGIN * 2 {
        lifetime - TOKEN_MARGIN
    } else {
        lifetime / 2
    }
}
