//! How a client proves who it is, chosen once per client:
//! `STEWARD_TOKEN` (a bearer token) if set → else SigV4 when asked (`--aws`) or when the server
//! is an API Gateway `execute-api` URL → else the sign-in `steward login` cached for this
//! server → else nothing.
//!
//! Invariant: no credential appears in `Debug` output or an error: headers that carry one are
//! marked sensitive, and `Debug` names only the kind of credential.

use std::path::Path;
use std::sync::Arc;

use reqwest::header::{HeaderValue, AUTHORIZATION};

use super::sigv4::{self, AwsSigner};
use crate::login::Session;

/// The credential a client sends.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    /// `Authorization: Bearer <token>` (a sensitive header value).
    Bearer(HeaderValue),
    /// AWS SigV4 for API Gateway.
    SigV4(Arc<AwsSigner>),
    /// The ID token of a `steward login`, as a bearer token.
    Login(Arc<Session>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "none",
            Auth::Bearer(_) => "bearer token",
            Auth::SigV4(_) => "AWS SigV4",
            Auth::Login(_) => "steward login",
        })
    }
}

/// Where a credential may come from, as the command line and environment give them.
#[derive(Debug, Clone, Default)]
pub struct Sources<'a> {
    /// `STEWARD_TOKEN`
    pub token: Option<&'a str>,
    /// `--aws` / `STEWARD_AWS`
    pub aws: bool,
    /// `--region` / `AWS_REGION`
    pub region: Option<&'a str>,
    /// The configuration directory holding `steward login`'s cache (none: not consulted).
    pub config_dir: Option<&'a Path>,
}

impl Auth {
    /// A bearer token (blank: none).
    pub fn bearer(token: &str) -> anyhow::Result<Self> {
        let token = token.trim();
        if token.is_empty() {
            return Ok(Auth::None);
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| anyhow::anyhow!("the token contains characters a header cannot carry"))?;
        value.set_sensitive(true);
        Ok(Auth::Bearer(value))
    }

    /// The credential for `server`, by the precedence in the module documentation.
    pub fn resolve(server: &str, sources: &Sources<'_>) -> anyhow::Result<Self> {
        if let Some(token) = sources.token.filter(|t| !t.trim().is_empty()) {
            return Self::bearer(token);
        }
        let host_region = reqwest::Url::parse(server).ok().and_then(|u| {
            u.host_str()
                .and_then(sigv4::execute_api_region)
                .map(str::to_owned)
        });
        if sources.aws || host_region.is_some() {
            // The host's region is the only one its signature can be checked in.
            let region = host_region.or_else(|| sources.region.map(str::to_owned));
            return Ok(Auth::SigV4(Arc::new(AwsSigner::new(region))));
        }
        if let Some(dir) = sources.config_dir {
            if let Some(session) = Session::load(dir, server)? {
                return Ok(Auth::Login(Arc::new(session)));
            }
        }
        Ok(Auth::None)
    }

    /// Adds the credential to a request that is about to be sent.
    pub(super) async fn apply(&self, request: &mut reqwest::Request) -> Result<(), String> {
        match self {
            Auth::None => Ok(()),
            Auth::Bearer(value) => {
                request.headers_mut().insert(AUTHORIZATION, value.clone());
                Ok(())
            }
            Auth::SigV4(signer) => signer.sign(request).await.map_err(|e| e.to_string()),
            Auth::Login(session) => {
                let token = session.id_token().await?;
                let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| "the cached ID token cannot be sent in a header".to_owned())?;
                value.set_sensitive(true);
                request.headers_mut().insert(AUTHORIZATION, value);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(server: &str, sources: Sources<'_>) -> String {
        format!("{:?}", Auth::resolve(server, &sources).unwrap())
    }

    #[test]
    fn a_bearer_token_wins_then_sigv4_then_nothing() {
        let api = "https://abc.execute-api.eu-west-1.amazonaws.com";
        let local = "http://127.0.0.1:8080";
        let token = Sources {
            token: Some("t0ken"),
            aws: true,
            ..Sources::default()
        };
        assert_eq!(kind(api, token), "bearer token");
        assert_eq!(kind(api, Sources::default()), "AWS SigV4");
        let aws = Sources {
            aws: true,
            ..Sources::default()
        };
        assert_eq!(kind(local, aws), "AWS SigV4");
        assert_eq!(kind(local, Sources::default()), "none");
    }

    #[test]
    fn a_bearer_token_never_shows_in_debug_output() {
        let auth = Auth::bearer("s3cret").unwrap();
        assert_eq!(format!("{auth:?}"), "bearer token");
    }
}
