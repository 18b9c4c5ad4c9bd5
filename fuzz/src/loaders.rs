//! The text loaders: [`Config::parse`], [`Mappings::from_sources`] and the simulator's [`seed::parse`].

use crossgate::config::Config;
use crossgate::dialect::{Dialect, Style};
use crossgate::mapping::{EMBEDDED, Mappings, embedded_source};
use crossgate::model::{Action, Code, Fault, Provider, Source};
use crossgate::sim::seed;

use super::maps;

/// What every `${VAR}` resolves to in [`config`].
const ENV_SECRET: &str = "fuzz-env-secret-value-7f3a9c";

/// The config loader on any text: a checked config or an error naming a line of the text, and no secret
/// read from the environment shows in either's output.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let env = |_: &str| Some(ENV_SECRET.to_owned());
    match Config::parse("fuzz.toml", &text, &env) {
        Ok(config) => {
            // A secret_id is not a secret: `secret_id = "${VAR}"` may show it.
            let mut ids =
                config.callers.iter().map(|c| &c.secret_id).chain(config.upstreams.values().map(|u| &u.secret_id));
            let shown_as_id = ids.any(|id| id.contains(ENV_SECRET));
            assert!(shown_as_id || !format!("{config:?}").contains(ENV_SECRET), "a secret in Debug");
        }
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.lines().count() + 1, "line {} of {}", e.line, text.lines().count());
            assert!(!e.problem.is_empty());
            assert!(!e.to_string().contains(ENV_SECRET), "a secret in an error: {e}");
        }
    }
}

/// The simulator's seed loader (`crossgate sim --seed FILE`) on any text: a state or an error naming the
/// file.
pub fn sim_seed(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = seed::parse("fuzz.toml", &text, maps()) {
        assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
    }
}

const ACTIONS: [Action; 4] =
    [Action::AssociateKeys, Action::DisassociateKeys, Action::DescribeKeys, Action::DescribeInstances];

/// The mapping loader on any text in place of one table (the first byte picks which; the others are the
/// embedded ones): loaded tables or an error naming a line. Tables that load answer every look-up the
/// request path makes, for every dialect, action, code and source.
pub fn mappings(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let fuzzed = EMBEDDED[usize::from(pick) % EMBEDDED.len()].0;
    let text = String::from_utf8_lossy(rest);
    let loaded = Mappings::from_sources(|name| {
        let source = if name == fuzzed { text.to_string() } else { embedded_mapping(name).to_owned() };
        Ok((name.to_owned(), source))
    });
    let maps = match loaded {
        Ok(maps) => maps,
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.lines().count() + 1, "line {} of {}", e.line, text.lines().count());
            return;
        }
    };
    for dialect in Dialect::ALL {
        let _ = (maps.version(dialect), maps.service(dialect), maps.limits(dialect), maps.actions(dialect));
        for action in ACTIONS {
            let wire = maps.wire_action(dialect, action).to_owned();
            let _ = maps.action(dialect, &wire);
            let _ = maps.action_entry(dialect, action, Style::New);
            let _ = maps.action_entry(dialect, action, Style::Old);
        }
        for &code in Code::ALL.iter() {
            for source in [Source::Caller, Source::Upstream, Source::Gateway] {
                let rendered = maps.render(dialect, &Fault::new(code, source, "a message").with_detail("a detail"));
                let _ = maps.classify(dialect, &rendered.code);
            }
        }
    }
    for provider in [Provider::TencentCvm, Provider::TencentLighthouse, Provider::AliyunEcs] {
        let _ = maps.upstream_fault(provider, "InvalidParameter", "message", "request-id");
    }
}

/// The embedded text of a mapping table, by the name the loader asks for (`errors/aliyun_ecs.toml`).
pub fn embedded_mapping(name: &str) -> &'static str {
    embedded_source(name)
}
