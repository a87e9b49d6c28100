//! The real `personio-sync serve` binary as a child process, for the tests that kill it
//! (SIGKILL, SIGTERM) and start it again on the same port and data directory: the test
//! kit's [`ServiceProcess`], shared with the cluster harness.

pub use personio_sync_testkit::process::ServiceProcess;
