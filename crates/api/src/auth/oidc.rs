//! OpenID Connect for people: tokens (JWT) of the organisation's identity provider.
//!
//! Invariants:
//! - A token is accepted only if it is a JWS signed with an asymmetric algorithm named in the
//!   configuration, by a key the issuer publishes in its JWKS (found through
//!   `/.well-known/openid-configuration`) whose type fits the algorithm; `iss` equals the
//!   configured issuer exactly, `aud` holds a configured audience, `exp` is in the future and
//!   `nbf` (when present) in the past, each with [`OidcConfig::clock_skew`] of tolerance.
//!   `alg: none` and every HMAC algorithm are refused before any key is looked at, so a public
//!   key can never be used as an HMAC secret.
//! - The JWKS is cached; an unknown `kid` refetches it (key rotation), at most once per
//!   [`OidcConfig::jwks_min_refresh`] so that made-up `kid`s cannot make Steward hammer the
//!   issuer. The discovery document is cached for an hour.
//! - A person's principal id is `oidc:<issuer>#<sub>`: stable across sign-ins and namespaced by
//!   the issuer. Roles come from the registry for that id and, when configured, from a groups
//!   claim mapped to roles.
//! - Client secrets are never logged or shown in `Debug` output.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use steward_core::types::{AuthMethod, PrincipalId, Role};
use tokio::sync::{Mutex, RwLock};

use super::Identity;
use crate::error::ApiError;

/// The console's OAuth client at the provider. A confidential client when it has a secret.
#[derive(Clone)]
pub struct ConsoleClient {
    pub client_id: String,
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for ConsoleClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleClient")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// How Steward trusts an OpenID Connect provider.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer URL exactly as the provider's tokens carry it in `iss`.
    pub issuer: String,
    /// Accepted `aud` values (the console's and the CLI's client ids, an API identifier).
    pub audiences: Vec<String>,
    /// Accepted signature algorithms; asymmetric only.
    pub algorithms: Vec<Algorithm>,
    /// A claim listing the person's groups, and which role each group brings.
    pub groups_claim: Option<String>,
    pub group_roles: Vec<(String, Role)>,
    pub clock_skew: Duration,
    pub jwks_min_refresh: Duration,
    /// What the console's button says: "Sign in with <provider_name>".
    pub provider_name: String,
    /// The console's client (authorization code flow); none: no console sign-in through OIDC.
    pub console: Option<ConsoleClient>,
    /// The public client `steward login` uses, published at `GET /v1/auth/oidc`.
    pub cli_client_id: Option<String>,
    /// Scopes the console and the CLI ask for.
    pub scopes: Vec<String>,
    /// The URL people reach Steward at (the console's redirect URI is built on it); none: the
    /// request's own `Host` and `X-Forwarded-Proto`.
    pub public_url: Option<String>,
}

/// Algorithms accepted when the configuration names none.
pub const DEFAULT_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

impl OidcConfig {
    /// A configuration for `issuer` accepting `audiences`, with the defaults: the usual
    /// asymmetric algorithms, 60 s of clock skew, and the console as the first audience.
    pub fn new(issuer: &str, audiences: Vec<String>) -> Result<Self, OidcError> {
        let issuer = issuer.trim().to_owned();
        let url = url::Url::parse(&issuer)
            .map_err(|e| OidcError::Config(format!("issuer {issuer:?} is not a URL: {e}")))?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(OidcError::Config(format!(
                "issuer {issuer} must be https (plain http only on a loopback address)"
            )));
        }
        let audiences: Vec<String> = audiences
            .into_iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        if audiences.is_empty() {
            return Err(OidcError::Config(
                "at least one audience (--oidc-audience) is required".into(),
            ));
        }
        let provider_name = url
            .host_str()
            .unwrap_or("your identity provider")
            .to_owned();
        Ok(Self {
            issuer,
            console: Some(ConsoleClient {
                client_id: audiences[0].clone(),
                client_secret: None,
            }),
            audiences,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            groups_claim: None,
            group_roles: Vec::new(),
            clock_skew: Duration::from_secs(60),
            jwks_min_refresh: Duration::from_secs(10),
            provider_name,
            cli_client_id: None,
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            public_url: None,
        })
    }

    /// Parses `names` (e.g. `RS256,ES256`) as the accepted algorithms; HMAC and `none` are
    /// refused here, at start-up, not per token.
    pub fn with_algorithms(mut self, names: &[String]) -> Result<Self, OidcError> {
        let mut algorithms = Vec::new();
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            let alg: Algorithm = name
                .parse()
                .map_err(|_| OidcError::Config(format!("unknown algorithm {name:?}")))?;
            if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
                return Err(OidcError::Config(format!(
                    "{name} is a shared-secret algorithm; an OpenID provider's tokens are verified with its public keys"
                )));
            }
            algorithms.push(alg);
        }
        if !algorithms.is_empty() {
            self.algorithms = algorithms;
        }
        Ok(self)
    }

    /// Parses `GROUP=ROLE` pairs.
    pub fn with_group_roles(
        mut self,
        claim: Option<String>,
        pairs: &[String],
    ) -> Result<Self, OidcError> {
        self.groups_claim = claim.filter(|c| !c.trim().is_empty());
        for pair in pairs.iter().filter(|p| !p.trim().is_empty()) {
            let (group, role) = pair.split_once('=').ok_or_else(|| {
                OidcError::Config(format!("group role {pair:?} is not GROUP=ROLE"))
            })?;
            let role = Role::parse(role.trim()).map_err(|e| OidcError::Config(e.message))?;
            self.group_roles.push((group.trim().to_owned(), role));
        }
        if !self.group_roles.is_empty() && self.groups_claim.is_none() {
            self.groups_claim = Some("groups".into());
        }
        Ok(self)
    }
}

/// Why a token or the provider was refused.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("invalid OpenID Connect configuration: {0}")]
    Config(String),
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("the token's algorithm {0:?} is not accepted (accepted: asymmetric signatures configured for this provider; never `none` or HMAC)")]
    Algorithm(String),
    #[error("the token was signed by a key (kid {0:?}) that the issuer does not publish")]
    UnknownKey(String),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued by another issuer (expected {0})")]
    Issuer(String),
    #[error("the token is meant for another audience (accepted: {0})")]
    Audience(String),
    #[error("the token lacks the claim {0:?}")]
    MissingClaim(String),
    #[error("the token's nonce is not the one this sign-in sent")]
    Nonce,
    #[error("the identity provider could not be reached or answered badly: {0}")]
    Provider(String),
}

impl OidcError {
    /// The API's answer: 401 naming the reason; 503 when the provider could not be asked.
    pub fn into_api(self) -> ApiError {
        match self {
            OidcError::Provider(_) | OidcError::Config(_) => ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "identity_provider_unavailable",
                self.to_string(),
            ),
            other => ApiError::unauthenticated(format!("OIDC token refused: {other}"), true),
        }
    }
}

/// The parts of the discovery document Steward uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

struct KeySet {
    keys: HashMap<String, (DecodingKey, Jwk)>,
    fetched: Option<Instant>,
}

/// Verifies the configured provider's tokens; cheap to share (`Arc`) across requests.
pub struct OidcVerifier {
    pub config: OidcConfig,
    http: reqwest::Client,
    discovery: RwLock<Option<(Discovery, Instant)>>,
    keys: RwLock<KeySet>,
    refreshing: Mutex<()>,
}

const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

impl OidcVerifier {
    pub fn new(config: OidcConfig) -> Result<Self, OidcError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| OidcError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            config,
            http,
            discovery: RwLock::new(None),
            keys: RwLock::new(KeySet {
                keys: HashMap::new(),
                fetched: None,
            }),
            refreshing: Mutex::new(()),
        })
    }

    /// The HTTP client the console's token exchange uses (same timeouts).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    async fn get_json(&self, url: &str) -> Result<Value, OidcError> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("GET {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(OidcError::Provider(format!(
                "GET {url}: HTTP {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("GET {url}: {e}")))
    }

    /// The provider's discovery document (cached), checked to name the configured issuer.
    pub async fn discovery(&self) -> Result<Discovery, OidcError> {
        if let Some((d, at)) = self.discovery.read().await.as_ref() {
            if at.elapsed() < DISCOVERY_TTL {
                return Ok(d.clone());
            }
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let d: Discovery = serde_json::from_value(self.get_json(&url).await?)
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        if d.issuer != self.config.issuer {
            return Err(OidcError::Provider(format!(
                "{url} names issuer {:?}, not the configured {:?}",
                d.issuer, self.config.issuer
            )));
        }
        *self.discovery.write().await = Some((d.clone(), Instant::now()));
        Ok(d)
    }

    /// Fetches the JWKS again unless it was fetched less than `jwks_min_refresh` ago.
    async fn refresh_keys(&self) -> Result<(), OidcError> {
        let _one_at_a_time = self.refreshing.lock().await;
        if let Some(at) = self.keys.read().await.fetched {
            if at.elapsed() < self.config.jwks_min_refresh {
                return Ok(());
            }
        }
        let uri = self.discovery().await?.jwks_uri;
        let set = self.get_json(&uri).await?;
        let mut keys = HashMap::new();
        for raw in set["keys"].as_array().into_iter().flatten() {
            // One key Steward cannot use (another type, an encryption key) must not hide the
            // others, so keys are read one by one.
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
                continue;
            };
            let usable = !matches!(
                jwk.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
            ) && raw.get("use").is_none_or(|u| u == "sig");
            if !usable {
                continue;
            }
            if let Ok(key) = DecodingKey::from_jwk(&jwk) {
                let kid = jwk.common.key_id.clone().unwrap_or_default();
                keys.insert(kid, (key, jwk));
            }
        }
        tracing::info!(issuer = %self.config.issuer, keys = keys.len(), "fetched the OIDC provider's JWKS");
        *self.keys.write().await = KeySet {
            keys,
            fetched: Some(Instant::now()),
        };
        Ok(())
    }

    async fn key(&self, kid: &str) -> Option<(DecodingKey, Jwk)> {
        let keys = self.keys.read().await;
        if let Some(k) = keys.keys.get(kid) {
            return Some(k.clone());
        }
        // A token without `kid` is accepted only when the issuer publishes a single key.
        if kid.is_empty() && keys.keys.len() == 1 {
            return keys.keys.values().next().cloned();
        }
        None
    }

    /// Verifies `token` and returns its claims; `nonce`, when given, must match the token's.
    pub async fn verify(
        &self,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, OidcError> {
        let header = raw_header(token)?;
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::Malformed("the header has no alg".into()))?;
        let alg: Algorithm = alg_name
            .parse()
            .map_err(|_| OidcError::Algorithm(alg_name.to_owned()))?;
        if !self.config.algorithms.contains(&alg) {
            return Err(OidcError::Algorithm(alg_name.to_owned()));
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (key, jwk) = match self.key(&kid).await {
            Some(k) => k,
            None => {
                self.refresh_keys().await?;
                self.key(&kid)
                    .await
                    .ok_or_else(|| OidcError::UnknownKey(kid.clone()))?
            }
        };
        if let Some(key_alg) = jwk.common.key_algorithm {
            if key_alg.to_string() != alg_name {
                return Err(OidcError::Algorithm(alg_name.to_owned()));
            }
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&self.config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.config.clock_skew.as_secs();
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| self.refusal(e))?;
        let claims = data.claims;
        if let Some(expected) = nonce {
            if claims.get("nonce").and_then(Value::as_str) != Some(expected) {
                return Err(OidcError::Nonce);
            }
        }
        Ok(claims)
    }

    fn refusal(&self, e: jsonwebtoken::errors::Error) -> OidcError {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::ExpiredSignature => OidcError::Expired,
            K::ImmatureSignature => OidcError::NotYetValid,
            K::InvalidIssuer => OidcError::Issuer(self.config.issuer.clone()),
            K::InvalidAudience => OidcError::Audience(self.config.audiences.join(", ")),
            K::InvalidSignature | K::Crypto(_) => OidcError::Signature,
            K::InvalidAlgorithm | K::InvalidAlgorithmName => {
                OidcError::Algorithm("(does not fit the key)".into())
            }
            K::MissingRequiredClaim(c) => OidcError::MissingClaim(c.clone()),
            other => OidcError::Malformed(format!("{other:?}")),
        }
    }

    /// The identity `claims` (already verified) prove.
    pub fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, OidcError> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| OidcError::MissingClaim("sub".into()))?;
        let id = PrincipalId::parse(&format!("oidc:{}#{sub}", self.config.issuer))
            .map_err(|e| OidcError::Malformed(e.message))?;
        let mut asserted_roles = Vec::new();
        if let Some(claim) = &self.config.groups_claim {
            let groups: Vec<&str> = match claims.get(claim) {
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                Some(Value::String(s)) => s.split([',', ' ']).collect(),
                _ => Vec::new(),
            };
            for (group, role) in &self.config.group_roles {
                if groups.contains(&group.as_str()) {
                    asserted_roles.push(*role);
                }
            }
        }
        Ok(Identity {
            asserted_roles,
            ..Identity::plain(id, AuthMethod::Oidc)
        })
    }

    /// Verifies a bearer token and answers its identity, or the API's 401.
    pub async fn authenticate_token(&self, token: &str) -> Result<Identity, ApiError> {
        let claims = self.verify(token, None).await.map_err(|e| {
            tracing::info!(reason = %e, "OIDC token refused");
            e.into_api()
        })?;
        self.identity(&claims).map_err(OidcError::into_api)
    }
}

/// The JOSE header of a compact JWS, parsed by hand so that `alg: none` (which the JWT
/// library cannot even represent) is named in the refusal.
fn raw_header(token: &str) -> Result<Map<String, Value>, OidcError> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OidcError::Malformed(
            "expected header.payload.signature".into(),
        ));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|e| OidcError::Malformed(format!("header: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| OidcError::Malformed(format!("header: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_refuses_hmac_algorithms_plain_http_issuers_and_no_audience() {
        let ok = OidcConfig::new("https://login.example.com", vec!["steward".into()]).unwrap();
        assert!(ok.with_algorithms(&["HS256".into()]).is_err());
        assert!(OidcConfig::new("http://login.example.com", vec!["a".into()]).is_err());
        assert!(OidcConfig::new("http://127.0.0.1:9000", vec!["a".into()]).is_ok());
        assert!(OidcConfig::new("https://login.example.com", vec![" ".into()]).is_err());
    }

    #[test]
    fn group_roles_map_group_names_to_roles() {
        let c = OidcConfig::new("https://idp.example.com", vec!["steward".into()])
            .unwrap()
            .with_group_roles(None, &["ml-reviewers=technical-reviewer".into()])
            .unwrap();
        assert_eq!(c.groups_claim.as_deref(), Some("groups"));
        let v = OidcVerifier::new(c).unwrap();
        let claims: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "sub": "u-1", "groups": ["ml-reviewers", "other"]
        }))
        .unwrap();
        let id = v.identity(&claims).unwrap();
        assert_eq!(id.id.as_ref(), "oidc:https://idp.example.com#u-1");
        assert_eq!(id.asserted_roles, [Role::TechnicalReviewer]);
        assert!(OidcConfig::new("https://idp.example.com", vec!["s".into()])
            .unwrap()
            .with_group_roles(None, &["ml=no-such-role".into()])
            .is_err());
    }

    #[test]
    fn a_none_or_hmac_header_is_refused_before_any_key_is_fetched() {
        let v = OidcVerifier::new(
            OidcConfig::new("https://idp.invalid", vec!["steward".into()]).unwrap(),
        )
        .unwrap();
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for alg in ["none", "HS256"] {
            let token = format!(
                "{}.{}.sig",
                b64(serde_json::json!({"alg": alg, "typ": "JWT"})),
                b64(serde_json::json!({"sub": "x"}))
            );
            let e = rt.block_on(v.verify(&token, None)).unwrap_err();
            assert!(matches!(e, OidcError::Algorithm(ref a) if a == alg), "{e}");
        }
    }
}
