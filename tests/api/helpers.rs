//! The shared test kit (`crates/testkit`: `spawn_app`, the admin client, the checks of
//! Learn Amp against Personio), and the macro that runs a test in both Learn Amp modes.

pub use personio_sync_testkit::*;

/// Declares `async fn name(mode: LaMode) { … }` as two tests, `name::default_mode`
/// and `name::strict_mode`, each running the body against a Learn Amp simulator in
/// that mode (the body builds its app with [`spawn_app_in`] and `mode`).
#[macro_export]
macro_rules! in_both_modes {
    ($(#[$meta:meta])* async fn $name:ident($mode:ident: LaMode) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($mode: $crate::helpers::LaMode) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn default_mode() {
                run($crate::helpers::LaMode::Default).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn strict_mode() {
                run($crate::helpers::LaMode::Strict).await
            }
        }
    };
}
