//! The functional core of the CRM: validated values, input normalisation, the identity
//! graph's decisions, journey rules and merges, journey definitions, which messages a
//! journey change schedules or cancels, and whether a message may go now. Pure functions of
//! (state, input, now): no I/O, no clock, no randomness, no AWS. The shell (crm-store,
//! crm-app, crm-messaging) loads, calls and commits.

pub mod access;
pub mod attribution;
pub mod caps;
pub mod compliance;
pub mod contact;
pub mod definition;
pub mod identity;
pub mod input;
pub mod journey;
pub mod link;
pub mod message;
pub mod partners;
pub mod personal;
pub mod plan;
pub mod profile;
pub mod quiet;
pub mod records;
pub mod redtrack;
pub mod retention;
pub mod schedule;
pub mod send;
pub mod source;
pub mod stats;
pub mod template;
pub mod unsubscribe;
pub mod values;
