//! The console on the API function, as the people's API delivers a browser's requests: "Sign in
//! with <provider>" through the real OpenID Connect provider (npm `oidc-provider` on
//! 127.0.0.1), the pending sign-in and the session kept in the registry table (DynamoDB Local),
//! so any function instance can serve the next request.
//!
//! Needs the emulators and the provider's packages; fails without them, saying how to start
//! or install them.

mod common;

use std::sync::Arc;

use steward_aws::env::OidcEnv;
use steward_fn_api::authenticators;
use steward_testkit::oidc::{
    OidcProvider, CLI_CLIENT_ID, CONSOLE_CLIENT_ID, CONSOLE_CLIENT_SECRET,
};

use common::{event_with, Lambda};

const ADMIN: &str = "arn:aws:iam::123456789012:role/platform-admin";
const PUBLIC_URL: &str = "https://abc.execute-api.us-east-1.amazonaws.com";

fn cookie(headers: &lambda_http::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_person_signs_in_to_the_console_on_the_function_with_sessions_in_the_table() {
    let provider = OidcProvider::start(OidcProvider::default_config(Some(&format!(
        "{PUBLIC_URL}/console/login/callback"
    ))))
    .await
    .unwrap();
    let oidc = OidcEnv {
        issuer: Some(provider.issuer().to_owned()),
        audiences: vec![CONSOLE_CLIENT_ID.into(), CLI_CLIENT_ID.into()],
        console_client_id: Some(CONSOLE_CLIENT_ID.into()),
        cli_client_id: Some(CLI_CLIENT_ID.into()),
        provider_name: Some("Example SSO".into()),
        public_url: Some(PUBLIC_URL.into()),
        ..OidcEnv::default()
    };
    let auth = authenticators(&oidc, Some(CONSOLE_CLIENT_SECRET.into())).unwrap();
    let lambda = Lambda::start("console", ADMIN, Arc::new(auth)).await;

    let (status, _, page) = lambda
        .send(&event_with("GET", "/console/login", "", &[], None, None))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("Sign in with Example SSO"), "{page}");
    assert!(
        !page.contains("name=\"token\""),
        "no principals-file tokens on AWS"
    );

    let (status, headers, _) = lambda
        .send(&event_with(
            "GET",
            "/console/login/oidc",
            "",
            &[],
            None,
            None,
        ))
        .await;
    assert_eq!(status, 303);
    let binding = cookie(&headers, "steward_login").expect("a binding cookie");
    assert!(headers["set-cookie"].to_str().unwrap().contains("Secure"));
    let location = headers["location"].to_str().unwrap();
    let back = provider
        .authorize_with_browserless_login(location, "alice")
        .await
        .unwrap();
    assert_eq!(
        back.as_str().split('?').next(),
        Some(format!("{PUBLIC_URL}/console/login/callback").as_str())
    );
    let (status, headers, page) = lambda
        .send(&event_with(
            "GET",
            "/console/login/callback",
            back.query().unwrap(),
            &[("cookie", &binding)],
            None,
            None,
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    let session = cookie(&headers, "steward_session").expect("a session cookie");

    // A later request (any instance: the session is in the table) is signed in.
    let (status, _, inbox) = lambda
        .send(&event_with(
            "GET",
            "/console/reviews",
            "",
            &[("cookie", &session)],
            None,
            None,
        ))
        .await;
    assert_eq!(status, 200, "{inbox}");
    assert!(
        inbox.contains(&format!("oidc:{}#alice", provider.issuer())),
        "{inbox}"
    );
    // The public provider metadata `steward login` reads.
    let (status, _, meta) = lambda
        .send(&event_with("GET", "/v1/auth/oidc", "", &[], None, None))
        .await;
    assert_eq!(status, 200);
    assert!(meta.contains(CLI_CLIENT_ID), "{meta}");
}
