//! crossgate: one gateway for the SSH key-pair APIs of Tencent Cloud (legacy API 2.0 and API 3.0, CVM
//! and Lighthouse) and Alibaba Cloud ECS.
//!
//! It accepts every dialect on one listener, verifies the caller's signature, translates the request
//! through the canonical [`model`], re-signs it with the upstream's credentials and answers in the
//! caller's own dialect. The protocol core ([`model`], [`sign`], [`dialect`], [`mapping`]) has no
//! network and no clock in it; [`app`] assembles the running gateway from a [`config::Config`].

pub mod admin;
pub mod app;
pub mod audit;
pub mod certs;
pub mod clock;
pub mod config;
pub mod coverage;
pub mod demo;
pub mod dialect;
pub mod gateway;
pub mod health;
pub mod keybook;
pub mod layer;
pub mod mapping;
pub mod metrics;
pub mod model;
pub mod per_thread;
pub mod policy;
pub mod provider;
pub mod redis_state;
pub mod replay;
pub mod replicate;
pub mod route;
pub mod secret;
pub mod server;
pub mod shadow;
pub mod shares;
pub mod sign;
pub mod sim;
pub mod sshkey;
pub mod tomlfile;
pub mod translate;
