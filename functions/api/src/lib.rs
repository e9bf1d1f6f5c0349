//! The API Lambda's adapter: its authenticators, and one step before the router.
//!
//! The step: API Gateway (HTTP API, IAM authorization) has verified
//! the caller's SigV4 signature and names the caller in the request context; this copies that
//! ARN into the [`RequestContextArn`] extension that `steward_api`'s [`IamCallerArn`]
//! authenticator reads. A request without it (no IAM authorizer on the route) carries no
//! extension, and the router answers 401.
//!
//! [`IamCallerArn`]: steward_api::IamCallerArn

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use std::sync::Arc;

use steward_api::{
    router_with_sessions, AppState, Authenticators, OidcSettings, OidcVerifier, RequestContextArn,
};
use steward_aws::env::{AwsEnv, OidcEnv};
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::Failure;
use steward_aws::ssm;
use steward_core::webhooks::RetrySchedule;
use steward_integrations::Deliverer;

/// How the API function authenticates: IAM (the machine API's SigV4, verified by API Gateway)
/// and, when `STEWARD_OIDC_ISSUER` is set, OpenID Connect tokens of people (the people API's
/// JWT authorizer checked them too; the function verifies them again, so a route that lacked
/// the authorizer would still admit no one unverified). No principals-file tokens on AWS.
/// `client_secret` is the console's OIDC client secret, read from SSM at cold start.
pub fn authenticators(
    oidc: &OidcEnv,
    client_secret: Option<String>,
) -> Result<Authenticators, lambda_http::Error> {
    let settings = OidcSettings {
        issuer: oidc.issuer.clone(),
        audiences: oidc.audiences.clone(),
        algorithms: oidc.algorithms.clone(),
        console_client_id: oidc.console_client_id.clone(),
        console_client_secret: client_secret,
        cli_client_id: oidc.cli_client_id.clone(),
        groups_claim: oidc.groups_claim.clone(),
        group_roles: oidc
            .group_roles
            .iter()
            .map(|(group, role)| format!("{group}={}", role.as_str()))
            .collect(),
        provider_name: oidc.provider_name.clone(),
        public_url: oidc.public_url.clone(),
        scopes: oidc.scopes.clone(),
    };
    let oidc = match settings.build()? {
        Some(config) => Some(OidcVerifier::new(config)?),
        None => None,
    };
    Ok(Authenticators {
        tokens: None,
        oidc,
        iam: true,
    })
}

/// The API function's router: the authenticators of [`authenticators`] (the console's client
/// secret read from SSM), console sessions in the registry table, and the inbound endpoints
/// of the backend's integrations (`/v1/integrations/...`: Jira's and GitHub's signed
/// webhooks, the routes the template leaves to their signatures; a GitHub review they queue
/// is retried by the `webhooks` function).
pub async fn app(env: &AwsEnv, backend: &AwsBackend) -> Result<axum::Router, lambda_http::Error> {
    let secret = ssm::oidc_client_secret(&backend.sdk, |k| std::env::var(k).ok())
        .await
        .map_err(Failure::from)?;
    let state = AppState {
        gov: backend.gov.clone(),
        auth: Arc::new(authenticators(&env.oidc, secret)?),
    };
    let deliverer = Deliverer::new(
        backend.gov.clone(),
        RetrySchedule::default(),
        backend.integrations.clone(),
    )
    .map_err(|e| Failure::config(steward_core::error::chain(&e).to_string()))?;
    Ok(router_with_sessions(state, Arc::new(backend.sessions()))
        .merge(steward_integrations::inbound::router(deliverer)))
}

/// The caller's IAM ARN: `requestContext.authorizer.iam.userArn` of an HTTP API (v2) event.
pub fn caller_arn(req: &Request) -> Option<String> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx
            .authorizer
            .as_ref()?
            .iam
            .as_ref()?
            .user_arn
            .clone()
            .filter(|arn| !arn.is_empty()),
        #[allow(unreachable_patterns)] // other variants exist when lambda_http enables them
        _ => None,
    }
}

/// Copies [`caller_arn`] into the request's extensions (the `map_request` step before the
/// router). Anything already there is replaced: only API Gateway names the caller.
pub fn with_caller_arn(mut req: Request) -> Request {
    let arn = caller_arn(&req);
    req.extensions_mut().remove::<RequestContextArn>();
    if let Some(arn) = arn {
        req.extensions_mut().insert(RequestContextArn(arn));
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(authorizer: serde_json::Value) -> Request {
        let mut event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/v1/models", "rawQueryString": "",
            "headers": {"host": "abc.execute-api.eu-west-1.amazonaws.com"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "abc", "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
                "http": {"method": "GET", "path": "/v1/models", "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1", "userAgent": "t"},
                "requestId": "r", "routeKey": "$default", "stage": "$default", "time": "27/Nov/2026:10:00:00 +0000", "timeEpoch": 0,
            },
            "isBase64Encoded": false,
        });
        if !authorizer.is_null() {
            event["requestContext"]["authorizer"] = authorizer;
        }
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    #[test]
    fn the_iam_user_arn_becomes_the_request_context_arn() {
        let arn = "arn:aws:sts::123456789012:assumed-role/ml-dev/alice";
        let req = with_caller_arn(request(
            json!({"iam": {"userArn": arn, "accountId": "123456789012"}}),
        ));
        assert_eq!(
            req.extensions().get::<RequestContextArn>(),
            Some(&RequestContextArn(arn.into()))
        );
    }

    #[test]
    fn a_request_without_an_iam_authorizer_gets_no_identity() {
        for authorizer in [
            json!(null),
            json!({"jwt": {"claims": {"sub": "x"}, "scopes": null}}),
            json!({"iam": {"userArn": ""}}),
        ] {
            let mut req = request(authorizer.clone());
            req.extensions_mut()
                .insert(RequestContextArn("arn:aws:iam::1:user/forged".into()));
            let req = with_caller_arn(req);
            assert_eq!(
                req.extensions().get::<RequestContextArn>(),
                None,
                "{authorizer}"
            );
        }
    }

    #[test]
    fn the_sample_invoke_payload_is_an_iam_authorized_request() {
        let req =
            lambda_http::request::from_str(include_str!("../events/get-models.json")).unwrap();
        assert_eq!(
            caller_arn(&req).as_deref(),
            Some("arn:aws:iam::123456789012:role/platform-admin")
        );
        assert_eq!(req.uri().path(), "/v1/models");
    }
}
