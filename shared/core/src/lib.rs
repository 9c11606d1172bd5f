//! The functional core of the CRM: validated values, input normalisation, the identity
//! graph's decisions, journey rules and merges. Pure functions of (state, input, now): no
//! I/O, no clock, no randomness, no AWS. The shell in `crm-platform` loads, calls, commits.

pub mod identity;
pub mod input;
pub mod journey;
pub mod plan;
pub mod profile;
pub mod records;
pub mod values;
