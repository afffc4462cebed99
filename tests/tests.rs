//! Integration tests: the real binary, a fresh temp folder per test, grouped by feature.

mod util;

mod backup;
mod cli;
mod contrib;
mod hostile;
mod interop;
mod keys;
mod ownership;
mod proptest_roundtrip;
mod prune;
mod restore;
