//! The console's OpenID Connect client secret from SSM Parameter Store, against moto: what
//! `steward_aws::ssm` reads at the `api` function's cold start.
//!
//! Needs the emulators (`bash scripts/emulators run -- cargo test -p steward-aws --test
//! ssm_secret`).

use std::collections::HashMap;

use steward_aws::ssm::{oidc_client_secret, secure_parameter, SecretError};

async fn put_parameter(endpoint: &str, name: &str, kind: &str, value: &str) {
    steward_testkit::emulators::put_ssm_parameter(endpoint, name, kind, value).await
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}/{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

#[tokio::test]
async fn the_client_secret_is_read_decrypted_from_the_named_secure_string() {
    let emulators = steward_testkit::emulators!();
    let sdk = emulators.sdk().await;
    let name = unique("/steward/oidc/console-client-secret");
    put_parameter(&emulators.aws, &name, "SecureString", "s3cr3t-value").await;

    let secret = oidc_client_secret(
        &sdk,
        env(&[("STEWARD_OIDC_CLIENT_SECRET_PARAMETER", name.as_str())]),
    )
    .await
    .unwrap();
    assert_eq!(secret.as_deref(), Some("s3cr3t-value"));
}

#[tokio::test]
async fn without_the_variable_there_is_no_secret_and_no_request() {
    let emulators = steward_testkit::emulators!();
    let sdk = emulators.sdk().await;
    for lookup in [
        env(&[]),
        env(&[("STEWARD_OIDC_CLIENT_SECRET_PARAMETER", "  ")]),
    ] {
        assert_eq!(oidc_client_secret(&sdk, lookup).await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_missing_parameter_is_a_permanent_error_naming_it() {
    let emulators = steward_testkit::emulators!();
    let sdk = emulators.sdk().await;
    let name = unique("/steward/oidc/absent");
    let err = secure_parameter(&sdk, &name).await.unwrap_err();
    assert!(
        matches!(&err, SecretError::Ssm { code, .. } if code == "ParameterNotFound"),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(err.to_string().contains(&name), "{err}");
}

#[tokio::test]
async fn a_plain_string_parameter_is_refused_and_its_value_is_not_in_the_error() {
    let emulators = steward_testkit::emulators!();
    let sdk = emulators.sdk().await;
    let name = unique("/steward/oidc/plain");
    put_parameter(&emulators.aws, &name, "String", "not-so-secret").await;
    let err = secure_parameter(&sdk, &name).await.unwrap_err();
    assert!(
        matches!(&err, SecretError::Malformed { kind, .. } if kind == "String"),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("not-so-secret"));
}
