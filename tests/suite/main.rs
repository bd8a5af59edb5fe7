//! The integration suite, one test binary (as cargo's own `tests/testsuite`): the real binary
//! driven end to end against a local fake Lightsail endpoint, real clients and servers where
//! Debian has them, and the library's pure parts under property tests.
//!
//! Tests whose name ends in `_as_root` need root (namespaces, mounts, other users' files):
//! for anyone else they are ignored, with that reason shown; `./run-tests` as root runs them all.

// Tests report what they measured, and set up environments for the binary they run.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

mod support;

mod cache;
mod commands;
mod concurrency;
mod doctor;
mod edges;
mod failures;
mod fake_selftest;
mod hostile_env;
mod man_page;
mod network;
mod profiles;
mod properties;
mod protocol;
mod push;
mod real_clients;
mod reliability;
mod tls;
