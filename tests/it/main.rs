//! The integration tests: one binary, one module per area.

mod support; // shared helpers: mappings, wire requests turned back into raw requests
