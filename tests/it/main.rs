//! crossgate's integration tests: one binary, one module per area.

mod sign_vectors; // every SDK-made known-answer vector: sign stage by stage, verify, verify after one-byte flips
mod support; // shared helpers: mappings, wire requests turned back into raw requests
mod tencent_v2; // the Tencent legacy endpoint codec: golden seeds, SDK vectors, round trips, hostile input
mod tencent_v3; // the Tencent API 3.0 codec (CVM and Lighthouse): golden seed, SDK vectors, round trips, hostile input
