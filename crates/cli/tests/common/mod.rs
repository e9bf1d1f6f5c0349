//! Helpers shared by the CLI tests: the real `steward` binary, a `steward serve` child process
//! that is always stopped (Drop guard), and principals created through `steward principals add`.

#![allow(dead_code)]

pub mod browser;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const MANIFEST: &str = include_str!("../../src/demo/credit-risk-v1.json");

/// The binary under test, with no Steward settings inherited from the environment.
pub fn steward() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(env!("CARGO_BIN_EXE_steward"));
    for var in [
        "STEWARD_TOKEN",
        "STEWARD_SERVER",
        "STEWARD_DATA",
        "STEWARD_ADDR",
        "RUST_LOG",
    ] {
        c.env_remove(var);
    }
    c.timeout(Duration::from_secs(120));
    c
}

fn std_steward() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_steward"));
    for var in [
        "STEWARD_TOKEN",
        "STEWARD_SERVER",
        "STEWARD_DATA",
        "STEWARD_ADDR",
        "RUST_LOG",
    ] {
        c.env_remove(var);
    }
    c
}

/// The principals every server test uses: name and role.
pub const PEOPLE: &[(&str, &str)] = &[
    ("admin", "admin"),
    ("dev", "developer"),
    ("tech", "technical-reviewer"),
    ("biz", "business-reviewer"),
    ("comp", "compliance-reviewer"),
    ("release", "release-manager"),
    ("ops", "operator"),
    ("audit", "auditor"),
];

/// Adds [`PEOPLE`] to `file` with `steward principals add`; returns each one's token.
pub fn add_principals(file: &Path) -> BTreeMap<String, String> {
    let mut tokens = BTreeMap::new();
    for (name, role) in PEOPLE {
        let out = steward()
            .args(["principals", "add", name, "--role", role, "--file"])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert_eq!(
            token.len(),
            64,
            "the token is 64 hex digits alone on stdout"
        );
        tokens.insert(name.to_string(), token);
    }
    tokens
}

/// A `steward serve` child process, killed on drop unless stopped.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    stdout: mpsc::Receiver<String>,
    /// What the server printed on stdout up to and including its listening line.
    pub printed_before_listening: Vec<String>,
    stderr_file: PathBuf,
}

impl Server {
    /// Starts `steward serve --data DATA --addr 127.0.0.1:0 [extra...]` and waits until it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Self::start_with_env(data, extra, &[])
    }

    /// [`Server::start`] with `env` set for the server process (secrets that never go in flags).
    pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let stderr_file = data.with_extension("stderr.log");
        let stderr = std::fs::File::create(&stderr_file).unwrap();
        let mut child = std_steward()
            .args(["serve", "--addr", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            url: String::new(),
            stdout: rx,
            printed_before_listening: Vec::new(),
            stderr_file,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match server.stdout.recv_timeout(left) {
                Ok(line) => {
                    server.printed_before_listening.push(line.clone());
                    if let Some(url) = line.strip_prefix("steward listening on ") {
                        server.url = url.trim().to_owned();
                        return server;
                    }
                }
                Err(_) => panic!(
                    "the server did not start; stderr:\n{}",
                    std::fs::read_to_string(&server.stderr_file).unwrap_or_default()
                ),
            }
        }
    }

    /// What the server wrote to stderr so far (its logs).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
    }

    /// A client invocation as the holder of `token`.
    pub fn cli(&self, token: &str) -> assert_cmd::Command {
        let mut c = steward();
        c.env("STEWARD_SERVER", &self.url)
            .env("STEWARD_TOKEN", token);
        c
    }

    /// Kills the server without warning and reaps it: `Child::kill` sends SIGKILL on Unix, so
    /// nothing runs in the server after it — no shutdown, no flush, no drop.
    pub fn kill(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap()
    }

    /// Sends SIGTERM and waits for the server to exit; see [`Server::stop_gracefully`].
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not stop within 30s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Server {
    /// Sends SIGTERM and asserts the server exits 0, showing its status and logs when not.
    pub fn stop_gracefully(self) {
        let stderr_file = self.stderr_file.clone();
        let status = self.stop();
        assert!(
            status.success(),
            "the server did not exit 0 on SIGTERM ({status}); stderr:\n{}",
            std::fs::read_to_string(stderr_file).unwrap_or_default()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
