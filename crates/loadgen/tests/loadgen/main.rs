//! Black-box tests of `loadgen` against the real users API, started in
//! process on a free port with its own SQLite file.
//!
//! - `helpers`: the service under load and a reader for its metrics;
//! - `runs`: the library's runs, checked against the service's counters;
//! - `binary`: the built binary's exit codes and output.

mod binary;
mod helpers;
mod runs;
