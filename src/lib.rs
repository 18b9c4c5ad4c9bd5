//! crossgate: one gateway for the SSH key-pair APIs of Tencent Cloud (legacy API 2.0 and API 3.0, CVM
//! and Lighthouse) and Alibaba Cloud ECS.
//!
//! It accepts every dialect on one listener, verifies the caller's signature, translates the request
//! through the canonical [`model`], re-signs it with the upstream's credentials and answers in the
//! caller's own dialect. The protocol core ([`model`], [`sign`], [`dialect`], [`mapping`]) has no
//! network and no clock in it; neither has the state of the built-in cloud simulator ([`sim`]).

pub mod config;
pub mod dialect;
pub mod mapping;
pub mod model;
pub mod secret;
pub mod sign;
pub mod sim;
