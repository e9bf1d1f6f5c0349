//! The emulators of the AWS tier: DynamoDB Local (`STEWARD_TEST_DYNAMODB_ENDPOINT`) and moto
//! (`STEWARD_TEST_AWS_ENDPOINT`, everything else), as `bash scripts/emulators run -- CMD`
//! starts them and exports their endpoints; and SDK configuration for them.
//!
//! A test that needs them calls [`emulators!`](crate::emulators!) and fails when they are not
//! configured, saying how to run it with them: a test that returned early would pass having
//! checked nothing.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// The DynamoDB Local endpoint variable.
pub const DYNAMODB_ENDPOINT_VAR: &str = "STEWARD_TEST_DYNAMODB_ENDPOINT";
/// The moto endpoint variable.
pub const AWS_ENDPOINT_VAR: &str = "STEWARD_TEST_AWS_ENDPOINT";

/// The region of the clients on the emulators: `AWS_REGION` (which `scripts/emulators`
/// exports, and the backends under test read), else `us-east-1`.
pub fn region() -> String {
    std::env::var("AWS_REGION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "us-east-1".into())
}

/// The emulators' endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emulators {
    /// DynamoDB Local.
    pub dynamodb: String,
    /// Moto: S3, KMS, EventBridge, SQS, Step Functions, SageMaker.
    pub aws: String,
}

/// The configured emulators, or a panic naming the command that runs the calling test with
/// them (`cargo test -p <its package> [<args>] --test <its test target>`). `args` are extra
/// `cargo test` arguments the test needs, e.g. `"--features aws"`.
#[macro_export]
macro_rules! emulators {
    () => {
        $crate::emulators::Emulators::required(::core::concat!(
            "cargo test -p ",
            ::core::env!("CARGO_PKG_NAME"),
            " --test ",
            ::core::env!("CARGO_CRATE_NAME")
        ))
    };
    ($args:literal) => {
        $crate::emulators::Emulators::required(::core::concat!(
            "cargo test -p ",
            ::core::env!("CARGO_PKG_NAME"),
            " ",
            $args,
            " --test ",
            ::core::env!("CARGO_CRATE_NAME")
        ))
    };
}

impl Emulators {
    /// The emulators from the environment, if both endpoints are set.
    pub fn from_env() -> Option<Emulators> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Some(Emulators {
            dynamodb: get(DYNAMODB_ENDPOINT_VAR)?,
            aws: get(AWS_ENDPOINT_VAR)?,
        })
    }

    /// The emulators from the environment; panics when they are not configured, with how to
    /// run `test_command` (a `cargo test ...` command line) under them.
    pub fn required(test_command: &str) -> Emulators {
        Self::from_env().unwrap_or_else(|| {
            panic!(
                "emulators not configured ({DYNAMODB_ENDPOINT_VAR}/{AWS_ENDPOINT_VAR} unset): \
                 run bash scripts/emulators run -- {test_command}"
            )
        })
    }

    /// SDK configuration for moto.
    pub async fn sdk(&self) -> SdkConfig {
        sdk_config(&self.aws).await
    }

    /// SDK configuration for DynamoDB Local.
    pub async fn dynamodb_sdk(&self) -> SdkConfig {
        sdk_config(&self.dynamodb).await
    }

    /// An S3 client configuration for moto, path-style (loopback has no per-bucket host
    /// names); add interceptors before `build()`.
    pub async fn s3_config(&self) -> aws_sdk_s3::config::Builder {
        aws_sdk_s3::config::Builder::from(&self.sdk().await).force_path_style(true)
    }

    /// An S3 client on moto, path-style.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(self.s3_config().await.build())
    }
}

/// SDK configuration for an emulator at `endpoint`: [`region()`], static test credentials (no
/// credential chain, no instance metadata), the rustls client Steward uses, and bounded
/// timeouts and retries so that a stuck emulator fails a test instead of hanging it (the
/// values of `steward_aws::sdk_config`).
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .read_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .region(Region::new(region()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "test",
            "test",
            None,
            None,
            "steward-testkit",
        ))
        .load()
        .await
}

/// Puts a parameter (`String` or `SecureString`, overwriting) on moto through SSM's JSON
/// protocol, as an operator puts the integrations file and its secrets (moto checks no
/// signature, only the credential scope's region). Panics, with moto's answer, if refused.
pub async fn put_ssm_parameter(endpoint: &str, name: &str, kind: &str, value: &str) {
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "AmazonSSM.PutParameter")
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=test/20260101/{}/ssm/aws4_request, SignedHeaders=host, Signature=0",
                region()
            ),
        )
        .body(
            serde_json::json!({"Name": name, "Type": kind, "Value": value, "Overwrite": true})
                .to_string(),
        )
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("moto answers PutParameter");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "PutParameter {name}: {status} {text}");
}
