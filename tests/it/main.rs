//! The integration tests: one binary, one module per area.

mod aliyun_ecs; // the Alibaba ECS RPC codec: golden cases, SDK vectors, round trips, hostile input
mod sign_vectors; // every SDK-made known-answer vector: sign, verify, verify after a one-byte flip
mod support; // shared helpers: mappings, wire requests turned back into raw requests
