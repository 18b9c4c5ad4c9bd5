//! crossgate's integration tests: one binary, one module per area.

mod sign_vectors; // every SDK-made known-answer vector: sign stage by stage, verify, verify after one-byte flips
mod support; // shared helpers: mappings, wire requests turned back into raw requests
