//! Learn Amp simulator (work in progress).
