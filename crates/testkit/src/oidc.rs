//! A real OpenID Connect provider for sign-in tests: `scripts/oidc-provider/server.mjs` (the
//! certified npm `oidc-provider`, see its README) run by node on 127.0.0.1, and the client side
//! a test needs to drive it without a browser.
//!
//! Invariants:
//! - [`OidcProvider::start`] fails when the provider is not installed (naming
//!   `bash scripts/oidc-provider/install`), when node is missing, or when the provider does not
//!   announce itself within [`START_TIMEOUT`]: a sign-in test never passes by skipping.
//! - The provider process lives exactly as long as its [`OidcProvider`]: it is killed on drop,
//!   and it exits by itself when its standard input (held here) closes.
//! - [`OidcProvider::authorize_with_browserless_login`] starts every login with an empty cookie
//!   jar (a fresh browser: no single sign-on from an earlier login) and never fetches the
//!   client's redirect URI: the test hands the returned URL to the client under test.
//!
//! `/__test/sign` and `/__test/rotate` exist only in this harness (no real provider has them).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

pub use reqwest::Url;

/// How long the provider may take to print its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The console's confidential web client (`client_secret_basic`).
pub const CONSOLE_CLIENT_ID: &str = "steward-console";
/// The console client's secret.
pub const CONSOLE_CLIENT_SECRET: &str = "console-secret";
/// The CLI's public native client (no secret, PKCE; any loopback port, RFC 8252).
pub const CLI_CLIENT_ID: &str = "steward-cli";
/// The CLI client's registered redirect URI; the port of a request's redirect URI may differ.
pub const CLI_REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// A confidential client that is not Steward, for tokens of another audience.
pub const OTHER_CLIENT_ID: &str = "other-app";
/// The other client's secret.
pub const OTHER_CLIENT_SECRET: &str = "other-secret";
/// The other client's redirect URI (nothing listens there; tests only read the URL).
pub const OTHER_REDIRECT_URI: &str = "http://127.0.0.1:9/other/callback";
/// The scopes that put `email`, `name` and `groups` into the ID token.
pub const SCOPES: &str = "openid email profile groups";

/// Which key `/__test/sign` signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKey<'a> {
    /// The provider's current key for the algorithm (`header.alg`, default RS256): in the JWKS.
    Current,
    /// A fresh key that is in no JWKS, with a kid of the same format.
    Unknown,
    /// Any key the provider ever had, by kid (also one a rotation dropped from the JWKS).
    Kid(&'a str),
}

impl SigningKey<'_> {
    fn to_json(self) -> Value {
        match self {
            SigningKey::Current => json!("current"),
            SigningKey::Unknown => json!("unknown"),
            SigningKey::Kid(kid) => json!(kid),
        }
    }
}

/// A running test provider; killed on drop.
#[derive(Debug)]
pub struct OidcProvider {
    issuer: String,
    http: reqwest::Client,
    stderr: Arc<Mutex<String>>,
    _stdin: ChildStdin,
    _child: Child,
}

/// The workspace root: testkit lives in `crates/testkit`.
fn workspace_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

impl OidcProvider {
    /// Starts `node scripts/oidc-provider/server.mjs` with `config` as `OIDC_CONFIG` (shape in
    /// the script's header and in [`OidcProvider::default_config`]) and waits for it to listen.
    pub async fn start(config: Value) -> anyhow::Result<OidcProvider> {
        let dir = workspace_root().join("scripts/oidc-provider");
        if !dir
            .join("node_modules/oidc-provider/package.json")
            .is_file()
        {
            bail!(
                "the test OpenID Connect provider is not installed ({} has no node_modules): \
                 run bash scripts/oidc-provider/install",
                dir.display()
            );
        }
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .current_dir(&dir)
            .env("OIDC_CONFIG", config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context(
                "cannot run node (Node.js 20 or later) for the test OpenID Connect provider",
            )?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr_pipe = child.stderr.take().expect("stderr is piped");

        // Drained all along, so the provider never blocks on a full pipe; kept for error messages.
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr_pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                if s.len() < 64 * 1024 {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });

        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = tokio::time::timeout(START_TIMEOUT, stdout.read_line(&mut line)).await;
        let issuer = match read {
            Ok(Ok(n)) if n > 0 => line
                .trim_end()
                .strip_prefix("oidc-provider listening on ")
                .map(str::to_owned),
            _ => None,
        };
        let Some(issuer) = issuer else {
            // Give the stderr drain a moment to collect why the provider died.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let why = stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let status = child.try_wait().ok().flatten();
            bail!(
                "the test OpenID Connect provider did not start within {START_TIMEOUT:?} \
                 (exit: {status:?}; stdout: {line:?}); its stderr:\n{why}"
            );
        };
        tokio::spawn(async move {
            let mut rest = Vec::new();
            let _ = stdout.read_to_end(&mut rest).await;
        });

        let http = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(OidcProvider {
            issuer,
            http,
            stderr,
            _stdin: stdin,
            _child: child,
        })
    }

    /// The test clients and accounts: [`CONSOLE_CLIENT_ID`] redirecting to
    /// `console_redirect_uri` (with `None` it is left out, to be added with
    /// [`OidcProvider::register_client`] once the console's port is known), [`CLI_CLIENT_ID`],
    /// [`OTHER_CLIENT_ID`]; accounts `alice` (group `ml-reviewers`), `bob` (`ml-developers`) and
    /// `carol` (`ml-admins`), each with `email` `<id>@example.com` and `name`.
    pub fn default_config(console_redirect_uri: Option<&str>) -> Value {
        let mut clients = Vec::new();
        if let Some(uri) = console_redirect_uri {
            clients.push(Self::console_client(uri));
        }
        clients.push(json!({
            "client_id": CLI_CLIENT_ID,
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": [CLI_REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }));
        clients.push(json!({
            "client_id": OTHER_CLIENT_ID,
            "client_secret": OTHER_CLIENT_SECRET,
            "redirect_uris": [OTHER_REDIRECT_URI],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }));
        let account = |id: &str, name: &str, group: &str| {
            json!({"email": format!("{id}@example.com"), "email_verified": true,
                   "name": name, "groups": [group]})
        };
        json!({
            "port": 0,
            "clients": clients,
            "accounts": {
                "alice": account("alice", "Alice", "ml-reviewers"),
                "bob": account("bob", "Bob", "ml-developers"),
                "carol": account("carol", "Carol", "ml-admins"),
            },
        })
    }

    /// The console client's metadata, redirecting to `redirect_uri`.
    pub fn console_client(redirect_uri: &str) -> Value {
        json!({
            "client_id": CONSOLE_CLIENT_ID,
            "client_secret": CONSOLE_CLIENT_SECRET,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        })
    }

    /// The issuer, `http://127.0.0.1:<port>` (no trailing slash), as in its ID tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// What the provider wrote to stderr so far (at most 64 KiB), for failure messages.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// GET `path` on the provider as JSON; fails on a non-2xx status.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self.http.get(self.url(path)).send().await?;
        json_of(resp, path).await
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub async fn discovery(&self) -> anyhow::Result<Value> {
        self.get_json("/.well-known/openid-configuration").await
    }

    /// The published JWKS (`/jwks`, the discovery document's `jwks_uri`).
    pub async fn jwks(&self) -> anyhow::Result<Value> {
        self.get_json("/jwks").await
    }

    async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self.http.post(self.url(path)).json(body).send().await?;
        json_of(resp, path).await
    }

    /// A compact JWS over `claims`, signed by `key` (`/__test/sign`). Claims default to
    /// `iss` = the issuer, `iat` = now and `exp` = now + 300 s; the header to
    /// `{alg: "RS256", kid, typ: "JWT"}` (`"alg": "ES256"` or `"none"` choose another); a null
    /// value in `claims` or `header` removes that default.
    pub async fn sign(
        &self,
        claims: Value,
        header: Option<Value>,
        key: SigningKey<'_>,
    ) -> anyhow::Result<String> {
        let body =
            json!({"claims": claims, "header": header.unwrap_or(json!({})), "key": key.to_json()});
        let out = self.post_json("/__test/sign", &body).await?;
        out["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("/__test/sign answered without a token: {out}"))
    }

    /// Rotates the signing keys (`/__test/rotate`): a new RSA and a new EC key become current
    /// (the provider's own ID tokens and [`SigningKey::Current`] use them) and join the JWKS;
    /// with `drop_previous` the older keys leave it. Returns the new RS256 kid.
    pub async fn rotate(&self, drop_previous: bool) -> anyhow::Result<String> {
        let out = self
            .post_json("/__test/rotate", &json!({"drop_previous": drop_previous}))
            .await?;
        out["kid"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("/__test/rotate answered without a kid: {out}"))
    }

    /// Registers a client at runtime (Dynamic Client Registration, RFC 7591, at `/reg`), with
    /// the `client_id` and `client_secret` in `metadata`: for a client whose redirect URI is
    /// known only after the provider started. Returns the registration response.
    pub async fn register_client(&self, metadata: Value) -> anyhow::Result<Value> {
        self.post_json("/reg", &metadata).await
    }

    /// An authorization request URL for the code flow with PKCE (S256) and [`SCOPES`].
    pub fn authorization_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> Url {
        let mut url = Url::parse(&self.url("/auth")).expect("the issuer is a URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", SCOPES)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        url
    }

    /// Drives a login as a browser would, over plain HTTP with a fresh cookie jar: GETs
    /// `authorize_url`, follows the provider's redirects, submits the login form as `account`
    /// and returns the first redirect that leaves the provider (the client's redirect URI with
    /// `code` and `state`, or with `error`) without fetching it. Fails if the provider refuses
    /// the login or shows anything else.
    pub async fn authorize_with_browserless_login(
        &self,
        authorize_url: &str,
        account: &str,
    ) -> anyhow::Result<Url> {
        let issuer = Url::parse(&self.issuer)?.origin();
        let mut jar = CookieJar::default();
        let mut url = Url::parse(authorize_url).context("the authorization URL")?;
        let mut request = self.http.get(url.clone());
        let mut logged_in = false;
        // authorize -> interaction -> login -> resume -> (consent -> resume ->) redirect
        for _ in 0..12 {
            let resp = request.header(COOKIE, jar.header()).send().await?;
            jar.store(resp.headers());
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| anyhow!("{status} without a Location at {url}"))?;
                let next = url.join(location)?;
                if next.origin() != issuer {
                    return Ok(next);
                }
                url = next;
                request = self.http.get(url.clone());
                continue;
            }
            let body = resp.text().await?;
            if status == StatusCode::UNAUTHORIZED && logged_in {
                bail!("the provider refused the login as {account:?}: {body}");
            }
            let action = (status == StatusCode::OK && !logged_in)
                .then(|| login_form_action(&body))
                .flatten()
                .ok_or_else(|| anyhow!("unexpected {status} at {url}: {body}"))?;
            url = url.join(&action)?;
            request = self
                .http
                .post(url.clone())
                .form(&[("login", account), ("password", "any")]);
            logged_in = true;
        }
        bail!("the login as {account:?} did not leave the provider after 12 steps (at {url})")
    }

    /// Exchanges an authorization code at the token endpoint: with `secret`, as a confidential
    /// client (HTTP Basic), else as a public one (`client_id` in the form). Returns the token
    /// response; fails on a non-2xx status, with the provider's error in the message.
    pub async fn exchange_code(
        &self,
        client_id: &str,
        secret: Option<&str>,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> anyhow::Result<Value> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut request = self.http.post(self.url("/token"));
        match secret {
            Some(secret) => request = request.basic_auth(client_id, Some(secret)),
            None => form.push(("client_id", client_id)),
        }
        let resp = request.form(&form).send().await?;
        json_of(resp, "/token").await
    }
}

async fn json_of(resp: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("{what}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: not JSON: {text}"))
}

/// The `action` of the harness's login form (`server.mjs` renders it; its uid is URL-safe).
fn login_form_action(html: &str) -> Option<String> {
    let form = &html[html.find("<form")?..];
    if !form.contains("name=\"login\"") {
        return None;
    }
    let start = form.find("action=\"")? + "action=\"".len();
    let end = start + form[start..].find('"')?;
    Some(form[start..end].to_owned())
}

/// A browser's cookies for the one origin the login talks to. Paths are ignored: sending the
/// provider every cookie it set is harmless, as it reads each by name and checks its signature.
#[derive(Debug, Default)]
struct CookieJar(HashMap<String, String>);

impl CookieJar {
    fn store(&mut self, headers: &HeaderMap) {
        for set in headers.get_all(SET_COOKIE) {
            let Ok(set) = set.to_str() else { continue };
            let mut parts = set.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            // The provider clears a cookie with an empty value that expired in 1970.
            let cleared = value.is_empty()
                || parts.any(|a| {
                    let a = a.to_ascii_lowercase();
                    a == "max-age=0" || (a.starts_with("expires=") && a.contains("1970"))
                });
            if cleared {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join("; ")
    }
}

/// A PKCE pair (RFC 7636, S256): `(verifier, challenge)`, the verifier 43 base64url characters
/// of 32 random bytes, the challenge base64url(SHA-256(verifier)).
pub fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(random_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A random URL-safe value for `state` and `nonce`.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes())
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
}

/// The header and claims of a compact JWS, unverified (to assert on what a token says).
pub fn decode_jwt(token: &str) -> anyhow::Result<(Value, Value)> {
    let mut parts = token.split('.');
    let mut part = |what: &str| -> anyhow::Result<Value> {
        let b64 = parts
            .next()
            .ok_or_else(|| anyhow!("the JWT has no {what}"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(b64)
            .with_context(|| format!("the JWT's {what} is not base64url"))?;
        serde_json::from_slice(&bytes).with_context(|| format!("the JWT's {what} is not JSON"))
    };
    Ok((part("header")?, part("claims")?))
}

/// The value of query parameter `name` of `url` (e.g. `code` and `state` of a redirect).
pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
