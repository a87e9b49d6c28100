//! Personio simulator (work in progress).
