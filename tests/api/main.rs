//! Integration tests: the real service on port 0 against the Personio and Learn Amp
//! simulators. One binary (faster to link); run with `cargo nextest run` or `cargo test`.

mod child;
mod cluster_directory;
mod cluster_harness;
mod connect;
mod crash;
mod crash_storm;
mod export_import;
mod front_door_fuzz;
mod full_sync;
mod helpers;
mod hostile;
mod hostile_clients;
mod oidc;
mod oidc_refresh;
mod people;
mod personio_real;
mod postgres;
mod random_mutations;
mod secrets;
mod settings;
mod supervision;
mod teams;
mod unclean_stop;
mod web;
mod webhooks;
