//! AWS Signature Version 4 for the API behind API Gateway (HTTP API, IAM authorization):
//! which region a server URL signs for, the signing of one request, and the credentials of
//! the standard AWS chain (environment, profiles and `AWS_PROFILE`, `credential_process`, SSO,
//! assumed roles, web identity, ECS and instance metadata).
//!
//! Invariants: credentials are resolved at most once per process and again only when they
//! are about to expire (the provider refreshes them); secrets never appear in `Debug` output,
//! errors or logs (the SDK's `Credentials` redacts itself, and the headers carrying the
//! signature and session token are marked sensitive); the body is signed by its SHA-256, so a
//! changed body fails the signature check.

use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{Mutex, OnceCell};

/// The signing name of API Gateway's invoke endpoint.
pub const EXECUTE_API: &str = "execute-api";

/// Credentials this close to their expiry are fetched again before signing.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    #[error(
        "no AWS region to sign for: use an execute-api URL, --region, AWS_REGION or a profile's region"
    )]
    NoRegion,
    #[error("cannot sign the request: {0}")]
    Sign(String),
}

/// The region of an API Gateway URL's host: `<api>.execute-api.<region>.amazonaws.com` (also
/// `.amazonaws.com.cn` and VPC endpoint names `<api>-<vpce>.execute-api.<region>.vpce.amazonaws.com`).
/// `None` for any other host, e.g. a custom domain.
pub fn execute_api_region(host: &str) -> Option<&str> {
    let host = host.trim_end_matches('.');
    let mut labels = host.split('.');
    labels
        .by_ref()
        .find(|l| l.eq_ignore_ascii_case(EXECUTE_API))?;
    let region = labels.next().filter(|r| !r.is_empty())?;
    let rest: Vec<&str> = labels.collect();
    let amazon = matches!(
        rest.as_slice(),
        ["amazonaws", "com"]
            | ["amazonaws", "com", "cn"]
            | ["vpce", "amazonaws", "com"]
            | ["vpce", "amazonaws", "com", "cn"]
    );
    amazon.then_some(region)
}

/// Signs one request: the headers to add (`x-amz-date`, `authorization` and, with a session
/// token, `x-amz-security-token`). `url` is the request's full URL as sent (already
/// percent-encoded); `headers` are the ones it carries, all of which are signed except those
/// SigV4 leaves out (`user-agent`, ...); `body` is signed by its SHA-256.
///
/// This is the function every signed request of the client goes through; the AWS SigV4 test
/// suite vectors are checked against it.
#[allow(clippy::too_many_arguments)]
pub fn sign_headers(
    method: &str,
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, SigningError> {
    let sign_err = |e: &dyn std::fmt::Display| SigningError::Sign(e.to_string());
    let mut pairs = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let value = value
            .to_str()
            .map_err(|_| SigningError::Sign(format!("header {name} is not visible ASCII")))?;
        pairs.push((name.as_str(), value));
    }
    let request = SignableRequest::new(method, url, pairs.into_iter(), SignableBody::Bytes(body))
        .map_err(|e| sign_err(&e))?;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| sign_err(&e))?
        .into();
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| sign_err(&e))?
        .into_parts();
    let (added, _params) = instructions.into_parts();
    added
        .into_iter()
        .map(|h| {
            let name = HeaderName::from_static(h.name());
            let mut value = HeaderValue::from_str(h.value()).map_err(|e| sign_err(&e))?;
            value.set_sensitive(h.sensitive() || name == reqwest::header::AUTHORIZATION);
            Ok((name, value))
        })
        .collect()
}

/// Signs the client's requests with the credentials of the standard AWS chain.
pub struct AwsSigner {
    /// From the server's host, `--region` or `AWS_REGION`; else the chain's region, on first use.
    region: Option<String>,
    chain: OnceCell<(SharedCredentialsProvider, String)>,
    cached: Mutex<Option<Credentials>>,
}

impl std::fmt::Debug for AwsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSigner")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsSigner {
    /// A signer for `region` (when known); the credential chain is consulted on first use.
    pub fn new(region: Option<String>) -> Self {
        Self {
            region: region.filter(|r| !r.trim().is_empty()),
            chain: OnceCell::new(),
            cached: Mutex::new(None),
        }
    }

    /// The provider and the region, built once: the SDK's default chain over rustls.
    async fn chain(&self) -> Result<&(SharedCredentialsProvider, String), SigningError> {
        self.chain
            .get_or_try_init(|| async {
                let http = aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https();
                let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
                if let Some(r) = &self.region {
                    // Known already: the chain need not look for one (no instance metadata call).
                    loader = loader.region(Region::new(r.clone()));
                }
                let config = loader.load().await;
                let provider = config.credentials_provider().ok_or_else(|| {
                    SigningError::Credentials("the AWS credential chain is empty".into())
                })?;
                let region = config
                    .region()
                    .map(|r| r.as_ref().to_owned())
                    .ok_or(SigningError::NoRegion)?;
                Ok((provider, region))
            })
            .await
    }

    /// Credentials to sign with now: the cached ones unless they are (about to be) expired.
    async fn credentials(&self) -> Result<Credentials, SigningError> {
        let (provider, _) = self.chain().await?;
        let mut cached = self.cached.lock().await;
        let fresh = |c: &Credentials| match c.expiry() {
            None => true,
            Some(at) => at > SystemTime::now() + REFRESH_BEFORE_EXPIRY,
        };
        if let Some(c) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let c = provider
            .provide_credentials()
            .await
            .map_err(|e| SigningError::Credentials(error_chain(&e)))?;
        *cached = Some(c.clone());
        Ok(c)
    }

    /// The region requests are signed for.
    pub async fn region(&self) -> Result<String, SigningError> {
        Ok(self.chain().await?.1.clone())
    }

    /// Adds the SigV4 headers to `request`, signing its method, URL, headers and body.
    pub async fn sign(&self, request: &mut reqwest::Request) -> Result<(), SigningError> {
        let credentials = self.credentials().await?;
        let region = self.region().await?;
        let body = match request.body() {
            None => &[][..],
            Some(b) => b.as_bytes().ok_or_else(|| {
                SigningError::Sign("a streamed body cannot be signed by its hash".into())
            })?,
        };
        let added = sign_headers(
            request.method().as_str(),
            request.url().as_str(),
            request.headers(),
            body,
            &credentials,
            &region,
            EXECUTE_API,
            SystemTime::now(),
        )?;
        for (name, value) in added {
            request.headers_mut().insert(name, value);
        }
        Ok(())
    }
}

/// An error and its causes on one line (the SDK's errors say little at the top level).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_an_execute_api_host() {
        for (host, region) in [
            (
                "abc123.execute-api.eu-west-1.amazonaws.com",
                Some("eu-west-1"),
            ),
            (
                "abc123.execute-api.cn-north-1.amazonaws.com.cn",
                Some("cn-north-1"),
            ),
            (
                "abc-vpce-1.execute-api.us-east-2.vpce.amazonaws.com",
                Some("us-east-2"),
            ),
            ("api.example.com", None),
            ("execute-api.eu-west-1.example.com", None),
            ("127.0.0.1", None),
        ] {
            assert_eq!(execute_api_region(host), region, "{host}");
        }
    }

    #[test]
    fn the_signer_shows_no_credentials_in_debug_output() {
        let s = AwsSigner::new(Some("eu-west-1".into()));
        assert_eq!(
            format!("{s:?}"),
            r#"AwsSigner { region: Some("eu-west-1"), .. }"#
        );
    }
}
