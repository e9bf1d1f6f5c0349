//! IAM callers (AWS): API Gateway has verified the SigV4 signature and names the caller in the
//! request context; the Lambda adapter copies that ARN into a [`RequestContextArn`] extension.
//!
//! Invariants:
//! - A request without the extension never came through an IAM-authorized route and gets no
//!   IAM identity.
//! - The acting identity is the exact caller ARN. For an assumed-role session
//!   (`arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/SESSION`) that is the session, so the audit
//!   log and separation of duties see the person or workload behind it (for IAM Identity
//!   Center the session name is the person's user name), while roles granted to the role
//!   itself, `arn:PARTITION:iam::ACCOUNT:role/NAME`, apply to every session of it. STS session
//!   ARNs do not carry the role's path, so grants name the role without its path.

use async_trait::async_trait;
use axum::http::{request::Parts, StatusCode};
use steward_core::types::{AuthMethod, PrincipalId};

use super::{Authenticator, Identity};
use crate::error::ApiError;

/// The caller's IAM ARN as the Lambda adapter found it in the API Gateway request context
/// (`requestContext.authorizer.iam.userArn`), inserted as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContextArn(pub String);

/// AWS mode: the principal is the ARN the adapter copied from the request context, with the
/// role of an assumed-role session as a grant.
#[derive(Debug, Clone, Copy, Default)]
pub struct IamCallerArn;

fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
}

/// The principals whose role grants apply to caller `arn` besides itself: for an assumed-role
/// session, its role's ARN; for anything else, none.
pub fn session_grants(arn: &str) -> Vec<PrincipalId> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("sts"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Vec::new();
    };
    let Some(rest) = resource.strip_prefix("assumed-role/") else {
        return Vec::new();
    };
    match rest.split_once('/') {
        Some((role, session)) if !role.is_empty() && !session.is_empty() => {
            PrincipalId::parse(&format!("arn:{partition}:iam::{account}:role/{role}"))
                .into_iter()
                .collect()
        }
        _ => Vec::new(),
    }
}

#[async_trait]
impl Authenticator for IamCallerArn {
    async fn authenticate(&self, parts: &Parts) -> Result<Identity, ApiError> {
        let arn = parts
            .extensions
            .get::<RequestContextArn>()
            .ok_or_else(|| unauthenticated("the request carries no IAM identity"))?;
        let id = PrincipalId::parse(&arn.0).map_err(|e| unauthenticated(e.message))?;
        Ok(Identity {
            grants: session_grants(&arn.0),
            ..Identity::plain(id, AuthMethod::Iam)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, Request};

    #[tokio::test]
    async fn the_iam_authenticator_reads_the_adapter_extension_only() {
        let (mut p, ()) = Request::builder()
            .header(header::AUTHORIZATION, "Bearer alice-token")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(IamCallerArn.authenticate(&p).await.unwrap_err().status, 401);
        p.extensions.insert(RequestContextArn(
            "arn:aws:iam::123456789012:user/alice".into(),
        ));
        let id = IamCallerArn.authenticate(&p).await.unwrap();
        assert_eq!(id.id.as_ref(), "arn:aws:iam::123456789012:user/alice");
        assert_eq!(id.method, AuthMethod::Iam);
        assert!(
            id.grants.is_empty(),
            "an IAM user has no role to inherit from"
        );
    }

    #[test]
    fn an_assumed_role_session_is_granted_its_roles_role_without_the_path() {
        let grants = |arn: &str| -> Vec<String> {
            session_grants(arn)
                .into_iter()
                .map(|p| p.to_string())
                .collect()
        };
        assert_eq!(
            grants("arn:aws:sts::123456789012:assumed-role/ml-review/alice@example.com"),
            ["arn:aws:iam::123456789012:role/ml-review"]
        );
        assert_eq!(
            grants("arn:aws-cn:sts::123456789012:assumed-role/AWSReservedSSO_Rev_0a1b/bob"),
            ["arn:aws-cn:iam::123456789012:role/AWSReservedSSO_Rev_0a1b"]
        );
        for arn in [
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:role/ml-review",
            "arn:aws:sts::123456789012:federated-user/alice",
            "arn:aws:sts::123456789012:assumed-role/ml-review",
            "arn:aws:sts::123456789012:assumed-role//alice",
            "not-an-arn",
        ] {
            assert!(grants(arn).is_empty(), "{arn}");
        }
    }
}
