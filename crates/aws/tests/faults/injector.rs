//! The fault injector: an HTTP client wrapped around the SDK's own, in front of the real
//! emulators. The emulators are real (DynamoDB Local, moto); only the faults are injected.
//!
//! It sits where a fault-injecting proxy would, below the SDK: every request the SDK sends
//! (each retry too) passes through it, so a fault it injects is seen by the SDK's
//! deserializers, retry classifiers and idempotency tokens exactly as a real service's answer
//! would be. That is why it is an HTTP client rather than an `Intercept` like
//! `steward_aws::RequestCounter`: an interceptor's error ends an attempt with an error the
//! SDK never retries, and it cannot keep a request from being sent or hold back part of one.
//! `AwsBackend::connect_over` builds a whole backend over an `SdkConfig` carrying it.
//!
//! A [`Rule`] names an operation (`DynamoDB.TransactWriteItems`, `S3.PutObject`, `KMS.Sign`,
//! `EventBridge.PutEvents`, as `RequestCounter` names them), optionally a path fragment (an
//! object key), the requests it hits (1-based, counting every request that matches the rule,
//! SDK retries included) and the [`Fault`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use serde_json::{json, Value};

/// What happens to a request a rule hits.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answered by the injector; the request never reaches the emulator.
    Respond {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// `TransactWriteItems`: answered, unsent, as DynamoDB cancels a transaction one of whose
    /// items was throttled (`TransactionCanceledException`, one cancellation reason per item,
    /// the last `ThrottlingError`). The SDK does not retry it; the store must.
    TransactionThrottled,
    /// Sent to the emulator, which carries it out; its answer is replaced by a timeout, so the
    /// caller never hears that it succeeded (a Lambda timing out after the write).
    LoseResponse,
    /// `PutEvents`: the entries of this `DetailType` are withheld from the emulator and
    /// answered as failed with `code`, the others sent; an HTTP 200 with `FailedEntryCount`,
    /// as EventBridge answers a partial failure.
    FailEntries {
        detail_type: String,
        code: &'static str,
    },
}

impl Fault {
    fn json(status: u16, content_type: &'static str, error_type: &str, message: &str) -> Self {
        Fault::Respond {
            status,
            content_type,
            body: json!({"__type": error_type, "message": message}).to_string(),
        }
    }
    fn dynamodb(status: u16, error: &str) -> Self {
        Self::json(
            status,
            "application/x-amz-json-1.0",
            &format!("com.amazonaws.dynamodb.v20120810#{error}"),
            "injected fault",
        )
    }
    pub fn dynamodb_throttling() -> Self {
        Self::dynamodb(400, "ThrottlingException")
    }
    pub fn dynamodb_throughput_exceeded() -> Self {
        Self::dynamodb(400, "ProvisionedThroughputExceededException")
    }
    pub fn dynamodb_internal_error() -> Self {
        Self::dynamodb(500, "InternalServerError")
    }
    pub fn dynamodb_unavailable() -> Self {
        Self::dynamodb(503, "ServiceUnavailable")
    }
    pub fn s3(status: u16, code: &str) -> Self {
        Fault::Respond {
            status,
            content_type: "application/xml",
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                 <Error><Code>{code}</Code><Message>injected fault</Message>\
                 <RequestId>fault</RequestId></Error>"
            ),
        }
    }
    pub fn kms_internal() -> Self {
        Self::json(
            500,
            "application/x-amz-json-1.1",
            "KMSInternalException",
            "injected fault",
        )
    }
    pub fn kms_throttling() -> Self {
        Self::json(
            400,
            "application/x-amz-json-1.1",
            "ThrottlingException",
            "injected fault",
        )
    }
}

/// Which of the requests matching a rule it hits.
#[derive(Debug, Clone)]
pub enum Hits {
    /// These (1-based) requests.
    Nth(Vec<u32>),
    /// Every one, until the rule is cleared.
    Every,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub op: String,
    /// Only requests whose path contains this (an S3 object key).
    pub path_contains: Option<String>,
    pub hits: Hits,
    pub fault: Fault,
    /// Requests that matched so far.
    seen: u32,
}

impl Rule {
    pub fn new(op: impl Into<String>, hits: Hits, fault: Fault) -> Self {
        Self {
            op: op.into(),
            path_contains: None,
            hits,
            fault,
            seen: 0,
        }
    }
    pub fn on_path(mut self, fragment: impl Into<String>) -> Self {
        self.path_contains = Some(fragment.into());
        self
    }
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    /// Requests by operation (faulted or not).
    requests: BTreeMap<String, u32>,
    /// Faults injected, as `(operation, request number within its rule)`.
    injected: Vec<(String, u32)>,
}

/// The injector; clones share their rules and counts.
#[derive(Debug, Clone, Default)]
pub struct FaultInjector {
    state: Arc<Mutex<State>>,
}

impl FaultInjector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule (the first rule that matches a request decides).
    pub fn arm(&self, rule: Rule) {
        self.lock().rules.push(rule);
    }

    /// Removes every rule: the fault clears.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Requests by operation since the last call, and the faults injected meanwhile.
    pub fn take(&self) -> (BTreeMap<String, u32>, Vec<(String, u32)>) {
        let mut s = self.lock();
        (
            std::mem::take(&mut s.requests),
            std::mem::take(&mut s.injected),
        )
    }

    /// `inner` (the SDK's HTTP client) with this injector in front of it.
    pub fn wrap(&self, inner: SharedHttpClient) -> SharedHttpClient {
        SharedHttpClient::new(Client {
            inner,
            injector: self.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every rule matching the request counts it; the first that hits it decides.
    fn decide(&self, op: &str, path: &str) -> Option<Fault> {
        let mut s = self.lock();
        *s.requests.entry(op.to_owned()).or_default() += 1;
        let mut decided = None;
        for rule in s.rules.iter_mut().filter(|r| {
            r.op == op
                && r.path_contains
                    .as_deref()
                    .is_none_or(|fragment| path.contains(fragment))
        }) {
            rule.seen += 1;
            let hit = match &rule.hits {
                Hits::Nth(ns) => ns.contains(&rule.seen),
                Hits::Every => true,
            };
            if hit && decided.is_none() {
                decided = Some((rule.fault.clone(), rule.seen));
            }
        }
        let (fault, n) = decided?;
        s.injected.push((op.to_owned(), n));
        Some(fault)
    }
}

/// The operation a request calls, named as `RequestCounter` names it: JSON protocols by
/// their `X-Amz-Target`, S3 by the `x-id` the SDK puts in the query (`HEAD` has none; the
/// only one Steward sends is `HeadObject`).
fn operation(request: &HttpRequest) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        let (service, op) = target.split_once('.').unwrap_or(("", target));
        let service = match service {
            s if s.starts_with("DynamoDB") => "DynamoDB",
            "TrentService" => "KMS",
            "AWSEvents" => "EventBridge",
            "AmazonSQS" => "SQS",
            "AWSStepFunctions" => "SFN",
            s => s,
        };
        return format!("{service}.{op}");
    }
    let query = request.uri().split_once('?').map_or("", |(_, q)| q);
    match query.split('&').find_map(|kv| kv.strip_prefix("x-id=")) {
        Some(op) => format!("S3.{op}"),
        None if request.method() == "HEAD" => "S3.HeadObject".to_owned(),
        None => format!("S3.{}", request.method()),
    }
}

#[derive(Debug)]
struct Client {
    inner: SharedHttpClient,
    injector: FaultInjector,
}

impl HttpClient for Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            inner: self.inner.http_connector(settings, components),
            injector: self.injector.clone(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    inner: SharedHttpConnector,
    injector: FaultInjector,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let path = request
            .uri()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        let Some(fault) = self.injector.decide(&operation(&request), &path) else {
            return self.inner.call(request);
        };
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            match fault {
                Fault::Respond {
                    status,
                    content_type,
                    body,
                } => Ok(response(status, content_type, body.into_bytes())),
                Fault::TransactionThrottled => transaction_throttled(&request),
                Fault::LoseResponse => {
                    let answer = inner.call(request).await?;
                    // Read to the end: the emulator has finished the request.
                    ByteStream::new(answer.into_body())
                        .collect()
                        .await
                        .map_err(|e| ConnectorError::io(e.into()))?;
                    Err(ConnectorError::timeout(
                        "injected fault: the response was lost".into(),
                    ))
                }
                Fault::FailEntries { detail_type, code } => {
                    fail_entries(&inner, request, &detail_type, code).await
                }
            }
        })
    }
}

fn response(status: u16, content_type: &str, body: Vec<u8>) -> HttpResponse {
    let mut r = HttpResponse::new(
        StatusCode::try_from(status).expect("a valid status"),
        SdkBody::from(body),
    );
    r.headers_mut()
        .insert("content-type", content_type.to_owned());
    r.headers_mut()
        .insert("x-amzn-requestid", "fault".to_owned());
    r
}

fn transaction_throttled(request: &HttpRequest) -> Result<HttpResponse, ConnectorError> {
    let body = request
        .body()
        .bytes()
        .ok_or_else(|| io("a streaming body"))?;
    let body: Value = serde_json::from_slice(body).map_err(io)?;
    let items = body["TransactItems"].as_array().map_or(0, Vec::len);
    let mut reasons = vec![json!({"Code": "None"}); items.saturating_sub(1)];
    reasons.push(json!({"Code": "ThrottlingError", "Message": "injected fault"}));
    let answer = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
        "CancellationReasons": reasons,
    });
    Ok(response(
        400,
        "application/x-amz-json-1.0",
        answer.to_string().into_bytes(),
    ))
}

fn io(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::other(e.to_string().into(), None)
}

/// Sends the `PutEvents` entries not of `detail_type`, and answers those as failed with `code`,
/// each result in its entry's position.
async fn fail_entries(
    inner: &SharedHttpConnector,
    mut request: HttpRequest,
    detail_type: &str,
    code: &str,
) -> Result<HttpResponse, ConnectorError> {
    let body = request
        .body()
        .bytes()
        .ok_or_else(|| io("a streaming body"))?;
    let mut body: Value = serde_json::from_slice(body).map_err(io)?;
    let entries = body["Entries"].as_array().cloned().unwrap_or_default();
    let fails = |e: &Value| e["DetailType"].as_str() == Some(detail_type);
    let sent: Vec<Value> = entries.iter().filter(|e| !fails(e)).cloned().collect();
    let mut accepted: Vec<Value> = Vec::new();
    if !sent.is_empty() {
        body["Entries"] = Value::Array(sent);
        let bytes = body.to_string().into_bytes();
        // The body changed, and with it its length (the emulators check no signatures).
        request
            .headers_mut()
            .insert("content-length", bytes.len().to_string());
        *request.body_mut() = SdkBody::from(bytes);
        let answer = inner.call(request).await?;
        let status = answer.status().as_u16();
        let bytes = ByteStream::new(answer.into_body())
            .collect()
            .await
            .map_err(io)?
            .to_vec();
        if status != 200 {
            return Ok(response(status, "application/x-amz-json-1.1", bytes));
        }
        let answer: Value = serde_json::from_slice(&bytes).map_err(io)?;
        accepted = answer["Entries"].as_array().cloned().unwrap_or_default();
    }
    let mut accepted = accepted.into_iter();
    let results: Vec<Value> = entries
        .iter()
        .map(|e| {
            if fails(e) {
                json!({"ErrorCode": code, "ErrorMessage": "injected fault"})
            } else {
                accepted.next().unwrap_or(Value::Null)
            }
        })
        .collect();
    let failed = results
        .iter()
        .filter(|r| r.get("ErrorCode").is_some())
        .count();
    let answer = json!({"FailedEntryCount": failed, "Entries": results});
    Ok(response(
        200,
        "application/x-amz-json-1.1",
        answer.to_string().into_bytes(),
    ))
}
