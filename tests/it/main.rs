//! The integration tests: one binary, one module per area.

mod aliyun_ecs;
mod support; // shared helpers: mappings, wire requests turned back into raw requests // the Alibaba ECS RPC codec: golden cases, SDK vectors, round trips, hostile input
