//! `steward login`, `whoami` and `logout` as a person uses them: the real binary signs in at the
//! real test OpenID Connect provider (npm `oidc-provider`, `steward_testkit::oidc`) on
//! 127.0.0.1. The test plays the browser: it reads the URL the CLI prints, logs in as an account
//! with `authorize_with_browserless_login`, and follows the redirect to the CLI's loopback
//! listener. Needs the provider installed (`bash scripts/oidc-provider/install`; fails saying so).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{add_principals, Server};
use serde_json::Value;
use steward_testkit::oidc::{decode_jwt, query_param, OidcProvider, Url, CLI_CLIENT_ID};

/// A person's machine: a home and a Steward configuration directory of their own.
struct Person {
    home: tempfile::TempDir,
}

impl Person {
    fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.home.path().join("config")
    }

    fn tokens_dir(&self) -> PathBuf {
        self.config_dir().join("tokens")
    }

    /// The one cache file there is, if any.
    fn cache_file(&self) -> Option<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.tokens_dir())
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        assert!(files.len() <= 1, "{files:?}");
        files.pop()
    }

    fn steward(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_steward"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("STEWARD_CONFIG_DIR", self.config_dir())
            .env("AWS_EC2_METADATA_DISABLED", "true");
        c
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut c = self.steward();
        c.args(args);
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    }
}

/// A `steward login` in progress, and the sign-in URL it printed.
struct Login {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

impl Login {
    fn start(person: &Person, args: &[&str]) -> Login {
        let mut child = person
            .steward()
            .args(["login", "--no-browser", "--timeout", "60"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        loop {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no sign-in URL on stderr; saw {seen:?}");
            };
            if let Some(url) = line.strip_prefix("Open this URL to sign in: ") {
                return Login {
                    child,
                    url: url.to_owned(),
                    stderr: rx,
                };
            }
            seen.push(line);
        }
    }

    /// Waits for the CLI to exit: its status, stdout and the rest of its stderr.
    async fn finish(self) -> (std::process::ExitStatus, String, String) {
        let Login { child, stderr, .. } = self;
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        let rest: Vec<String> = stderr.try_iter().collect();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            rest.join("\n"),
        )
    }
}

/// The browser coming back to the CLI's loopback redirect: status and page.
async fn follow(redirect: &Url) -> (u16, String) {
    let resp = reqwest::get(redirect.as_str()).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn cached(person: &Person) -> Value {
    let path = person.cache_file().expect("a cached sign-in");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_the_named_provider_and_the_id_token_is_cached_for_them_alone() {
    let provider = OidcProvider::start(OidcProvider::default_config(None))
        .await
        .unwrap();
    let person = Person::new();
    // No server listens there: the sign-in still completes, naming the token's principal.
    let server = "http://127.0.0.1:9";
    let login = Login::start(
        &person,
        &[
            "--issuer",
            provider.issuer(),
            "--client-id",
            CLI_CLIENT_ID,
            "--server",
            server,
        ],
    );
    let authorize = Url::parse(&login.url).unwrap();
    assert_eq!(
        query_param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let redirect_uri = query_param(&authorize, "redirect_uri").unwrap();
    assert!(redirect_uri.starts_with("http://127.0.0.1:") && redirect_uri.ends_with("/callback"));
    let redirect = provider
        .authorize_with_browserless_login(&login.url, "alice")
        .await
        .unwrap();
    let (status, page) = follow(&redirect).await;
    assert_eq!(status, 200);
    assert!(page.contains("You can close this tab"), "{page}");

    let (status, stdout, stderr) = login.finish().await;
    assert!(status.success(), "{stderr}");
    let principal = format!("oidc:{}#alice", provider.issuer());
    assert_eq!(
        stdout.trim(),
        format!("signed in to {server} as {principal}")
    );

    let file = person.cache_file().unwrap();
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&person.tokens_dir()), 0o700);
    let entry = cached(&person);
    assert_eq!(entry["server"], server);
    assert_eq!(entry["issuer"], provider.issuer());
    assert_eq!(entry["client_id"], CLI_CLIENT_ID);
    let (_, claims) = decode_jwt(entry["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["aud"], CLI_CLIENT_ID);
    assert_eq!(claims["sub"], "alice");
    assert!(!stdout.contains(entry["id_token"].as_str().unwrap()));
    assert!(!stderr.contains(entry["id_token"].as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_with_a_wrong_state_is_refused_and_nothing_is_cached() {
    let provider = OidcProvider::start(OidcProvider::default_config(None))
        .await
        .unwrap();
    let person = Person::new();
    let login = Login::start(
        &person,
        &["--issuer", provider.issuer(), "--client-id", CLI_CLIENT_ID],
    );
    let mut redirect = provider
        .authorize_with_browserless_login(&login.url, "alice")
        .await
        .unwrap();
    let code = query_param(&redirect, "code").unwrap();
    redirect
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "forged-state");
    let (status, page) = follow(&redirect).await;
    assert_eq!(status, 400);
    assert!(page.contains("wrong state"), "{page}");
    let (status, _, stderr) = login.finish().await;
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("wrong state"), "{stderr}");
    assert!(person.cache_file().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_to_a_server_that_names_its_provider_and_stays_signed_in_until_logout() {
    let provider = OidcProvider::start(OidcProvider::default_config(None))
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let principals = tmp.path().join("principals.toml");
    add_principals(&principals);
    let server = Server::start_with_env(
        &tmp.path().join("data"),
        &[
            "--principals",
            principals.to_str().unwrap(),
            "--oidc-issuer",
            provider.issuer(),
            "--oidc-audience",
            CLI_CLIENT_ID,
            "--oidc-cli-client-id",
            CLI_CLIENT_ID,
            "--oidc-group-role",
            "ml-reviewers=technical-reviewer",
            "--oidc-scopes",
            "openid,email,profile,groups",
        ],
        &[],
    );
    let person = Person::new();
    // The provider comes from the server's GET /v1/auth/oidc.
    let login = Login::start(&person, &["--server", &server.url]);
    let redirect = provider
        .authorize_with_browserless_login(&login.url, "alice")
        .await
        .unwrap();
    assert_eq!(follow(&redirect).await.0, 200);
    let (status, stdout, stderr) = login.finish().await;
    assert!(status.success(), "{stderr}");
    let principal = format!("oidc:{}#alice", provider.issuer());
    assert_eq!(
        stdout.trim(),
        format!(
            "signed in to {} as {principal} (roles: technical-reviewer)",
            server.url
        )
    );

    // Later commands use the cached sign-in.
    let out = person
        .run(&["whoami", "--server", &server.url, "-o", "json"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let me: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(me["principal"], principal.as_str());
    assert_eq!(me["authentication"], "oidc");
    let out = person.run(&["whoami", "--server", &server.url]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&format!("principal:      {principal}")),
        "{table}"
    );
    assert!(table.contains("authentication: oidc"), "{table}");

    // Expired, with a refresh token: refreshed at the provider and cached again.
    let path = person.cache_file().unwrap();
    let mut entry = cached(&person);
    assert!(entry["refresh_token"].is_string(), "{entry}");
    entry["expires_at"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(&path, entry.to_string()).unwrap();
    let out = person.run(&["whoami", "--server", &server.url]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refreshed = cached(&person);
    // (Issued within the same second, the refreshed ID token may equal the first one.)
    let expires_at = refreshed["expires_at"].as_str().unwrap();
    assert!(expires_at > "2026", "{expires_at}");
    assert!(refreshed["id_token"].is_string() && refreshed["refresh_token"].is_string());
    assert_eq!(mode(&path), 0o600);

    // Expired without one: the person is told to sign in again.
    let mut entry = refreshed;
    entry.as_object_mut().unwrap().remove("refresh_token");
    entry["expires_at"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(&path, entry.to_string()).unwrap();
    let out = person.run(&["whoami", "--server", &server.url]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "your sign-in to {} has expired; run `steward login`",
            server.url
        )),
        "{stderr}"
    );

    let out = person.run(&["logout", "--server", &server.url]).await;
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("signed out of {}", server.url)
    );
    assert!(person.cache_file().is_none());
    let out = person.run(&["whoami", "--server", &server.url]).await;
    assert_eq!(out.status.code(), Some(1), "signed out: no credentials");
}
