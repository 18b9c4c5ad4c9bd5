//! The performance kit's scripts (compare.sh, profile.sh, instructions.sh, ab.sh) as users start them:
//! `--help` prints each one's usage (the options it takes included) without building anything, and a
//! bad option or value is refused with exit code 2 and a message, before anything is built or started;
//! `--split-cpus` divides the CPUs it is given between the proxies and what drives them.

use std::path::Path;
use std::process::{Command, Output};

/// `bash bench/SCRIPT ARGS...` from the repository root.
fn script(name: &str, args: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("bash").arg(root.join("bench").join(name)).args(args).current_dir(root).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_shows_every_option_of_the_profiling_scripts() {
    for name in ["profile.sh", "instructions.sh"] {
        let out = script(name, &["--help"]);
        let usage = text(&out.stdout);
        assert!(out.status.success(), "{name} --help: {out:?}");
        for option in ["--duration", "--connections", "--dialect", "--instance-prefix", "--rate", "--out"] {
            assert!(usage.contains(option), "{name} --help does not name {option}:\n{usage}");
        }
        assert!(!usage.contains("set -euo"), "{name} --help runs past its header:\n{usage}");
    }
    let usage = text(&script("compare.sh", &["--help"]).stdout);
    for option in ["--rss-connections", "--split-cpus", "--keep"] {
        assert!(usage.contains(option), "compare.sh --help does not name {option}:\n{usage}");
    }
    let usage = text(&script("ab.sh", &["--help"]).stdout);
    for option in ["BEFORE AFTER", "--rounds", "--duration", "--connections", "--dialect", "--rate"] {
        assert!(usage.contains(option), "ab.sh --help does not name {option}:\n{usage}");
    }
}

#[test]
fn bad_options_are_refused_before_anything_runs() {
    let refusals = [
        ("profile.sh", vec!["--rate", "fast"], "not a whole number"),
        ("profile.sh", vec!["--rate", "0"], "not a whole number"),
        ("instructions.sh", vec!["--rate", "-5"], "not a whole number"),
        ("instructions.sh", vec!["--connections", "0"], "not a whole number"),
        ("instructions.sh", vec!["--inclusive"], "unknown option --inclusive"),
        ("profile.sh", vec!["--bogus"], "unknown option --bogus"),
        ("compare.sh", vec!["--duration", "soon"], "not a whole number"),
        ("ab.sh", vec![], "give two crossgate binaries"),
        ("ab.sh", vec!["/bin/true"], "give two crossgate binaries"),
        ("ab.sh", vec!["/bin/true", "/no/such/crossgate"], "/no/such/crossgate is not an executable"),
        ("ab.sh", vec!["/bin/true", "/bin/true", "--rounds", "none"], "not a whole number"),
        ("ab.sh", vec!["/bin/true", "/bin/true", "--rounds"], "not a whole number"),
        ("ab.sh", vec!["/bin/true", "/bin/true", "--fast"], "unknown option --fast"),
    ];
    for (name, args, said) in refusals {
        let out = script(name, &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {out:?}");
        assert!(stderr.contains(said), "{name} {args:?} said: {stderr}");
        assert!(!text(&out.stdout).contains("== building"), "{name} {args:?} went on to build");
    }
}

#[test]
fn splitting_one_cpu_is_refused_before_anything_runs() {
    // The script, and everything it would start, confined to a single CPU: there is nothing to split.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("taskset")
        .args(["-c", "0", "bash"])
        .arg(root.join("bench/compare.sh"))
        .arg("--split-cpus")
        .current_dir(root)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr.contains("--split-cpus needs at least 2 CPUs, this process may use 1"), "{stderr}");
    assert!(!text(&out.stdout).contains("== building"), "went on to build: {out:?}");
}

#[test]
fn cpus_are_split_into_the_drivers_lower_half_and_the_proxies_upper_half() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let split = |list: &str| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#". bench/options.sh && split_cpus "$1" > /dev/null && echo "${proxy_side[*]}|${driver_side[*]}|$proxy_cpu_count""#)
            .args(["split", list])
            .current_dir(root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{list}: {out:?}");
        text(&out.stdout).trim().to_owned()
    };
    assert_eq!(split("0-1"), "taskset -c 1|taskset -c 0|1");
    assert_eq!(split("0,2"), "taskset -c 2|taskset -c 0|1");
    assert_eq!(split("0-3"), "taskset -c 2,3|taskset -c 0,1|2");
    assert_eq!(split("0-3,6"), "taskset -c 3,6|taskset -c 0,1,2|2");
}
