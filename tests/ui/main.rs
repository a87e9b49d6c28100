//! Browser tests of the customer pages: the real service and both simulators on
//! loopback (through the test kit), driven by Node scripts (`tests/ui/js/*.mjs`, with
//! `playwright-core` and Debian's Chromium). Each script takes screenshots of every step
//! (`target/ui/<test>-<step>.png`, and `-360.png` at 360 px wide) and checks every page
//! with axe-core; the test then checks the service's state through the admin API.
//!
//! Needs `/usr/bin/chromium` (or `CHROMIUM`) and `npm ci --prefix tests/ui`. Without
//! them each test prints a SKIP line and passes, unless `CI` is set: then it fails.

mod app_pages;
mod connect;
mod harness;
mod layout;
