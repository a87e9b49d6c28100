//! Learn Amp API client (work in progress).
