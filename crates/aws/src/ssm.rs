//! The console's OpenID Connect client secret on AWS: an SSM Parameter Store `SecureString`
//! named by `STEWARD_OIDC_CLIENT_SECRET_PARAMETER`, read once at the `api` function's cold
//! start ([`oidc_client_secret`]).
//!
//! Invariants:
//! - The value is never logged, never part of an error and never printed by a `Debug`: errors
//!   name the parameter and SSM's error code, and a response that cannot be read is reported
//!   without its body (it may hold the value).
//! - The value is returned as stored, less one trailing line break (what storing it from a
//!   file adds).
//! - One `GetParameter` with `WithDecryption`, signed with SigV4 by the SDK configuration's
//!   credentials and region, to its endpoint override when one is set (emulators); a
//!   throttled, failed (5xx) or unreachable attempt is tried again, at most three times.
//!
//! Why not `aws-sdk-ssm`: it is not in the lock, and its generated client (every Parameter
//! Store, Session Manager, Patch Manager, ... operation) is one of the largest SDK crates, minutes
//! of compile on two cores and in every Lambda build, for one call at cold start. This file is
//! that call: SSM's JSON protocol over `reqwest` (already in the graph through `steward-api`)
//! and `aws-sigv4` (already in it through the SDK).

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde::Deserialize;

/// The variable naming the parameter; unset or empty means the console has no client secret
/// (a public client, or no OpenID Connect at all).
pub const CLIENT_SECRET_PARAMETER_VAR: &str = "STEWARD_OIDC_CLIENT_SECRET_PARAMETER";

const ATTEMPTS: u32 = 3;

/// Why a secure parameter could not be read. Never carries the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read SSM parameter {parameter}: the SDK configuration has no {missing}")]
    Unconfigured {
        parameter: String,
        missing: &'static str,
    },
    #[error("cannot read SSM parameter {parameter}: no AWS credentials")]
    Credentials {
        parameter: String,
        #[source]
        source: aws_credential_types::provider::error::CredentialsError,
    },
    #[error("cannot sign the SSM GetParameter request for {parameter}")]
    Sign {
        parameter: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("SSM GetParameter {parameter} failed to reach SSM")]
    Request {
        parameter: String,
        #[source]
        source: reqwest::Error,
    },
    /// SSM answered with an error: `code` is its `__type` (`ParameterNotFound`,
    /// `AccessDeniedException`, ...).
    #[error("SSM GetParameter {parameter} failed: HTTP {status} {code}: {message}")]
    Ssm {
        parameter: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("SSM GetParameter {parameter} answered without a readable Parameter.Value (a {kind} parameter?)")]
    Malformed { parameter: String, kind: String },
}

impl SecretError {
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
    let unconfigured = |missing| SecretError::Unconfigured {
        parameter: name.to_owned(),
        missing,
    };
    let region = sdk.region().ok_or_else(|| unconfigured("region"))?.as_ref();
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| unconfigured("credentials provider"))?;
    let endpoint = match sdk.endpoint_url() {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("https://ssm.{region}.{}", dns_suffix(region)),
    };
    let body = serde_json::json!({"Name": name, "WithDecryption": true}).to_string();
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|source| SecretError::Request {
            parameter: name.to_owned(),
            source,
        })?;

    let mut attempt = 0;
    loop {
        attempt += 1;
        // Credentials are asked for on each attempt: the provider caches, and refreshes
        // what expired in between.
        let credentials =
            provider
                .provide_credentials()
                .await
                .map_err(|source| SecretError::Credentials {
                    parameter: name.to_owned(),
                    source,
                })?;
        let result = get_once(&http, &endpoint, region, credentials.into(), name, &body).await;
        match result {
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                tracing::warn!(parameter = %name, attempt, error = %e, "SSM GetParameter failed; trying again");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

async fn get_once(
    http: &reqwest::Client,
    endpoint: &str,
    region: &str,
    identity: Identity,
    name: &str,
    body: &str,
) -> Result<String, SecretError> {
    let sign_error = |source: Box<dyn std::error::Error + Send + Sync>| SecretError::Sign {
        parameter: name.to_owned(),
        source,
    };
    let url = format!("{endpoint}/");
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "AmazonSSM.GetParameter"),
    ];
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
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

    let mut request = http.post(&url).body(body.to_owned());
    for (k, v) in headers.iter().copied().chain(instructions.headers()) {
        request = request.header(k, v);
    }
    let response = request
        .send()
        .await
        .map_err(|source| SecretError::Request {
            parameter: name.to_owned(),
            source,
        })?;
    let status = response.status();
    // The JSON protocol names the error in this header and/or the body's `__type`.
    let header_code = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or_default().to_owned());
    let bytes = response
        .bytes()
        .await
        .map_err(|source| SecretError::Request {
            parameter: name.to_owned(),
            source,
        })?;
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
            parameter: name.to_owned(),
            status: status.as_u16(),
            code,
            message: err.message.or(err.message_upper).unwrap_or_default(),
        });
    }
    let parsed: Option<Parameter> = serde_json::from_slice::<GetParameterOutput>(&bytes)
        .ok()
        .and_then(|o| o.parameter);
    match parsed {
        Some(Parameter {
            value: Some(value),
            kind,
        }) if kind.as_deref().is_none_or(|k| k == "SecureString") => Ok(without_newline(value)),
        other => Err(SecretError::Malformed {
            parameter: name.to_owned(),
            // A String or StringList parameter is readable by anyone allowed to describe it:
            // a client secret belongs in a SecureString.
            kind: other
                .and_then(|p| p.kind)
                .unwrap_or_else(|| "unknown".to_owned()),
        }),
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
