//! `steward login` and `steward logout`: a person signs in with OpenID Connect (authorization
//! code flow with PKCE, RFC 8252 loopback redirect) and the CLI caches the ID token for the
//! server; [`Session`] is that cached sign-in as the client presents it, refreshed with the
//! refresh token when it has expired.
//!
//! Layout: `oidc` speaks to the identity provider, `loopback` receives the redirect, `cache`
//! keeps the tokens on disk.
//!
//! Invariants: nothing is cached unless the redirect carried this sign-in's `state` and the ID
//! token passed every claim check; no token is printed or logged.

pub mod cache;
mod loopback;
pub mod oidc;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::client::{Client, ClientError};
use cache::CachedToken;
use oidc::Claims;

/// A cached ID token this close to its expiry is refreshed before it is sent.
const EXPIRY_MARGIN: chrono::Duration = chrono::Duration::seconds(30);

/// Where the ID token comes from and how to ask for it.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--issuer` and `--client-id`; else the server's `GET /v1/auth/oidc`.
    pub provider: Option<(String, String)>,
    /// `--scope`; else the server's, else `openid`.
    pub scopes: Vec<String>,
    pub open_browser: bool,
    pub timeout: Duration,
    /// `--port`: the loopback port of the redirect (0: any free one).
    pub port: u16,
}

/// A client of the identity provider: short timeouts, no redirects followed (a token endpoint
/// that redirects is misconfigured, and a form body must not be re-sent elsewhere).
pub fn provider_http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("steward-cli/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// The issuer, client id and scopes to use: the flags, else what the server publishes.
async fn provider(server: &str, opts: &Options) -> anyhow::Result<(String, String, Vec<String>)> {
    let (issuer, client_id, published) = match &opts.provider {
        Some((issuer, client_id)) => (issuer.clone(), client_id.clone(), Vec::new()),
        None => {
            let v = match Client::new(server, None)?.oidc_config().await {
                Ok(v) => v,
                Err(ClientError::Api(e)) if e.status == 404 => anyhow::bail!(
                    "{server} offers no OpenID Connect sign-in; name a provider with --issuer and --client-id"
                ),
                Err(e) => return Err(e).context("asking the server for its sign-in provider"),
            };
            let text = |k: &str| {
                v[k].as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .with_context(|| format!("the server's GET /v1/auth/oidc has no {k:?}"))
            };
            let scopes = v["scopes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            (text("issuer")?, text("client_id")?, scopes)
        }
    };
    let mut scopes = if opts.scopes.is_empty() {
        published
    } else {
        opts.scopes.clone()
    };
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    Ok((issuer, client_id, scopes))
}

/// Tries to open `url` in a browser: `$BROWSER` (a `:`-separated list; `%s` stands for the
/// URL), then `xdg-open`, then `open`. Failures are ignored: the URL was printed.
fn open_browser(url: &str) {
    let mut candidates: Vec<Vec<String>> = Vec::new();
    if let Ok(browser) = std::env::var("BROWSER") {
        for entry in browser.split(':').filter(|e| !e.trim().is_empty()) {
            let mut argv: Vec<String> = entry.split_whitespace().map(str::to_owned).collect();
            if argv.iter().any(|a| a.contains("%s")) {
                argv.iter_mut().for_each(|a| *a = a.replace("%s", url));
            } else {
                argv.push(url.to_owned());
            }
            candidates.push(argv);
        }
    }
    candidates.push(vec!["xdg-open".into(), url.to_owned()]);
    candidates.push(vec!["open".into(), url.to_owned()]);
    for argv in candidates {
        let spawned = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if spawned.is_ok() {
            return;
        }
    }
}

/// Signs a person in for `server` and caches the ID token under `dir`; returns the cache entry,
/// its claims and the cache file.
pub async fn sign_in(
    server: &str,
    opts: &Options,
    dir: &Path,
) -> anyhow::Result<(CachedToken, Claims, PathBuf)> {
    let (issuer, client_id, scopes) = provider(server, opts).await?;
    let http = provider_http()?;
    let meta = oidc::discover(&http, &issuer).await?;
    let listener = loopback::Listener::bind(opts.port).await?;
    let request = oidc::Request::new(listener.redirect_uri.clone());
    let url = request.authorize_url(&meta, &client_id, &scopes)?;
    eprintln!("Open this URL to sign in: {url}");
    if opts.open_browser {
        open_browser(url.as_str());
    }
    let code = match listener.wait(&request.state, opts.timeout).await? {
        loopback::Outcome::Code(code) => code,
        loopback::Outcome::Denied(why) => {
            anyhow::bail!("the identity provider refused the sign-in: {why}")
        }
    };
    let tokens = oidc::exchange_code(&http, &meta, &client_id, &request, &code).await?;
    let id_token = tokens.id_token.context(
        "the identity provider answered without an ID token (is `openid` an allowed scope?)",
    )?;
    let claims = Claims::decode(&id_token)?;
    claims.check(&issuer, &client_id, Some(&request.nonce))?;
    let token = CachedToken {
        server: cache::normalize_server(server),
        issuer,
        client_id,
        id_token,
        refresh_token: tokens.refresh_token,
        expires_at: claims.exp,
    };
    let path = cache::save(dir, &token)?;
    Ok((token, claims, path))
}

/// A cached sign-in, as the client presents it.
pub struct Session {
    dir: PathBuf,
    token: Mutex<CachedToken>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl Session {
    /// The sign-in to `server` cached under `dir`, if any.
    pub fn load(dir: &Path, server: &str) -> anyhow::Result<Option<Self>> {
        Ok(cache::load(dir, server)?.map(|token| Self {
            dir: dir.to_owned(),
            token: Mutex::new(token),
        }))
    }

    /// The ID token to send now, refreshed (and re-cached) first when it has expired.
    pub async fn id_token(&self) -> Result<String, String> {
        let mut token = self.token.lock().await;
        if token.expires_at > Utc::now() + EXPIRY_MARGIN {
            return Ok(token.id_token.clone());
        }
        let server = token.server.clone();
        let expired = || format!("your sign-in to {server} has expired; run `steward login`");
        let Some(refresh_token) = token.refresh_token.clone() else {
            return Err(expired());
        };
        match self.refresh(&token, &refresh_token).await {
            Ok(fresh) => {
                *token = fresh;
                Ok(token.id_token.clone())
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "refreshing the sign-in failed");
                Err(expired())
            }
        }
    }

    async fn refresh(&self, old: &CachedToken, refresh_token: &str) -> anyhow::Result<CachedToken> {
        let http = provider_http()?;
        let meta = oidc::discover(&http, &old.issuer).await?;
        let tokens = oidc::refresh(&http, &meta, &old.client_id, refresh_token).await?;
        let id_token = tokens
            .id_token
            .context("the refresh answer carries no ID token")?;
        let claims = Claims::decode(&id_token)?;
        claims.check(&old.issuer, &old.client_id, None)?;
        let fresh = CachedToken {
            id_token,
            // Providers that rotate refresh tokens send a new one; others keep the old valid.
            refresh_token: tokens.refresh_token.or_else(|| old.refresh_token.clone()),
            expires_at: claims.exp,
            ..old.clone()
        };
        cache::save(&self.dir, &fresh)?;
        Ok(fresh)
    }
}
