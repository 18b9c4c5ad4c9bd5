//! The `crossgate` command itself, run as a user runs it: `serve` prints `listening on <addr>` once it
//! accepts connections and answers `/healthz`; a bad config stops it with the file and line; `coverage`
//! prints the matrix from the tables.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_crossgate");

fn temp_config(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("crossgate-cli-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn serve_announces_its_address_and_answers_health_checks() {
    let demo = include_str!("../../src/demo.toml")
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "path = \"audit.jsonl\"",
            &format!("path = \"{}\"", std::env::temp_dir().join("crossgate-cli-audit.jsonl").display()),
        )
        .replace("${CROSSGATE_SIM_SECRET}", "cli-test-upstream-secret");
    let config = temp_config(&demo);
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        assert!(Instant::now() < deadline, "no `listening on` line in time");
        let line = lines.next().expect("serve printed `listening on` before exiting").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().trim_start_matches("http://").to_owned();
        }
    };
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_file(config);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn a_bad_config_names_the_file_and_line() {
    let config = temp_config("listen = \"127.0.0.1:0\"\nbogus = 1\n");
    let out = Command::new(BIN).args(["serve", "--config"]).arg(&config).output().unwrap();
    let _ = std::fs::remove_file(&config);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:2:", config.display())), "{stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
}

#[test]
fn coverage_prints_the_matrix_of_the_tables() {
    let out = Command::new(BIN).arg("coverage").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), crossgate::coverage::render_default().unwrap());
}
