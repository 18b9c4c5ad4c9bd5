//! The integration tests: one binary, one module per area.

mod aliyun_ecs; // the Alibaba ECS RPC codec: golden cases, SDK vectors, round trips, hostile input
mod gateway; // end to end: every caller dialect x every upstream, through the gateway and the simulator
mod harness; // an in-process gateway and simulator, and signed clients per dialect
mod interop; // the clouds' own Python SDKs against a running gateway (ignored; run by tests/run.sh)
mod sign_vectors; // every SDK-made known-answer vector: sign, verify, verify after a one-byte flip
mod support; // shared helpers: mappings, wire requests turned back into raw requests
mod tencent_v2; // the Tencent legacy endpoint codec: golden seeds, SDK vectors, round trips, hostile input
mod tencent_v3; // the Tencent API 3.0 codec (CVM and Lighthouse): golden seed, SDK vectors, round trips, hostile input
mod tls; // real TLS: callers over HTTPS to crossgate, crossgate over HTTPS to an upstream with a CA file
