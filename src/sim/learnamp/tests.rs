//! End-to-end tests of the Learn Amp simulator over HTTP.
