//! Faithful simulators of the Personio and Learn Amp APIs (axum fake servers).

pub mod common;
pub mod generator;
pub mod learnamp;
pub mod person;
pub mod personio;
mod secret;
