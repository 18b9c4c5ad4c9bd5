//! The built-in cloud simulator: Tencent Cloud CVM, Tencent Cloud Lighthouse and Alibaba Cloud ECS as
//! far as SSH key pairs go, answering by the documented rules.
//!
//! It is crossgate's default upstream and what users' CI runs against, so it follows
//! `shared/reference/protocols.md` (sections 3.2, 3.3, 4.3, 4.4, 4.6, 5.3, 5.4 and 6) rather than being
//! a lenient mock: all-or-nothing batches and `ForceStop` for CVM, asynchronous operations and rate
//! limits for Lighthouse, per-instance results and reboot-to-apply for ECS.
//!
//! - [`state`] holds the clouds (instances, key pairs, bindings) and applies canonical
//!   [`Operation`](crate::model::Operation)s to them. It is pure: no network, and the clock is an argument.
//! - [`seed`] loads a cloud from a TOML seed file, and builds the demo cloud.
//! - [`mod@service`] serves it over HTTP, through the same request path as the gateway.
//!
//! Faults are what the cloud says ([`Source::Upstream`](crate::model::Source::Upstream)) in canonical
//! [`Code`](crate::model::Code)s; whoever answers over HTTP renders them in the provider's dialect through
//! the mappings, as for a real upstream.

pub mod seed;
pub mod service;
pub mod state;

pub use service::{SIM_CREDENTIAL_ID, SIM_CREDENTIAL_SECRET, SimHandle, run_standalone, service};
