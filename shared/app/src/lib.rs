//! The use cases and what every function shares at cold start, HTTP or not: typed
//! configuration, telemetry, and the ingest use case (next: messaging, with the ports its
//! providers implement). No HTTP here: event functions link this without axum.

pub mod config;
pub mod ingest;
pub mod telemetry;
