//! The integration tests: one binary, one module per area.

mod admin; // the admin listener: metrics moved by real requests, the audit API and its filters, the token
mod admin_page; // the audit page in a real headless Chromium: token, list, filter by caller, open an entry, chain state
mod aliyun_ecs; // the Alibaba ECS RPC codec: golden cases, SDK vectors, round trips, hostile input
mod audit; // end to end: one complete audit line per request, served or refused, and no secret in any
mod auth; // end to end: bad signature, unknown id, expired time, reused nonce in every caller dialect
mod batches; // end to end: batches split to an upstream's limit, fan-out to every upstream, partial failure
mod bench_options; // the performance kit's scripts: usage, and bad options refused before anything runs
mod cli; // the `crossgate` command as users run it: serve, a bad config, coverage
mod detection; // end to end: dialects weighed from their evidence, answer formats, ids checked after routing
mod door; // the audited door under faults: clients that leave, a full disk, restarts, replays, permissions, overload
mod failures; // end to end: upstreams that refuse connections or never answer, and concurrent legs
mod fake_cvm; // a CVM-speaking upstream on a real socket that counts and keeps what it receives
mod fault_proxy; // a proxy that forwards to the simulator but refuses chosen actions, for failures mid-sequence
mod fuzz_regressions; // every input a fuzz target once failed on, replayed through that target's checks
mod gateway; // end to end: every caller dialect x every upstream, through the gateway and the simulator
mod harness; // an in-process gateway and simulator, and signed clients per dialect
mod interop; // the clouds' own Python SDKs against a running gateway (ignored; run by tests/run.sh)
mod load; // crossgate-load, the performance kit's load generator, for one second against an in-process gateway
mod opening; // how callers open connections: HTTP/2 with prior knowledge, a first byte alone, silence
mod policies; // state policies end to end: CVM force-stop, ECS reboot, Lighthouse wait, failures mid-sequence
mod postgres; // the PostgreSQL audit store against real throwaway servers: replicas, tampering, filters, outages
mod redis; // replay keys shared on a real Redis: a replay refused by other replicas, Redis down and back, local fallback
mod refusals; // end to end: refusals in the caller's dialect before anything is forwarded; plain 400s
mod replication; // key replication end to end: both directions, a taken name, import then failed bind, restart, check and sync
mod secrets; // no configured secret in Debug output, answers, trace logs, audit lines or config errors
mod shadow; // shadow mode: look-ups compared with the shadow, binds only recorded, and the report
mod shapes; // end to end: legacy old-style BindInstanceKey / UnBindInstanceKey and ECS Format=XML
mod sign_vectors; // every SDK-made known-answer vector: sign, verify, verify after a one-byte flip
mod state_rules; // end to end: upstream state rules (RUNNING, Windows, busy) in each caller's own code
mod steps; // the steps crossgate takes itself (import, start, stop, reboot) against the simulator over HTTP
mod support; // shared helpers: mappings, wire requests turned back into raw requests
mod tencent_v2; // the Tencent legacy endpoint codec: golden seeds, SDK vectors, round trips, hostile input
mod tencent_v3; // the Tencent API 3.0 codec (CVM and Lighthouse): golden seed, SDK vectors, round trips, hostile input
mod tls; // real TLS: callers over HTTPS to crossgate, crossgate over HTTPS to an upstream with a CA file
mod trail; // the audit trail: SQLite behind the gateway, kill -9, a full disk, and `crossgate audit` verify, query, tail
mod upstream_faults; // upstream faults injected for real: retries, breaker, quotas, garbage replies, look-up paging
