//! Authentication: who is calling, established from the request's credentials only.
//!
//! Invariants: an [`Authenticator`] answers a [`PrincipalId`] or a 401; it never trusts an
//! identity named in a body, query or custom header. Roles are not part of a credential: they
//! are read from the registry (`PrincipalRecord`) for every request, so a role an admin
//! removes stops working at once.

use std::collections::HashMap;

use async_trait::async_trait;
use axum::http::{header, request::Parts};
use steward_core::types::{PrincipalId, Sha256};

use crate::error::ApiError;

/// Establishes the calling principal from a request's credentials.
#[async_trait]
pub trait Authenticator: Send + Sync {
    async fn authenticate(&self, parts: &Parts) -> Result<PrincipalId, ApiError>;
}

/// Local mode: `Authorization: Bearer <token>`, checked against the SHA-256 of each
/// principal's token (the principals file stores hashes, never tokens).
#[derive(Clone, Default)]
pub struct BearerTokens {
    by_hash: HashMap<[u8; 32], PrincipalId>,
}

impl std::fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Token hashes are credentials material; show only who is known.
        let mut ids: Vec<&str> = self.by_hash.values().map(AsRef::as_ref).collect();
        ids.sort_unstable();
        f.debug_struct("BearerTokens")
            .field("principals", &ids)
            .finish()
    }
}

impl BearerTokens {
    /// Builds the table from `(principal, SHA-256 of its token)` pairs.
    pub fn new(entries: impl IntoIterator<Item = (PrincipalId, Sha256)>) -> Self {
        Self {
            by_hash: entries
                .into_iter()
                .map(|(id, hash)| (*hash.bytes(), id))
                .collect(),
        }
    }

    /// The principal holding `token`, if any. The lookup is keyed by the token's SHA-256, so
    /// its timing reveals nothing about any stored token.
    pub fn lookup(&self, token: &str) -> Option<&PrincipalId> {
        self.by_hash.get(Sha256::digest(token.as_bytes()).bytes())
    }
}

/// Extracts the token of an `Authorization: Bearer <token>` header.
fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
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

#[async_trait]
impl Authenticator for BearerTokens {
    async fn authenticate(&self, parts: &Parts) -> Result<PrincipalId, ApiError> {
        let token = bearer_token(parts)?;
        self.lookup(token)
            .cloned()
            .ok_or_else(|| ApiError::unauthenticated("unknown or revoked token", true))
    }
}

/// The caller's IAM ARN as the Lambda adapter found it in the API Gateway request context
/// (`requestContext.authorizer.iam.userArn`), inserted as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContextArn(pub String);

/// AWS mode: API Gateway has already verified the SigV4 signature; the principal is the ARN
/// the adapter copied from the request context. A request without it never came through an
/// IAM-authorized route and is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct IamCallerArn;

#[async_trait]
impl Authenticator for IamCallerArn {
    async fn authenticate(&self, parts: &Parts) -> Result<PrincipalId, ApiError> {
        let arn = parts.extensions.get::<RequestContextArn>().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the request carries no IAM identity",
            )
        })?;
        PrincipalId::parse(&arn.0).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthenticated",
                e.message,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(auth: Option<&str>) -> Parts {
        let mut b = Request::builder().uri("/v1/models");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn tokens() -> BearerTokens {
        BearerTokens::new([(
            PrincipalId::parse("alice").unwrap(),
            Sha256::digest(b"alice-token"),
        )])
    }

    #[tokio::test]
    async fn a_known_token_authenticates_its_principal() {
        let id = tokens()
            .authenticate(&parts(Some("Bearer alice-token")))
            .await
            .unwrap();
        assert_eq!(id.as_ref(), "alice");
        let id = tokens()
            .authenticate(&parts(Some("bearer alice-token")))
            .await
            .unwrap();
        assert_eq!(id.as_ref(), "alice");
    }

    #[tokio::test]
    async fn missing_malformed_and_unknown_tokens_are_401_with_a_challenge() {
        for auth in [
            None,
            Some("alice-token"),
            Some("Basic YWxpY2U6eA=="),
            Some("Bearer "),
            Some("Bearer alice-token extra"),
            Some("Bearer someone-else"),
        ] {
            let err = tokens().authenticate(&parts(auth)).await.unwrap_err();
            assert_eq!(err.status, 401, "{auth:?}");
            assert!(
                err.headers
                    .iter()
                    .any(|(n, v)| n == header::WWW_AUTHENTICATE
                        && v.to_str().unwrap().starts_with("Bearer")),
                "{auth:?}"
            );
        }
    }

    #[test]
    fn debug_output_names_principals_but_no_hashes() {
        let s = format!("{:?}", tokens());
        assert!(s.contains("alice"));
        assert!(!s.contains(&Sha256::digest(b"alice-token").to_hex()));
    }

    #[tokio::test]
    async fn the_iam_authenticator_reads_the_adapter_extension_only() {
        let mut p = parts(Some("Bearer alice-token"));
        assert_eq!(IamCallerArn.authenticate(&p).await.unwrap_err().status, 401);
        p.extensions.insert(RequestContextArn(
            "arn:aws:iam::123456789012:user/alice".into(),
        ));
        let id = IamCallerArn.authenticate(&p).await.unwrap();
        assert_eq!(id.as_ref(), "arn:aws:iam::123456789012:user/alice");
    }
}
