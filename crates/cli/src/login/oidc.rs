//! The OpenID Connect side of `steward login`: the provider's discovery document, the
//! authorization request (code flow with PKCE S256, `state` and `nonce`), the code and
//! refresh-token exchanges of a public client, and the checks of the ID token's claims.
//!
//! Invariants: the discovery document must name exactly the configured issuer; an ID token is
//! accepted only with the expected `iss`, an `aud` that contains the client id (and `azp`
//! equal to it when several audiences are named), the request's `nonce` and an `exp` in the
//! future. The token's signature is not checked here: the server verifies it against the
//! provider's keys on every call, and the CLI only carries the token (a forged one gains
//! nothing but 401s). No secret is ever sent: the client proves itself with `code_verifier`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Seconds an ID token may be past `exp` on our clock (clock skew between us and the provider).
const EXP_LEEWAY_SECONDS: i64 = 30;

/// The part of a provider's `/.well-known/openid-configuration` the CLI uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
}

/// Fetches the discovery document of `issuer` and checks that it names `issuer` exactly.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> anyhow::Result<Metadata> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let resp = http
        .get(&url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the identity provider at {url}: {e}"))?;
    if !resp.status().is_success() {
        anyhow::bail!("{url} answered {}", resp.status());
    }
    let meta: Metadata = resp
        .json()
        .await
        .map_err(|e| anyhow::anyhow!("{url} is not an OpenID Connect discovery document: {e}"))?;
    if meta.issuer != issuer {
        anyhow::bail!(
            "the identity provider at {url} says its issuer is {:?}, not {issuer:?}",
            meta.issuer
        );
    }
    if !meta.code_challenge_methods_supported.is_empty()
        && !meta
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    {
        anyhow::bail!("the identity provider {issuer} does not support PKCE with S256");
    }
    Ok(meta)
}

/// 32 random bytes (a CSPRNG), URL-safe: 43 characters.
fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The secrets of one authorization request, kept until its redirect comes back.
pub struct Request {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub redirect_uri: String,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// Fresh `state`, `nonce` and PKCE verifier (32 random bytes each, RFC 7636 §4.1).
    pub fn new(redirect_uri: String) -> Self {
        Self {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
            redirect_uri,
        }
    }

    /// The S256 code challenge of the verifier.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }

    /// The URL the person opens to sign in.
    pub fn authorize_url(
        &self,
        meta: &Metadata,
        client_id: &str,
        scopes: &[String],
    ) -> anyhow::Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&meta.authorization_endpoint).map_err(|e| {
            anyhow::anyhow!(
                "the authorization endpoint {:?} is not a URL: {e}",
                meta.authorization_endpoint
            )
        })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &self.state)
            .append_pair("nonce", &self.nonce)
            .append_pair("code_challenge", &self.challenge())
            .append_pair("code_challenge_method", "S256");
        Ok(url)
    }
}

/// What the token endpoint answers.
#[derive(Deserialize)]
pub struct Tokens {
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
}

async fn token_call(
    http: &reqwest::Client,
    meta: &Metadata,
    form: &[(&str, &str)],
) -> anyhow::Result<Tokens> {
    let resp = http
        .post(&meta.token_endpoint)
        .form(form)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the token endpoint: {}", e.without_url()))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
        anyhow::bail!(
            "the identity provider refused the token request ({status}): {} {}",
            text("error"),
            text("error_description")
        );
    }
    serde_json::from_value(body)
        .map_err(|e| anyhow::anyhow!("the token endpoint's answer is not a token response: {e}"))
}

/// Exchanges an authorization code (public client: `client_id` and `code_verifier`, no secret).
pub async fn exchange_code(
    http: &reqwest::Client,
    meta: &Metadata,
    client_id: &str,
    request: &Request,
    code: &str,
) -> anyhow::Result<Tokens> {
    token_call(
        http,
        meta,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &request.redirect_uri),
            ("client_id", client_id),
            ("code_verifier", &request.verifier),
        ],
    )
    .await
}

/// Trades a refresh token for fresh tokens.
pub async fn refresh(
    http: &reqwest::Client,
    meta: &Metadata,
    client_id: &str,
    refresh_token: &str,
) -> anyhow::Result<Tokens> {
    token_call(
        http,
        meta,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ],
    )
    .await
}

/// The claims of an ID token the CLI reads.
#[derive(Debug, Clone)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub exp: DateTime<Utc>,
    raw: Value,
}

impl Claims {
    /// Decodes the payload of a compact JWT (without checking its signature; see the module).
    pub fn decode(id_token: &str) -> anyhow::Result<Self> {
        let mut parts = id_token.split('.');
        let (Some(_header), Some(payload), Some(_sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            anyhow::bail!("the ID token is not a JWT");
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| anyhow::anyhow!("the ID token's payload is not base64url"))?;
        let raw: Value = serde_json::from_slice(&bytes)
            .map_err(|_| anyhow::anyhow!("the ID token's payload is not JSON"))?;
        let text = |k: &str| {
            raw[k]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("the ID token has no {k:?} claim"))
        };
        let exp = raw["exp"]
            .as_i64()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .ok_or_else(|| anyhow::anyhow!("the ID token has no valid \"exp\" claim"))?;
        Ok(Self {
            iss: text("iss")?,
            sub: text("sub")?,
            exp,
            raw,
        })
    }

    /// The audiences (`aud` is a string or an array of them).
    pub fn audiences(&self) -> Vec<&str> {
        match &self.raw["aud"] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Checks `iss`, `aud` (and `azp`), `exp` and, for a fresh sign-in, `nonce`.
    pub fn check(&self, issuer: &str, client_id: &str, nonce: Option<&str>) -> anyhow::Result<()> {
        if self.iss != issuer {
            anyhow::bail!("the ID token was issued by {:?}, not {issuer:?}", self.iss);
        }
        let aud = self.audiences();
        if !aud.contains(&client_id) {
            anyhow::bail!("the ID token is not meant for {client_id:?} (aud {aud:?})");
        }
        if aud.len() > 1 && self.raw["azp"].as_str() != Some(client_id) {
            anyhow::bail!(
                "the ID token names several audiences but was not issued to {client_id:?}"
            );
        }
        if let Some(nonce) = nonce {
            if self.raw["nonce"].as_str() != Some(nonce) {
                anyhow::bail!("the ID token does not carry this sign-in's nonce");
            }
        }
        if self.exp + chrono::Duration::seconds(EXP_LEEWAY_SECONDS) <= Utc::now() {
            anyhow::bail!("the ID token expired at {}", self.exp);
        }
        Ok(())
    }

    /// The Steward principal id of the person: `oidc:<issuer>#<sub>`.
    pub fn principal(&self) -> String {
        format!("oidc:{}#{}", self.iss, self.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(claims: Value) -> String {
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", enc(&json!({"alg": "RS256"})), enc(&claims))
    }

    fn claims(extra: Value) -> Claims {
        let mut c = json!({"iss": "https://id.example", "sub": "alice", "aud": "steward-cli",
            "nonce": "n1", "exp": Utc::now().timestamp() + 600});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        Claims::decode(&jwt(c)).unwrap()
    }

    #[test]
    fn the_pkce_challenge_is_the_s256_of_the_verifier() {
        // RFC 7636, appendix B.
        let r = Request {
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            state: String::new(),
            nonce: String::new(),
            redirect_uri: String::new(),
        };
        assert_eq!(r.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn an_id_token_for_this_sign_in_is_accepted() {
        let c = claims(json!({}));
        c.check("https://id.example", "steward-cli", Some("n1"))
            .unwrap();
        assert_eq!(c.principal(), "oidc:https://id.example#alice");
        claims(json!({"aud": ["steward-cli", "x"], "azp": "steward-cli"}))
            .check("https://id.example", "steward-cli", Some("n1"))
            .unwrap();
    }

    #[test]
    fn an_id_token_with_a_wrong_claim_is_refused() {
        let ok = ("https://id.example", "steward-cli", Some("n1"));
        for (extra, why) in [
            (json!({"iss": "https://evil.example"}), "issued by"),
            (json!({"aud": "other-app"}), "not meant for"),
            (
                json!({"aud": ["steward-cli", "other-app"]}),
                "several audiences",
            ),
            (json!({"nonce": "replayed"}), "nonce"),
            (json!({"exp": Utc::now().timestamp() - 120}), "expired"),
        ] {
            let err = claims(extra.clone()).check(ok.0, ok.1, ok.2).unwrap_err();
            assert!(err.to_string().contains(why), "{extra}: {err}");
        }
        assert!(Claims::decode("not-a-jwt").is_err());
    }
}
