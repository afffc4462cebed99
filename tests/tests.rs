//! Integration tests: the real binary, a fresh temp folder per test, grouped by feature.

mod engine;
mod util;

mod backup;
mod check;
mod cli;
mod compose;
mod compose_cli;
mod config;
mod contrib;
mod databases;
mod detect;
mod diff;
mod docker;
mod fidelity;
mod fuzz_regressions;
mod hostile;
mod hostile_restore;
mod hostile_tar;
mod interop;
mod json;
mod keys;
mod ownership;
mod profiles;
mod progress;
mod proptest_roundtrip;
mod prune;
mod restore;
mod s3;
mod sidecar;
mod signing;
mod unattended;
