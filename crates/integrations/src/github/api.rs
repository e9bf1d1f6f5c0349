//! GitHub's REST API as a GitHub App: the App JWT (RS256), an installation access token, and
//! the review of a deployment protection rule at the webhook's `deployment_callback_url`.
//!
//! Invariants: the JWT is signed with the App's key at every token request (`iat` 60 s in the
//! past for clock drift, `exp` 9 min ahead: GitHub refuses more than 10); neither the JWT nor
//! the installation token is logged or put into an error. A 429, a 5xx, a 403 that says it is a
//! rate limit, or no answer is a retryable [`Failure`] (the deliverer retries the review,
//! honouring `Retry-After`); any other answer is final, since repeating it cannot change it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Value};

use crate::transport_error;

/// The media type and API version every request names.
pub const ACCEPT: &str = "application/vnd.github+json";
pub const API_VERSION: &str = "2022-11-28";

/// An App's RSA private key, parsed at load.
pub struct AppKey(RsaKeyPair);

impl AppKey {
    /// Parses an unencrypted PEM key: PKCS#1 (`BEGIN RSA PRIVATE KEY`, what GitHub issues) or
    /// PKCS#8 (`BEGIN PRIVATE KEY`). The error never quotes the key.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let label = pem
            .lines()
            .find_map(|l| l.trim().strip_prefix("-----BEGIN "))
            .and_then(|l| l.strip_suffix("-----"))
            .ok_or("not a PEM key (no -----BEGIN ... ----- line)")?
            .to_owned();
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|l| !l.starts_with("-----BEGIN "))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END "))
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| "the PEM body is not base64")?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            other => {
                return Err(format!(
                    "a {other} is not an unencrypted RSA private key (BEGIN RSA PRIVATE KEY, as GitHub issues it, or BEGIN PRIVATE KEY)"
                ))
            }
        };
        key.map(Self)
            .map_err(|e| format!("not a usable RSA private key: {e}"))
    }

    /// The App JWT at Unix time `now`: RS256, `iss` the App's id.
    pub fn jwt(&self, app_id: &str, now: i64) -> Result<String, String> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = json!({"iat": now - 60, "exp": now + 540, "iss": app_id});
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "signing the App JWT failed".to_owned())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Which request: `installation token` or `review`.
    pub step: &'static str,
    pub status: Option<u16>,
    pub why: String,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
}

impl Failure {
    fn of_status(step: &'static str, r: &reqwest::Response) -> Self {
        let code = r.status().as_u16();
        let h = r.headers();
        let retry_after = h
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let rate_limited = code == 403
            && (retry_after.is_some()
                || h.get("x-ratelimit-remaining")
                    .is_some_and(|v| v.as_bytes() == b"0"));
        Self {
            step,
            status: Some(code),
            why: format!("GitHub answered {code} to the {step} request"),
            retryable: code == 429 || code >= 500 || rate_limited,
            retry_after,
        }
    }

    fn transport(step: &'static str, e: &reqwest::Error) -> Self {
        Self {
            step,
            status: None,
            why: format!("{} ({step} request)", transport_error(e)),
            retryable: true,
            retry_after: None,
        }
    }
}

/// How long an installation token is reused: GitHub's last an hour.
const TOKEN_REUSE: Duration = Duration::from_secs(50 * 60);

/// One GitHub App's client.
pub struct Client {
    pub http: reqwest::Client,
    pub api_url: String,
    pub app_id: String,
    pub key: AppKey,
    /// Installation tokens by installation, with when each was issued; reused for
    /// [`TOKEN_REUSE`] so retries and busy pipelines do not spend GitHub's rate limit on them.
    pub tokens: Mutex<HashMap<u64, (String, Instant)>>,
}

impl Client {
    /// One attempt at sending `review` to `callback_url` for `installation`: an installation
    /// token (reused when fresh), then the review. Retrying is the deliverer's: the review is
    /// a queued delivery.
    pub async fn review_once(
        &self,
        installation: u64,
        callback_url: &str,
        review: &Value,
    ) -> Result<(), Failure> {
        let cached = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&installation)
            .filter(|(_, at)| at.elapsed() < TOKEN_REUSE)
            .map(|(t, _)| t.clone());
        let bearer = match cached {
            Some(t) => t,
            None => {
                let t = self.installation_token(installation).await?;
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(installation, (t.clone(), Instant::now()));
                t
            }
        };
        let step = "review";
        let r = self
            .http
            .post(callback_url)
            .header("accept", ACCEPT)
            .header("x-github-api-version", API_VERSION)
            .bearer_auth(bearer)
            .json(review)
            .send()
            .await
            .map_err(|e| Failure::transport(step, &e))?;
        if r.status().is_success() {
            return Ok(());
        }
        let failure = Failure::of_status(step, &r);
        if failure.status == Some(401) {
            // The token was revoked or expired early: the next attempt asks for a new one.
            self.tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&installation);
            return Err(Failure {
                retryable: true,
                ..failure
            });
        }
        Err(failure)
    }

    /// A fresh App JWT; a key that cannot sign is a final failure of `step`.
    fn app_jwt(&self, step: &'static str) -> Result<String, Failure> {
        self.key
            .jwt(&self.app_id, chrono::Utc::now().timestamp())
            .map_err(|why| Failure {
                step,
                status: None,
                why,
                retryable: false,
                retry_after: None,
            })
    }

    /// `GET {api_url}/app` with the App JWT: whether GitHub takes the App's id and key (what
    /// `steward integrations test` checks; it reviews nothing). The App's slug on success.
    pub async fn authenticate(&self) -> Result<String, Failure> {
        let step = "app";
        let jwt = self.app_jwt(step)?;
        let r = self
            .http
            .get(format!("{}/app", self.api_url))
            .header("accept", ACCEPT)
            .header("x-github-api-version", API_VERSION)
            .bearer_auth(jwt)
            .send()
            .await
            .map_err(|e| Failure::transport(step, &e))?;
        if !r.status().is_success() {
            return Err(Failure::of_status(step, &r));
        }
        let body: Value = r.json().await.map_err(|e| Failure::transport(step, &e))?;
        Ok(body["slug"].as_str().unwrap_or_default().to_owned())
    }

    /// `POST {api_url}/app/installations/{id}/access_tokens` with the App JWT; 201 `{token}`.
    async fn installation_token(&self, installation: u64) -> Result<String, Failure> {
        let step = "installation token";
        let jwt = self.app_jwt(step)?;
        let url = format!(
            "{}/app/installations/{installation}/access_tokens",
            self.api_url
        );
        let r = self
            .http
            .post(url)
            .header("accept", ACCEPT)
            .header("x-github-api-version", API_VERSION)
            .bearer_auth(jwt)
            .send()
            .await
            .map_err(|e| Failure::transport(step, &e))?;
        if !r.status().is_success() {
            return Err(Failure::of_status(step, &r));
        }
        let body: Value = r.json().await.map_err(|e| Failure::transport(step, &e))?;
        body["token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or(Failure {
                step,
                status: None,
                why: "GitHub's installation token answer has no token".into(),
                retryable: true,
                retry_after: None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_a_pem_rsa_key_is_refused_without_quoting_it() {
        let err = AppKey::from_pem("hunter2").err().unwrap();
        assert!(!err.contains("hunter2"), "{err}");
        let err = AppKey::from_pem(
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        )
        .err()
        .unwrap();
        assert!(err.contains("EC PRIVATE KEY"), "{err}");
        let err = AppKey::from_pem(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        )
        .err()
        .unwrap();
        assert!(err.contains("not a usable RSA private key"), "{err}");
    }

    #[test]
    fn pkcs1_and_pkcs8_keys_sign_a_three_part_rs256_jwt() {
        for f in ["github-app-test-key.pem", "github-app-test-key.pkcs8.pem"] {
            let pem = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures")
                    .join(f),
            )
            .unwrap();
            let jwt = AppKey::from_pem(&pem)
                .unwrap()
                .jwt("42", 1_700_000_000)
                .unwrap();
            let parts: Vec<&str> = jwt.split('.').collect();
            assert_eq!(parts.len(), 3, "{f}");
            let claims: Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
            assert_eq!(
                claims,
                json!({"iat": 1_699_999_940, "exp": 1_700_000_540, "iss": "42"})
            );
        }
    }
}
