//! `SsmSecrets` (the `Secrets` port: webhook signing secrets as SSM `SecureString`s) against
//! moto: put, get and delete under the prefix, a name written once, and no value in an error.
//!
//! Needs the emulators (`bash scripts/emulators run -- cargo test -p steward-aws --test
//! webhook_secrets`). Each test uses its own prefix.

use steward_aws::ssm::{secure_parameter, SecretError, SsmSecrets};
use steward_core::ports::Secrets;
use steward_core::webhooks::WebhookSecret;
use steward_core::StoreError;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_c2Vjb25kLXNlY3JldC1vZi10d2VudHktZm91cg==";

fn secret(s: &str) -> WebhookSecret {
    WebhookSecret::parse(s).unwrap()
}

async fn secrets() -> (steward_testkit::Emulators, SsmSecrets) {
    let emulators = steward_testkit::emulators!();
    let prefix = format!(
        "/steward/test-{}/",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let secrets = SsmSecrets::new(&emulators.sdk().await, &prefix).unwrap();
    (emulators, secrets)
}

/// Puts a parameter on moto directly (moto checks no signature, only the credential scope).
async fn put_raw(endpoint: &str, name: &str, kind: &str, value: &str) {
    steward_testkit::emulators::put_ssm_parameter(endpoint, name, kind, value).await
}

#[tokio::test]
async fn a_secret_is_put_read_back_and_deleted() {
    let (emulators, secrets) = secrets().await;
    secrets
        .put("webhooks/jira/1", &secret(SECRET))
        .await
        .unwrap();
    assert_eq!(
        secrets.get("webhooks/jira/1").await.unwrap(),
        Some(secret(SECRET))
    );
    // A SecureString at {prefix}/{name}: the OIDC reader (which refuses anything else)
    // finds it there, decrypted.
    let parameter = secrets.parameter("webhooks/jira/1");
    assert!(parameter.starts_with("/steward/test-") && parameter.ends_with("/webhooks/jira/1"));
    assert!(!parameter.contains("//"), "{parameter}");
    assert_eq!(
        secure_parameter(&emulators.sdk().await, &parameter)
            .await
            .unwrap(),
        SECRET
    );

    secrets.delete("webhooks/jira/1").await.unwrap();
    assert_eq!(secrets.get("webhooks/jira/1").await.unwrap(), None);
}

#[tokio::test]
async fn a_missing_secret_is_none_and_deleting_it_is_fine() {
    let (_, secrets) = secrets().await;
    assert_eq!(secrets.get("webhooks/absent/1").await.unwrap(), None);
    secrets.delete("webhooks/absent/1").await.unwrap();
}

#[tokio::test]
async fn putting_the_same_secret_again_succeeds_and_another_secret_under_the_name_is_refused() {
    let (_, secrets) = secrets().await;
    secrets.put("webhooks/a/1", &secret(SECRET)).await.unwrap();
    // A retried put (its first attempt's answer lost) finds its own write.
    secrets.put("webhooks/a/1", &secret(SECRET)).await.unwrap();

    let err = secrets
        .put("webhooks/a/1", &secret(OTHER_SECRET))
        .await
        .unwrap_err();
    // A race for the name: contended (re-read, retry), not a storage failure.
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("wrote the webhook secret"), "{text}");
    assert!(
        text.contains("/webhooks/a/1"),
        "names the parameter: {text}"
    );
    for value in [SECRET, OTHER_SECRET, &SECRET[6..], &OTHER_SECRET[6..]] {
        assert!(!text.contains(value), "{text}");
    }
    // Never overwritten.
    assert_eq!(
        secrets.get("webhooks/a/1").await.unwrap(),
        Some(secret(SECRET))
    );
}

#[tokio::test]
async fn a_parameter_that_is_no_webhook_secret_is_an_error_without_its_value() {
    let (emulators, secrets) = secrets().await;
    put_raw(
        &emulators.aws,
        &secrets.parameter("webhooks/plain/1"),
        "String",
        SECRET,
    )
    .await;
    put_raw(
        &emulators.aws,
        &secrets.parameter("webhooks/garbage/1"),
        "SecureString",
        "hunter2-not-a-whsec",
    )
    .await;

    let err = secrets.get("webhooks/plain/1").await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("String parameter"), "{text}");
    assert!(!text.contains(&SECRET[6..]), "{text}");

    let err = secrets.get("webhooks/garbage/1").await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("does not hold a webhook secret"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn an_unreachable_ssm_is_a_transient_error_that_names_the_operation_not_the_value() {
    let emulators = steward_testkit::emulators!();
    // Nothing listens on port 9 of the loopback.
    let sdk = steward_testkit::emulators::sdk_config("http://127.0.0.1:9").await;
    let secrets = SsmSecrets::new(&sdk, "/steward/unreachable").unwrap();
    let err = secrets
        .put("webhooks/a/1", &secret(SECRET))
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("PutParameter"), "{text}");
    assert!(!text.contains(&SECRET[6..]), "{text}");
    drop(emulators);

    let ssm = SecretError::Ssm {
        operation: "PutParameter",
        parameter: "/steward/x/webhooks/a/1".into(),
        status: 503,
        code: "InternalServerError".into(),
        message: String::new(),
    };
    assert!(ssm.is_transient());
}
