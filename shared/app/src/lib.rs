//! The use cases and what every function shares at cold start, HTTP or not: typed
//! configuration, telemetry, the ingest use case and the recipients' own compliance choices
//! (unsubscribe, STOP/START). No HTTP and no providers here: event functions link this
//! without axum, ingest functions without SES or SNS.

pub mod access;
pub mod attribution;
pub mod batch;
pub mod compliance;
pub mod config;
pub mod customers;
pub mod daily_report;
pub mod exports;
pub mod ingest;
pub mod metrics;
pub mod partners;
pub mod reports;
pub mod secrets;
pub mod sources;
pub mod telemetry;
