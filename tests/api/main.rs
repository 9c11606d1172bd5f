//! End-to-end tests: every endpoint through the same routers Lambda and `make dev` use,
//! against the local AWS emulator.

mod admin;
mod admin_messaging;
mod attribution;
mod binaries;
mod click;
mod compliance;
mod console;
mod console_pages;
mod daily_report;
mod emulator;
mod errors;
mod exports;
mod identity;
mod import;
mod lambda_events;
mod lead;
mod links;
mod messaging;
mod observability;
mod postback;
mod probe;
mod seed;
mod sources;
mod store;
mod stream;
mod tag;
mod users;
