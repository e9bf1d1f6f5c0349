//! Bearer tokens of the principals file (`steward serve`).
//!
//! Invariants: the table holds SHA-256 hashes of tokens, never tokens; a lookup is keyed by the
//! presented token's hash, so its timing reveals nothing about any stored token.

use std::collections::HashMap;

use async_trait::async_trait;
use axum::http::request::Parts;
use steward_core::types::{AuthMethod, PrincipalId, Sha256};

use super::{bearer_token, Authenticator, Identity};
use crate::error::ApiError;

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

#[async_trait]
impl Authenticator for BearerTokens {
    async fn authenticate(&self, parts: &Parts) -> Result<Identity, ApiError> {
        let token = bearer_token(parts)?;
        self.lookup(token)
            .cloned()
            .map(|id| Identity::plain(id, AuthMethod::Token))
            .ok_or_else(|| ApiError::unauthenticated("unknown or revoked token", true))
    }

    fn accepts_tokens(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, Request};

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
        assert_eq!(id.id.as_ref(), "alice");
        assert_eq!(id.method, AuthMethod::Token);
        let id = tokens()
            .authenticate(&parts(Some("bearer alice-token")))
            .await
            .unwrap();
        assert_eq!(id.id.as_ref(), "alice");
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
}
