//! Pure rules: the employee model, the tenant spec and settings, and the mapping from a
//! Personio employee to the Learn Amp fields it should produce. No I/O here.

pub mod employee;
pub mod fields;
pub mod mapping;
pub mod redact;
pub mod report;
pub mod schedule;
pub mod secret;
pub mod tenant;

pub use employee::{Employee, EmployeeStatus, OrgRef};
pub use secret::Secret;
