//! Every input a fuzz target once failed on, kept in `fuzz/regressions/<target>/`, replayed through the
//! same checks the target runs under libFuzzer (`fuzz/src/`, included here as a module), so a fixed
//! failure stays fixed without a fuzzing toolchain.

use std::path::Path;

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod checks;

fn regressions() -> Vec<(String, std::path::PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut inputs = Vec::new();
    for folder in std::fs::read_dir(&root).expect("fuzz/regressions exists") {
        let folder = folder.unwrap().path();
        let target = folder.file_name().unwrap().to_string_lossy().into_owned();
        for input in std::fs::read_dir(&folder).unwrap() {
            inputs.push((target.clone(), input.unwrap().path()));
        }
    }
    inputs.sort();
    inputs
}

#[test]
fn every_kept_input_passes_its_target_checks() {
    let inputs = regressions();
    assert!(!inputs.is_empty(), "fuzz/regressions holds the inputs fuzzing found");
    for (target, path) in inputs {
        let check = checks::TARGETS
            .iter()
            .find(|(name, _)| *name == target)
            .unwrap_or_else(|| panic!("fuzz/regressions/{target} names no fuzz target"))
            .1;
        let data = std::fs::read(&path).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            let why = panic.downcast_ref::<String>().cloned().unwrap_or_default();
            panic!("{} fails again: {why}", path.display());
        }
    }
}

#[test]
fn every_fuzz_target_has_checks_here() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml")).unwrap();
    let declared: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \"")?.strip_suffix('"'))
        .filter(|n| *n != "crossgate-fuzz")
        .collect();
    let checked: Vec<&str> = checks::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(declared, checked, "fuzz/Cargo.toml [[bin]]s and checks::TARGETS list the same targets");
}
