//! Personio API client (work in progress).
