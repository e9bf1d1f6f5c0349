//! SSM Parameter Store `SecureString`s: the console's OpenID Connect client secret, named by
//! `STEWARD_OIDC_CLIENT_SECRET_PARAMETER` and read once at the `api` function's cold start
//! ([`oidc_client_secret`]), and the webhook signing secrets ([`SsmSecrets`], the core's
//! `Secrets` port: `PutParameter`, `GetParameter`, `DeleteParameter` under one prefix).
//!
//! Invariants:
//! - A value is never logged, never part of an error and never printed by a `Debug`: errors
//!   name the parameter, the operation and SSM's error code, SSM's message is scrubbed of a
//!   value the request carried, and a response that cannot be read is reported without its
//!   body (it may hold the value).
//! - A value is returned as stored, less one trailing line break (what storing it from a
//!   file adds).
//! - Each operation is one request, signed with SigV4 by the SDK configuration's credentials
//!   and region, to its endpoint override when one is set (emulators); a throttled, failed
//!   (5xx) or unreachable attempt is tried again, at most three times.
//!
//! Why not `aws-sdk-ssm`: it is not in the lock, and its generated client (every Parameter
//! Store, Session Manager, Patch Manager, ... operation) is one of the largest SDK crates, minutes
//! of compile on two cores and in every Lambda build, for three calls. This file is those
//! calls: SSM's JSON protocol over `reqwest` (already in the graph through `steward-api`)
//! and `aws-sigv4` (already in it through the SDK).

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde::Deserialize;
use steward_core::ports::Secrets;
use steward_core::webhooks::WebhookSecret;
use steward_core::StoreError;

/// The variable naming the parameter; unset or empty means the console has no client secret
/// (a public client, or no OpenID Connect at all).
pub const CLIENT_SECRET_PARAMETER_VAR: &str = "STEWARD_OIDC_CLIENT_SECRET_PARAMETER";

const ATTEMPTS: u32 = 3;

/// Why an SSM parameter could not be read, written or deleted. Never carries the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot reach SSM parameter {parameter}: the SDK configuration has no {missing}")]
    Unconfigured {
        parameter: String,
        missing: &'static str,
    },
    #[error("cannot reach SSM parameter {parameter}: no AWS credentials")]
    Credentials {
        parameter: String,
        #[source]
        source: aws_credential_types::provider::error::CredentialsError,
    },
    #[error("cannot sign the SSM {operation} request for {parameter}")]
    Sign {
        operation: &'static str,
        parameter: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("SSM {operation} {parameter} failed to reach SSM")]
    Request {
        operation: &'static str,
        parameter: String,
        #[source]
        source: reqwest::Error,
    },
    /// SSM answered with an error: `code` is its `__type` (`ParameterNotFound`,
    /// `AccessDeniedException`, ...).
    #[error("SSM {operation} {parameter} failed: HTTP {status} {code}: {message}")]
    Ssm {
        operation: &'static str,
        parameter: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("SSM GetParameter {parameter} answered without a readable Parameter.Value (a {kind} parameter?)")]
    Malformed { parameter: String, kind: String },
    /// A webhook secret's parameter holds something else than a `whsec_` secret.
    #[error("SSM parameter {parameter} does not hold a webhook secret (whsec_<base64>)")]
    NotAWebhookSecret { parameter: String },
    /// A webhook secret's name was already written with another secret: a concurrent put of
    /// the same subscription took it first (or a second deployment shares the prefix). The
    /// stored secret is left alone.
    #[error("SSM parameter {parameter} already holds another secret; webhook secret names are written once")]
    AlreadyHoldsAnother { parameter: String },
}

impl SecretError {
    /// SSM's error code, when SSM answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            SecretError::Ssm { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the same request may succeed later (SSM throttled or failed, or was not
    /// reached) rather than being refused for good (not found, not allowed).
    pub fn is_transient(&self) -> bool {
        match self {
            SecretError::Request { .. } => true,
            SecretError::Ssm { status, code, .. } => {
                *status >= 500 || code.contains("Throttling") || code.contains("TooManyUpdates")
            }
            _ => false,
        }
    }
}

/// The console's client secret: the `SecureString` parameter named by
/// [`CLIENT_SECRET_PARAMETER_VAR`] in `get` (the process environment in a Lambda:
/// `|k| std::env::var(k).ok()`), decrypted; `None` when the variable is unset or empty.
pub async fn oidc_client_secret(
    sdk: &SdkConfig,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, SecretError> {
    let Some(name) = get(CLIENT_SECRET_PARAMETER_VAR)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let value = secure_parameter(sdk, &name).await?;
    tracing::info!(parameter = %name, "OIDC client secret read from SSM");
    Ok(Some(value))
}

#[derive(Deserialize)]
struct GetParameterOutput {
    #[serde(rename = "Parameter")]
    parameter: Option<Parameter>,
}

#[derive(Deserialize)]
struct Parameter {
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Value")]
    value: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type")]
    code: Option<String>,
    // SSM sends `message`; some answers (and moto) carry `Message` as well, so both are
    // fields rather than aliases, which would reject a body with both.
    message: Option<String>,
    #[serde(rename = "Message")]
    message_upper: Option<String>,
}

/// The decrypted value of the SSM parameter `name` (one `GetParameter`, `WithDecryption`).
pub async fn secure_parameter(sdk: &SdkConfig, name: &str) -> Result<String, SecretError> {
    Ssm::new(sdk, name)?.get_parameter(name, false).await
}

/// The value of the SSM parameter `name`, a `String` or a `SecureString` (decrypted): for
/// configuration that holds no secret itself, such as the integrations file.
pub async fn parameter(sdk: &SdkConfig, name: &str) -> Result<String, SecretError> {
    Ssm::new(sdk, name)?.get_parameter(name, true).await
}

/// SSM's JSON protocol over `reqwest`, each request signed with SigV4 by the SDK
/// configuration's credentials and region, to its endpoint override when one is set.
#[derive(Clone)]
struct Ssm {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
}

impl Ssm {
    /// A client for `sdk`'s region and credentials; `parameter` names what it is for in a
    /// configuration error.
    fn new(sdk: &SdkConfig, parameter: &str) -> Result<Self, SecretError> {
        let unconfigured = |missing| SecretError::Unconfigured {
            parameter: parameter.to_owned(),
            missing,
        };
        let region = sdk.region().ok_or_else(|| unconfigured("region"))?.as_ref();
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| unconfigured("credentials provider"))?;
        let endpoint = match sdk.endpoint_url() {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("https://ssm.{region}.{}", dns_suffix(region)),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|source| SecretError::Request {
                operation: "client",
                parameter: parameter.to_owned(),
                source,
            })?;
        Ok(Self {
            http,
            endpoint,
            region: region.to_owned(),
            credentials,
        })
    }

    /// One operation on `parameter`, tried again when throttled, failed (5xx) or
    /// unreachable, at most [`ATTEMPTS`] times. `redact` is a value that must not appear in
    /// an error (SSM's messages are not promised to leave it out).
    async fn call(
        &self,
        operation: &'static str,
        parameter: &str,
        body: &str,
        redact: Option<&str>,
    ) -> Result<Vec<u8>, SecretError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Credentials are asked for on each attempt: the provider caches, and refreshes
            // what expired in between.
            let credentials = self
                .credentials
                .provide_credentials()
                .await
                .map_err(|source| SecretError::Credentials {
                    parameter: parameter.to_owned(),
                    source,
                })?;
            let result = self
                .call_once(operation, credentials.into(), parameter, body)
                .await;
            match result.map_err(|e| scrubbed(e, redact)) {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing::warn!(parameter = %parameter, operation, attempt, error = %e, "SSM request failed; trying again");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                other => return other,
            }
        }
    }

    async fn call_once(
        &self,
        operation: &'static str,
        identity: Identity,
        parameter: &str,
        body: &str,
    ) -> Result<Vec<u8>, SecretError> {
        let sign_error = |source: Box<dyn std::error::Error + Send + Sync>| SecretError::Sign {
            operation,
            parameter: parameter.to_owned(),
            source,
        };
        let request_error = |source| SecretError::Request {
            operation,
            parameter: parameter.to_owned(),
            source,
        };
        let url = format!("{}/", self.endpoint);
        let target = format!("AmazonSSM.{operation}");
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ssm")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| sign_error(e.into()))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| sign_error(e.into()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| sign_error(e.into()))?
            .into_parts();

        let mut request = self.http.post(&url).body(body.to_owned());
        for (k, v) in headers.iter().copied().chain(instructions.headers()) {
            request = request.header(k, v);
        }
        let response = request.send().await.map_err(request_error)?;
        let status = response.status();
        // The JSON protocol names the error in this header and/or the body's `__type`.
        let header_code = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or_default().to_owned());
        let bytes = response.bytes().await.map_err(request_error)?;
        if !status.is_success() {
            // Error bodies carry a code and a message, never a parameter's value.
            let err: ErrorBody = serde_json::from_slice(&bytes).unwrap_or(ErrorBody {
                code: None,
                message: None,
                message_upper: None,
            });
            let code = err
                .code
                .map(|c| c.rsplit('#').next().unwrap_or_default().to_owned())
                .or(header_code)
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "UnknownError".to_owned());
            return Err(SecretError::Ssm {
                operation,
                parameter: parameter.to_owned(),
                status: status.as_u16(),
                code,
                message: err.message.or(err.message_upper).unwrap_or_default(),
            });
        }
        Ok(bytes.to_vec())
    }

    /// The decrypted value of `name`, less one trailing line break. A parameter that is not
    /// a `SecureString` is refused, unless `plain` allows a `String`.
    async fn get_parameter(&self, name: &str, plain: bool) -> Result<String, SecretError> {
        let body = serde_json::json!({"Name": name, "WithDecryption": true}).to_string();
        let bytes = self.call("GetParameter", name, &body, None).await?;
        let parsed: Option<Parameter> = serde_json::from_slice::<GetParameterOutput>(&bytes)
            .ok()
            .and_then(|o| o.parameter);
        match parsed {
            Some(Parameter {
                value: Some(value),
                kind,
            }) if kind
                .as_deref()
                .is_none_or(|k| k == "SecureString" || (plain && k == "String")) =>
            {
                Ok(without_newline(value))
            }
            other => Err(SecretError::Malformed {
                parameter: name.to_owned(),
                // A String or StringList parameter is readable by anyone allowed to describe
                // it: a secret belongs in a SecureString.
                kind: other
                    .and_then(|p| p.kind)
                    .unwrap_or_else(|| "unknown".to_owned()),
            }),
        }
    }
}

/// `e` without `value` in SSM's message (SSM does not promise to leave a request's value out
/// of, say, a validation error).
fn scrubbed(e: SecretError, value: Option<&str>) -> SecretError {
    match (e, value) {
        (
            SecretError::Ssm {
                operation,
                parameter,
                status,
                code,
                message,
            },
            Some(value),
        ) if !value.is_empty() => SecretError::Ssm {
            operation,
            parameter,
            status,
            code,
            message: message.replace(value, "[redacted]"),
        },
        (other, _) => other,
    }
}

/// The variable naming where webhook signing secrets live in Parameter Store: a path prefix
/// such as `/steward/prod` (the SAM template passes `/steward/${AWS::StackName}`).
pub const WEBHOOK_SECRETS_PREFIX_VAR: &str = "STEWARD_WEBHOOK_SECRETS_PREFIX";

/// The core's [`Secrets`] port on SSM Parameter Store: each webhook signing secret is a
/// `SecureString` (the account's `aws/ssm` key) named `{prefix}/{name}`, where core's names
/// are `webhooks/{id}/{revision}`.
///
/// Invariants:
/// - `put` is one `PutParameter` with `Overwrite: false`: a name is written once. When it
///   finds the name taken (its own earlier attempt that timed out, say), it reads the
///   parameter and succeeds only if it holds the same secret; another secret under the name
///   is never overwritten, and is `StoreError::Conflict` (another put won the name).
/// - `get` is one `GetParameter` with `WithDecryption`; a missing parameter is `None`.
/// - `delete` is one `DeleteParameter`; a missing parameter is fine.
/// - No value reaches a log, an error or a `Debug`: errors name the parameter and SSM's
///   code, and SSM's message is scrubbed of the value before it is kept.
#[derive(Clone)]
pub struct SsmSecrets {
    ssm: Ssm,
    prefix: String,
}

impl std::fmt::Debug for SsmSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsmSecrets")
            .field("prefix", &self.prefix)
            .field("endpoint", &self.ssm.endpoint)
            .finish_non_exhaustive()
    }
}

impl SsmSecrets {
    /// Secrets under `prefix` (an absolute path, `/steward/prod`; a trailing `/` is dropped),
    /// reached with `sdk`'s region, credentials and endpoint. Makes no request.
    pub fn new(sdk: &SdkConfig, prefix: &str) -> Result<Self, SecretError> {
        let prefix = format!("/{}", prefix.trim().trim_matches('/'));
        Ok(Self {
            ssm: Ssm::new(sdk, &prefix)?,
            prefix,
        })
    }

    /// The parameter that holds secret `name`.
    pub fn parameter(&self, name: &str) -> String {
        format!("{}/{}", self.prefix, name.trim_start_matches('/'))
    }

    async fn get_secret(&self, parameter: &str) -> Result<Option<WebhookSecret>, SecretError> {
        let value = match self.ssm.get_parameter(parameter, false).await {
            Ok(v) => v,
            Err(e) if e.code() == Some("ParameterNotFound") => return Ok(None),
            Err(e) => return Err(e),
        };
        WebhookSecret::parse(&value)
            .map(Some)
            .map_err(|_| SecretError::NotAWebhookSecret {
                parameter: parameter.to_owned(),
            })
    }

    async fn put_secret(&self, parameter: &str, secret: &WebhookSecret) -> Result<(), SecretError> {
        let value = secret.expose();
        let body = serde_json::json!({
            "Name": parameter,
            "Value": value,
            "Type": "SecureString",
            "Overwrite": false,
            "Description": "Steward webhook signing secret",
        })
        .to_string();
        match self
            .ssm
            .call("PutParameter", parameter, &body, Some(&value))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ParameterAlreadyExists") => {
                match self.get_secret(parameter).await? {
                    Some(stored) if stored == *secret => Ok(()),
                    _ => Err(SecretError::AlreadyHoldsAnother {
                        parameter: parameter.to_owned(),
                    }),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn delete_secret(&self, parameter: &str) -> Result<(), SecretError> {
        let body = serde_json::json!({"Name": parameter}).to_string();
        match self
            .ssm
            .call("DeleteParameter", parameter, &body, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ParameterNotFound") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn store_error(e: SecretError) -> StoreError {
    match e {
        // Core names a secret by the revision it will commit, so two admins putting the same
        // subscription at once race for one name: the loser re-reads and retries (contended)
        // and finds the next revision, never the winner's secret overwritten.
        SecretError::AlreadyHoldsAnother { parameter } => StoreError::Conflict(format!(
            "another request wrote the webhook secret {parameter} first"
        )),
        e => StoreError::backend("the webhook secret store (SSM Parameter Store) failed", e),
    }
}

#[async_trait::async_trait]
impl Secrets for SsmSecrets {
    async fn put(&self, name: &str, secret: &WebhookSecret) -> Result<(), StoreError> {
        self.put_secret(&self.parameter(name), secret)
            .await
            .map_err(store_error)
    }

    async fn get(&self, name: &str) -> Result<Option<WebhookSecret>, StoreError> {
        self.get_secret(&self.parameter(name))
            .await
            .map_err(store_error)
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.delete_secret(&self.parameter(name))
            .await
            .map_err(store_error)
    }
}

/// The value without one trailing line break: `aws ... --output text > file` and
/// `put-parameter --value file://file` store one, and no client secret ends with one.
fn without_newline(mut value: String) -> String {
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    value
}

/// The DNS suffix of SSM's endpoint in `region`'s partition.
fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssm_errors_name_their_code_and_only_refusals_are_permanent() {
        let ssm = |status, code: &str| SecretError::Ssm {
            operation: "GetParameter",
            parameter: "/steward/oidc".into(),
            status,
            code: code.into(),
            message: String::new(),
        };
        assert!(ssm(400, "ThrottlingException").is_transient());
        assert!(ssm(503, "InternalServerError").is_transient());
        assert!(!ssm(400, "ParameterNotFound").is_transient());
        assert!(!ssm(400, "AccessDeniedException").is_transient());
        assert!(ssm(400, "ParameterNotFound")
            .to_string()
            .contains("/steward/oidc"));
    }

    #[test]
    fn a_value_that_ssm_echoes_in_its_message_is_scrubbed_from_the_error() {
        let echoed = SecretError::Ssm {
            operation: "PutParameter",
            parameter: "/steward/p/webhooks/a/1".into(),
            status: 400,
            code: "ValidationException".into(),
            message: "Value 'whsec_abc' at 'value' failed to satisfy constraint".into(),
        };
        let e = scrubbed(echoed, Some("whsec_abc"));
        let text = format!("{e} {e:?}");
        assert!(!text.contains("whsec_abc"), "{text}");
        assert!(text.contains("[redacted]") && text.contains("/steward/p/webhooks/a/1"));
    }

    #[test]
    fn secret_names_go_under_the_prefix() {
        let sdk = SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new("a", "b", None, None, "test"),
                ),
            )
            .build();
        let secrets = SsmSecrets::new(&sdk, "/steward/prod/").unwrap();
        assert_eq!(
            secrets.parameter("webhooks/jira/3"),
            "/steward/prod/webhooks/jira/3"
        );
        assert!(!format!("{secrets:?}").contains("credentials"));
        assert!(matches!(
            SsmSecrets::new(&SdkConfig::builder().build(), "/steward/prod"),
            Err(SecretError::Unconfigured {
                missing: "region",
                ..
            })
        ));
    }

    #[test]
    fn a_trailing_line_break_from_a_file_is_not_part_of_the_secret() {
        assert_eq!(without_newline("abc\n".into()), "abc");
        assert_eq!(without_newline("abc\r\n".into()), "abc");
        assert_eq!(without_newline("a b ".into()), "a b ");
    }

    #[test]
    fn the_endpoint_follows_the_partition() {
        assert_eq!(dns_suffix("eu-west-1"), "amazonaws.com");
        assert_eq!(dns_suffix("cn-north-1"), "amazonaws.com.cn");
    }
}
