//! The HTTP client of the Steward API: one method per operation, used by the subcommands, the
//! demo and `audit verify --server`.
//!
//! Invariants: a response body is handed back as the API's own JSON (so `--output json` shows
//! exactly what the server said, fields this client does not know included); every non-2xx
//! answer becomes an [`ApiError`] carrying the status, code, message and details; credentials
//! (a bearer token, AWS keys, a cached sign-in) are sent as sensitive headers and never appear
//! in `Debug` output or errors; every request gets its credential in the one `send`, after
//! it is complete, so a SigV4 signature covers exactly what is sent.
//!
//! Layout: `error` holds what a failed call says, `operations` the method of each API
//! operation, `auth` which credential a client sends, `sigv4` the AWS signing; this module
//! holds the connection and the one `send` every call goes through.

mod auth;
mod error;
mod operations;
pub mod sigv4;

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde_json::Value;

pub use auth::{Auth, Sources};
pub use error::{ApiError, ClientError, Detail, Result};

/// The server a client talks to when none is named.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Filters of `GET /v1/models`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// A client of one Steward server, acting as the holder of one credential.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.base)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

fn path_segment(s: &str) -> String {
    // Model names are `[a-z0-9-]`, but ids and principal names (IAM ARNs) are not.
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client of `server` (e.g. `http://127.0.0.1:8080`), sending `token` as its bearer token.
    pub fn new(server: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let auth = match token {
            Some(token) => Auth::bearer(token)?,
            None => Auth::None,
        };
        Self::with_auth(server, auth)
    }

    /// A client of `server` sending `auth` (see [`Auth::resolve`] for the CLI's choice).
    pub fn with_auth(server: &str, auth: Auth) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("steward-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let base = server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            anyhow::bail!("--server must be an http:// or https:// URL, not {server:?}");
        }
        Ok(Self { http, base, auth })
    }

    pub fn server(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Sends `req` signed with the client's credential; the body of a 2xx answer, or the
    /// API's refusal.
    async fn send_raw(&self, req: RequestBuilder) -> Result<Vec<u8>> {
        let transport = |e: reqwest::Error| ClientError::Transport {
            server: self.base.clone(),
            // Without the URL: the cause is enough and keeps the message short.
            message: e.without_url().to_string(),
        };
        let (http, req) = req.build_split();
        let mut req = req.map_err(transport)?;
        self.auth
            .apply(&mut req)
            .await
            .map_err(ClientError::Credentials)?;
        let resp = http.execute(req).await.map_err(transport)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(ClientError::Api(ApiError::from_body(status, &body)));
        }
        Ok(body.to_vec())
    }

    async fn send(&self, req: RequestBuilder) -> Result<Value> {
        let body = self.send_raw(req).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.request(Method::GET, path)).await
    }

    async fn get_query<Q: Serialize + ?Sized>(&self, path: &str, query: &Q) -> Result<Value> {
        self.send(self.request(Method::GET, path).query(query))
            .await
    }

    async fn post<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Result<Value> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    fn version_path(name: &str, version: u32) -> String {
        format!("/v1/models/{}/versions/{version}", path_segment(name))
    }
}

/// The items of a list answer: `{"items": [...]}` (or a bare array).
pub fn items(v: &Value) -> &[Value] {
    v.get("items")
        .and_then(Value::as_array)
        .or_else(|| v.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The `next_cursor` of a list answer.
pub fn next_cursor(v: &Value) -> Option<&str> {
    v.get("next_cursor").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_segment("credit-risk"), "credit-risk");
        assert_eq!(
            path_segment("arn:aws:iam::1:user/a b"),
            "arn%3Aaws%3Aiam%3A%3A1%3Auser%2Fa%20b"
        );
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let c = Client::new("http://127.0.0.1:1", Some("s3cret-token")).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
