//! Seed files: the instances and key pairs a simulated cloud starts with, in TOML.
//!
//! One optional setting, then one table per provider (named as in config files: `tencent-cvm`,
//! `tencent-lighthouse`, `aliyun-ecs`), each with `[[<provider>.keys]]` and `[[<provider>.instances]]`
//! entries. Every field is checked: an unknown field, a malformed id, a state the provider does not
//! have, a duplicate, a bound key pair that is not defined (keys are read before instances, so their
//! order in the file does not matter) or a Windows instance with keys is an error that names the file
//! and the line.
//!
//! ```toml
//! # How long a Lighthouse bind or unbind stays OPERATING, in milliseconds (default 500).
//! operation_delay_ms = 500
//!
//! [[tencent-cvm.keys]]
//! id = "skey-4e5ty7i8"          # Tencent: an id in the provider's format...
//! name = "finance_joshua"       # ...and a display name
//!
//! [[tencent-cvm.instances]]
//! id = "ins-1e4r6y8i"
//! name = "finance-web-1"        # optional; defaults to the id
//! os = "linux"                  # "linux" or "windows"
//! os_name = "TencentOS Server"  # optional; a generic name for the family by default
//! state = "STOPPED"             # in the provider's words: STOPPED, RUNNING, ... / Running, Stopped, ...
//! keys = ["skey-4e5ty7i8"]      # optional: bound key pairs (ECS: one name at most)
//!
//! [[aliyun-ecs.keys]]
//! name = "FinanceJoshuaV25"     # ECS: the name is the identity
//! ```
//!
//! [`demo`] is the built-in set (`src/sim/demo.toml`, also in [`DEMO`]): the documentation's example ids
//! (`ins-1e4r6y8i`, `skey-4e5ty7i8`, `lhins-ruy9d2tw`, `lhkp-f7rjie1q`, `i-m5eg7be9ndloji64jknv`,
//! `FinanceJoshuaV25`, ...) plus a running, a Windows and an odd-state instance per cloud, so that every
//! rule can be exercised.
//!
//! ```
//! use crossgate::model::Provider;
//! use crossgate::sim::seed;
//!
//! let cloud = seed::demo();
//! assert_eq!(cloud.instance(Provider::TencentCvm, "ins-1e4r6y8i").unwrap().state, "STOPPED");
//! ```

use crate::tomlfile;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::mapping::{MappingError, Mappings};
use crate::model::{OsFamily, Provider};
use crate::sim::state::{CloudState, Instance, KeyPair, ResourceError};

/// The built-in demo seed.
pub const DEMO: &str = include_str!("demo.toml");

/// A seed that could not be loaded: the file, the line and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file could not be read.
    #[error("{file}: cannot read the seed file: {source}; check the path and its permissions")]
    Read {
        /// The path as given.
        file: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file was read but is not a valid seed.
    #[error("{file}:{line}: {problem}")]
    Invalid {
        /// The path as given.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The mapping tables the clouds take their limits from did not load.
    #[error(transparent)]
    Mappings(#[from] MappingError),
}

impl SeedError {
    /// The line the problem is on, when it is in the seed itself.
    pub fn line(&self) -> Option<usize> {
        match self {
            SeedError::Invalid { line, .. } => Some(*line),
            SeedError::Read { .. } | SeedError::Mappings(_) => None,
        }
    }
}

// === raw, as written in the file ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    operation_delay_ms: Option<u64>,
    #[serde(rename = "tencent-cvm", default)]
    tencent_cvm: RawTencentCloud,
    #[serde(rename = "tencent-lighthouse", default)]
    tencent_lighthouse: RawTencentCloud,
    #[serde(rename = "aliyun-ecs", default)]
    aliyun_ecs: RawEcsCloud,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTencentCloud {
    #[serde(default)]
    keys: Vec<Spanned<RawTencentKey>>,
    #[serde(default)]
    instances: Vec<Spanned<RawInstance>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEcsCloud {
    #[serde(default)]
    keys: Vec<Spanned<RawEcsKey>>,
    #[serde(default)]
    instances: Vec<Spanned<RawInstance>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTencentKey {
    id: String,
    name: String,
    public_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEcsKey {
    name: String,
    public_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    id: String,
    name: Option<String>,
    os: RawOs,
    os_name: Option<String>,
    state: String,
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawOs {
    Linux,
    Windows,
}

// === loading ===

/// Loads a seed file, with the limits of the embedded mapping tables.
pub fn load(path: impl AsRef<Path>) -> Result<CloudState, SeedError> {
    load_with(path, &Mappings::embedded()?)
}

/// Loads a seed file, with the limits of the given mapping tables.
pub fn load_with(path: impl AsRef<Path>, maps: &Mappings) -> Result<CloudState, SeedError> {
    let file = path.as_ref().display().to_string();
    let text =
        std::fs::read_to_string(path.as_ref()).map_err(|source| SeedError::Read { file: file.clone(), source })?;
    parse(&file, &text, maps)
}

/// Parses a seed's text; `file` names it in errors.
pub fn parse(file: &str, text: &str, maps: &Mappings) -> Result<CloudState, SeedError> {
    let raw: RawSeed = tomlfile::parse(text).map_err(|(offset, message)| invalid(file, text, offset, &message))?;
    let RawSeed { operation_delay_ms, tencent_cvm, tencent_lighthouse, aliyun_ecs } = raw;
    let mut state = CloudState::new(maps);
    if let Some(delay) = operation_delay_ms {
        state.set_operation_delay_ms(delay);
    }
    let mut at = Placed { file, text, state: &mut state };
    for (provider, cloud) in [(Provider::TencentCvm, tencent_cvm), (Provider::TencentLighthouse, tencent_lighthouse)] {
        let RawTencentCloud { keys, instances } = cloud;
        for key in keys {
            let offset = key.span().start;
            let RawTencentKey { id, name, public_key } = key.into_inner();
            at.add_key(provider, offset, KeyPair { public_key, ..KeyPair::tencent(id, name) })?;
        }
        at.add_instances(provider, instances)?;
    }
    let RawEcsCloud { keys, instances } = aliyun_ecs;
    for key in keys {
        let offset = key.span().start;
        let RawEcsKey { name, public_key } = key.into_inner();
        at.add_key(Provider::AliyunEcs, offset, KeyPair { public_key, ..KeyPair::ecs(name) })?;
    }
    at.add_instances(Provider::AliyunEcs, instances)?;
    Ok(state)
}

/// The built-in demo clouds ([`DEMO`]), with the limits of the embedded mapping tables.
///
/// # Panics
///
/// Only if the embedded mapping tables or the embedded demo seed are broken, which their tests rule out.
pub fn demo() -> CloudState {
    let maps = Mappings::embedded().expect("the embedded mapping tables load");
    demo_with(&maps)
}

/// The built-in demo clouds ([`DEMO`]), with the limits of the given mapping tables.
///
/// # Panics
///
/// If the demo's ids do not fit the id formats of `maps`.
pub fn demo_with(maps: &Mappings) -> CloudState {
    match parse("src/sim/demo.toml", DEMO, maps) {
        Ok(state) => state,
        Err(e) => panic!("the built-in demo seed does not load: {e}"),
    }
}

/// Adds resources to a state, turning refusals into errors at the right line.
struct Placed<'a> {
    file: &'a str,
    text: &'a str,
    state: &'a mut CloudState,
}

impl Placed<'_> {
    fn add_key(&mut self, provider: Provider, offset: usize, key: KeyPair) -> Result<(), SeedError> {
        self.state.add_key_pair(provider, key).map_err(|e| self.refused(provider, offset, &e))
    }

    fn add_instances(&mut self, provider: Provider, instances: Vec<Spanned<RawInstance>>) -> Result<(), SeedError> {
        for spanned in instances {
            let offset = spanned.span().start;
            let RawInstance { id, name, os, os_name, state, keys } = spanned.into_inner();
            let (os, default_os_name) = match os {
                RawOs::Linux => (OsFamily::Linux, "Linux 64bit"),
                RawOs::Windows => (OsFamily::Windows, "Windows Server 2022 Datacenter 64bit"),
            };
            let name = name.unwrap_or_else(|| id.clone());
            let os_name = os_name.unwrap_or_else(|| default_os_name.to_owned());
            let instance = Instance::new(id, name, os, os_name, state).with_keys(keys);
            self.state.add_instance(provider, instance).map_err(|e| self.refused(provider, offset, &e))?;
        }
        Ok(())
    }

    fn refused(&self, provider: Provider, offset: usize, e: &ResourceError) -> SeedError {
        invalid(self.file, self.text, offset, &format!("[{provider}] {e}"))
    }
}

fn invalid(file: &str, text: &str, offset: usize, problem: &str) -> SeedError {
    SeedError::Invalid { file: file.to_owned(), line: tomlfile::line_of(text, offset), problem: problem.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps() -> Mappings {
        Mappings::embedded().unwrap()
    }

    /// Parses `text` and returns the error's line and problem.
    fn error_of(text: &str) -> (usize, String) {
        match parse("test.toml", text, &maps()) {
            Ok(_) => panic!("the seed loaded:\n{text}"),
            Err(SeedError::Invalid { file, line, problem }) => {
                assert_eq!(file, "test.toml");
                (line, problem)
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }

    /// The 1-based line of the first line of `text` containing `needle`.
    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn the_demo_has_what_the_documentation_examples_need() {
        let cloud = demo();
        let cvm = |id: &str| cloud.instance(Provider::TencentCvm, id).unwrap();
        for id in ["ins-1e4r6y8i", "ins-3e56fg78"] {
            assert_eq!((cvm(id).os, cvm(id).state.as_str()), (OsFamily::Linux, "STOPPED"), "{id}");
        }
        let cvms = cloud.instances(Provider::TencentCvm);
        assert!(cvms.iter().any(|i| i.os == OsFamily::Linux && i.state == "RUNNING"));
        assert!(cvms.iter().any(|i| i.os == OsFamily::Windows));
        let cvm_keys = cloud.key_pairs(Provider::TencentCvm);
        assert!(cvm_keys.iter().any(|k| (k.id.as_str(), k.name.as_str()) == ("skey-4e5ty7i8", "finance_joshua")));
        assert!(cvm_keys.len() >= 2);

        let lh = cloud.instances(Provider::TencentLighthouse);
        let blog = cloud.instance(Provider::TencentLighthouse, "lhins-ruy9d2tw").unwrap();
        assert_eq!((blog.os, blog.state.as_str()), (OsFamily::Linux, "RUNNING"));
        assert!(lh.iter().any(|i| i.os == OsFamily::Linux && i.state == "STOPPED"));
        assert!(lh.iter().any(|i| i.os == OsFamily::Windows));
        assert!(cloud.key_pairs(Provider::TencentLighthouse).iter().any(|k| k.id == "lhkp-f7rjie1q"));

        for id in ["i-m5eg7be9ndloji64jknv", "i-m5e25x2mwr0hk33dwv0h"] {
            let vm = cloud.instance(Provider::AliyunEcs, id).unwrap();
            assert_eq!((vm.os, vm.state.as_str()), (OsFamily::Linux, "Running"), "{id}");
        }
        assert!(cloud.instances(Provider::AliyunEcs).iter().any(|i| i.os == OsFamily::Windows));
        let ecs_keys = cloud.key_pairs(Provider::AliyunEcs);
        assert!(ecs_keys.iter().any(|k| k.id == "FinanceJoshuaV25" && k.name == "FinanceJoshuaV25"));
        assert!(ecs_keys.len() >= 2);
        assert_eq!(cloud.operation_delay_ms(), 500);
    }

    #[test]
    fn provider_tables_are_named_as_in_config_files() {
        for (provider, key) in [
            (Provider::TencentCvm, "id = \"skey-4e5ty7i8\"\nname = \"k\""),
            (Provider::TencentLighthouse, "id = \"lhkp-f7rjie1q\"\nname = \"k\""),
            (Provider::AliyunEcs, "name = \"FinanceJoshuaV25\""),
        ] {
            let text = format!("[[{}.keys]]\n{key}\n", provider.name());
            let cloud = parse("t.toml", &text, &maps()).unwrap();
            assert_eq!(cloud.key_pairs(provider).len(), 1, "{provider}");
        }
    }

    #[test]
    fn defaults_fill_name_os_name_keys_and_delay() {
        let text = "[[aliyun-ecs.instances]]\nid = \"i-abc\"\nos = \"windows\"\nstate = \"Stopped\"\n";
        let cloud = parse("t.toml", text, &maps()).unwrap();
        let vm = cloud.instance(Provider::AliyunEcs, "i-abc").unwrap();
        assert_eq!(vm.name, "i-abc");
        assert!(vm.os_name.starts_with("Windows"), "{}", vm.os_name);
        assert!(vm.keys.is_empty());
        assert_eq!(cloud.operation_delay_ms(), crate::sim::state::DEFAULT_OPERATION_DELAY_MS);
        let cloud = parse("t.toml", "operation_delay_ms = 5\n", &maps()).unwrap();
        assert_eq!(cloud.operation_delay_ms(), 5);
        assert!(cloud.instances(Provider::TencentCvm).is_empty());
    }

    #[test]
    fn bound_keys_are_in_effect_from_the_start() {
        let cloud = demo();
        assert_eq!(cloud.effective_key(Provider::AliyunEcs, "i-bp1gtjxuuvwj17zrab12"), Some("testKeyPairName"));
        assert!(!cloud.instance(Provider::AliyunEcs, "i-bp1gtjxuuvwj17zrab12").unwrap().pending_reboot);
    }

    #[test]
    fn an_unknown_field_names_its_line() {
        let text =
            DEMO.replacen("os_name = \"Debian 12 64bit\"", "os_name = \"Debian 12 64bit\"\ncolour = \"blue\"", 1);
        let (line, problem) = error_of(&text);
        assert_eq!(line, line_of(&text, "colour"), "{problem}");
        assert!(problem.contains("colour"), "{problem}");
    }

    #[test]
    fn an_unknown_provider_names_its_line() {
        let text = "operation_delay_ms = 1\n\n[[tencent-cmv.keys]]\nid = \"skey-4e5ty7i8\"\nname = \"k\"\n";
        let (line, problem) = error_of(text);
        assert_eq!(line, 3, "{problem}");
        assert!(problem.contains("tencent-cmv") && problem.contains("tencent-cvm"), "{problem}");
    }

    #[test]
    fn a_bad_value_names_its_line() {
        let text = DEMO.replacen("os = \"windows\"", "os = \"beos\"", 1);
        let (line, problem) = error_of(&text);
        assert_eq!(line, line_of(&text, "beos"), "{problem}");
        let text = "\n\noperation_delay_ms = \"soon\"\n";
        assert_eq!(error_of(text).0, 3);
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let text = "[[tencent-cvm.keys]]\nid = \"skey-4e5ty7i8\"\nname = \n";
        assert_eq!(error_of(text).0, 3);
    }

    #[test]
    fn a_missing_field_names_the_entry() {
        let text = "[[tencent-cvm.keys]]\nid = \"skey-4e5ty7i8\"\nname = \"a\"\n\n[[tencent-cvm.keys]]\nid = \"skey-11112222\"\n";
        let (line, problem) = error_of(text);
        assert!(problem.contains("name"), "{problem}");
        assert!((5..=6).contains(&line), "line {line}: {problem}");
    }

    /// Rule violations found after parsing point at the entry they are in.
    fn assert_entry_error(text: &str, entry_marker: &str, expected: &str) {
        let (line, problem) = error_of(text);
        let entry = line_of(text, entry_marker);
        let header =
            text.lines().take(entry).collect::<Vec<_>>().iter().rposition(|l| l.starts_with("[[")).unwrap() + 1;
        assert!((header..=entry).contains(&line), "line {line} not in {header}..={entry}: {problem}");
        assert!(problem.contains(expected), "{problem} should contain {expected}");
    }

    #[test]
    fn rule_violations_name_the_entry_and_the_fix() {
        let cases = [
            (DEMO.replacen("\"ins-3e56fg78\"", "\"ins-3e56\"", 1), "ins-3e56\"", "expected `ins-`"),
            (DEMO.replacen("\"ins-3e56fg78\"", "\"ins-1e4r6y8i\"", 1), "finance-web-2", "already has a instance"),
            (DEMO.replacen("state = \"REBOOTING\"", "state = \"Rebooting\"", 1), "Rebooting", "use one of"),
            (DEMO.replacen("keys = [\"lhkp-a1b2c3d4\"]", "keys = [\"lhkp-zzzzzzzz\"]", 1), "lhkp-zzzzzzzz", "define the key pair"),
            (
                DEMO.replacen("state = \"STOPPED\"\n\n[[tencent-cvm.instances]]\nid = \"ins-r7b2t9mx\"", "state = \"STOPPED\"\nkeys = [\"skey-4e5ty7i8\"]\n\n[[tencent-cvm.instances]]\nid = \"ins-r7b2t9mx\"", 1),
                "finance-reports",
                "Windows",
            ),
            (DEMO.replacen("id = \"skey-11112222\"", "id = \"skey-4e5ty7i8\"", 1), "ops_shared", "already has a key pair"),
            (DEMO.replacen("id = \"lhkp-a1b2c3d4\"", "id = \"skey-a1b2c3d4\"", 1), "skey-a1b2c3d4", "tencent-lighthouse"),
        ];
        for (text, marker, expected) in cases {
            assert_ne!(text, DEMO, "the case did not change the demo: {marker}");
            assert_entry_error(&text, marker, expected);
        }
        // The entry's own header line, not the first entry with the same value.
        let text = "[[aliyun-ecs.keys]]\nname = \"A1\"\n\n[[aliyun-ecs.keys]]\nname = \"A1\"\n";
        let (line, problem) = error_of(text);
        assert_eq!(line, 4, "{problem}");
        assert!(problem.contains("already has a key pair"), "{problem}");
    }

    #[test]
    fn load_reads_files_and_names_them() {
        let dir = std::env::temp_dir().join(format!("crossgate-seed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(&good, DEMO).unwrap();
        let cloud = load(&good).unwrap();
        assert_eq!(cloud.instances(Provider::AliyunEcs).len(), demo().instances(Provider::AliyunEcs).len());

        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "\n[[aliyun-ecs.keys]]\nname = \"x\"\n").unwrap();
        let e = load(&bad).unwrap_err();
        assert_eq!(e.line(), Some(2), "{e}");
        assert!(e.to_string().starts_with(&format!("{}:2: ", bad.display())), "{e}");

        let missing = dir.join("missing.toml");
        let e = load(&missing).unwrap_err();
        assert!(matches!(e, SeedError::Read { .. }), "{e}");
        assert_eq!(e.line(), None);
        assert!(e.to_string().contains("missing.toml"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
