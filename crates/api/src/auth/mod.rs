//! Authentication: who is calling, established from the request's credentials only.
//!
//! Invariants:
//! - An [`Authenticator`] answers an [`Identity`] or a 401; it never trusts an identity named in
//!   a body, query or custom header.
//! - Bearer tokens of the principals file, OpenID Connect tokens and IAM signatures all end in
//!   the same [`Identity`], and through [`caller`] in the same core `Caller`: core does not know
//!   which was used, except that the audit log records the method.
//! - Roles are not part of a credential, with one configured exception: they are read from the
//!   registry (`PrincipalRecord`) for every request — for the identity and for each of its
//!   `grants` (the role of an assumed-role session) — so a role an admin removes stops working
//!   at once. The exception is an OIDC groups claim mapped to roles in configuration, which
//!   the organisation's identity provider asserts in a signed token.

use async_trait::async_trait;
use axum::http::{header, request::Parts};
use steward_core::ports::Caller;
use steward_core::types::{AuthMethod, PrincipalId, Role};

use crate::error::ApiError;

mod iam;
pub mod oidc;
mod settings;
mod tokens;

pub use iam::{session_grants, IamCallerArn, RequestContextArn};
pub use oidc::{OidcConfig, OidcError, OidcVerifier};
pub use settings::OidcSettings;
pub use tokens::BearerTokens;

/// Who a request's credentials prove the caller to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The acting identity: the audit log's actor, what separation of duties compares.
    pub id: PrincipalId,
    /// Further principals whose role grants apply to this identity (for an IAM assumed-role
    /// session: the role's ARN), looked up like `id`'s own.
    pub grants: Vec<PrincipalId>,
    /// Roles the credential itself carries (an OIDC groups claim mapped in configuration).
    pub asserted_roles: Vec<Role>,
    pub method: AuthMethod,
}

impl Identity {
    /// An identity with no grants or asserted roles.
    pub fn plain(id: PrincipalId, method: AuthMethod) -> Self {
        Self {
            id,
            grants: Vec::new(),
            asserted_roles: Vec::new(),
            method,
        }
    }
}

/// Establishes the calling principal from a request's credentials.
#[async_trait]
pub trait Authenticator: Send + Sync {
    async fn authenticate(&self, parts: &Parts) -> Result<Identity, ApiError>;

    /// The OpenID Connect provider people sign in with, when one is configured (the console's
    /// "Sign in with ..." and `GET /v1/auth/oidc` need it).
    fn oidc(&self) -> Option<&OidcVerifier> {
        None
    }

    /// Whether bearer tokens of a principals file are accepted (the console then offers the
    /// token form).
    fn accepts_tokens(&self) -> bool {
        false
    }
}

/// The roles `identity` holds now: the registry's for its id and every grant, and those its
/// credential asserts; sorted, without duplicates.
pub async fn caller(
    registry: &dyn steward_core::ports::Registry,
    identity: &Identity,
) -> Result<Caller, steward_core::error::StoreError> {
    let mut roles = identity.asserted_roles.clone();
    for id in std::iter::once(&identity.id).chain(&identity.grants) {
        if let Some(p) = registry.principal(id).await? {
            roles.extend(p.roles);
        }
    }
    roles.sort();
    roles.dedup();
    Ok(Caller::new(identity.id.clone(), roles, identity.method))
}

/// Extracts the token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("send Authorization: Bearer <token>", false))?;
    let malformed = || {
        ApiError::unauthenticated(
            "the Authorization header is not of the form `Bearer <token>`",
            true,
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(malformed());
    }
    Ok(token)
}

/// Whether `token` has the shape of a compact JWS (`header.payload.signature`, the signature
/// possibly empty as in an `alg: none` token, which the verifier then refuses by name): such a
/// bearer token is an OpenID Connect token, anything else a principals-file token.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3 && !parts[0].is_empty() && !parts[1].is_empty()
}

/// Every way in a deployment accepts, tried in a fixed order: the IAM identity API Gateway
/// put in the request context (AWS), then the bearer token — an OIDC token when it is a JWT
/// and a provider is configured, else a principals-file token.
#[derive(Default)]
pub struct Authenticators {
    pub tokens: Option<BearerTokens>,
    pub oidc: Option<OidcVerifier>,
    pub iam: bool,
}

#[async_trait]
impl Authenticator for Authenticators {
    async fn authenticate(&self, parts: &Parts) -> Result<Identity, ApiError> {
        if self.iam && parts.extensions.get::<RequestContextArn>().is_some() {
            return IamCallerArn.authenticate(parts).await;
        }
        let token = bearer_token(parts)?;
        match (&self.oidc, &self.tokens) {
            (Some(oidc), _) if looks_like_jwt(token) => oidc.authenticate_token(token).await,
            (_, Some(tokens)) => tokens.authenticate(parts).await,
            _ if self.iam && self.oidc.is_none() => Err(ApiError::unauthenticated(
                "sign the request with SigV4 (IAM)",
                false,
            )),
            _ => Err(ApiError::unauthenticated(
                "that token is not an OpenID Connect token of the configured provider",
                true,
            )),
        }
    }

    fn oidc(&self) -> Option<&OidcVerifier> {
        self.oidc.as_ref()
    }

    fn accepts_tokens(&self) -> bool {
        self.tokens.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_non_empty_dot_separated_parts_look_like_a_jwt() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(looks_like_jwt("a.b."), "an unsigned (alg: none) token");
        for t in ["abc", "a.b", "a..c", "a.b.c.d", ".b.c"] {
            assert!(!looks_like_jwt(t), "{t}");
        }
    }
}
