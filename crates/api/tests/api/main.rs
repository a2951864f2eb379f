//! Black-box tests of the `api` service: a real server on a real socket,
//! each test with its own SQLite file.

mod cli;
mod errors;
mod faults;
mod helpers;
mod lifecycle;
mod limits;
mod malformed;
mod metrics;
mod resilience;
mod service;
#[path = "../support/tools.rs"]
mod tools;
mod users;
