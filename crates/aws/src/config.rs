//! SDK configuration: HTTPS over rustls with the ring provider (no C build), explicit
//! timeouts (a silent endpoint must fail a call, never hang it), optional endpoint override for
//! emulators, and a request counter that proves the request economy in tests.
//!
//! Invariant: every SDK client Steward builds comes from [`sdk_config`], so all of them carry
//! the same timeouts, retry policy and, when asked, the same counter.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Where the SDK talks to.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// Override for every service (an emulator), e.g. `http://127.0.0.1:5000`.
    pub all: Option<String>,
    /// Override for DynamoDB alone (DynamoDB Local runs apart from moto).
    pub dynamodb: Option<String>,
}

/// Builds the shared SDK configuration. With `static_credentials` (tests against emulators)
/// no credential chain or instance metadata is consulted.
pub async fn sdk_config(
    region: Option<&str>,
    endpoint: Option<&str>,
    static_credentials: bool,
) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .read_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    if static_credentials {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "static",
        ));
    }
    loader.load().await
}

/// Counts the requests each SDK client sends, by operation name (`DynamoDB.TransactWriteItems`).
/// Attach it with `.interceptor(counter.clone())` on a client's config builder.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl RequestCounter {
    /// Requests per operation since the last [`RequestCounter::take`].
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.counts.lock().unwrap_or_else(|e| e.into_inner()))
    }
    /// The total since the last take, without resetting.
    pub fn total(&self) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    // Counted once per transmitted attempt, so retries show up as the extra requests they are.
    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let _ = ctx;
        let op = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| format!("{}.{}", m.service(), m.name()))
            .unwrap_or_else(|| "unknown".to_owned());
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(op)
            .or_default() += 1;
        Ok(())
    }
}
