//! A users API on SQLite, built to be watched from Prometheus and Grafana.
//!
//! The binary `api` is a thin shell over this library; tests build the same
//! server on a free port. The modules, from the outside in:
//!
//! - [`config`]: flags and environment variables, parsed and checked;
//! - [`telemetry`]: log format and filtering;
//! - [`startup`]: building the server, and the shutdown sequence;
//! - [`serve`]: accepting connections, with limits on what each may hold;
//! - [`http`]: middleware every request passes through (request id, span,
//!   panic recovery, timeout, body limit);
//! - [`routes`]: the routes and their handlers;
//! - [`extract`]: request extractors whose rejections are API errors;
//! - [`error`]: the API's error type and its problem+json body;
//! - [`users`]: the users record and its validated values;
//! - [`storage`]: the store interface and its SQLite implementation;
//! - [`state`]: what handlers share;
//! - [`faults`]: optional fault injection and its admin endpoint;
//! - [`build_info`]: what this binary was built from;
//! - [`healthcheck`]: the client behind `api healthcheck`.

pub mod build_info;
pub mod config;
pub mod error;
pub mod extract;
pub mod faults;
pub mod healthcheck;
pub mod http;
pub mod routes;
pub mod serve;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod users;
