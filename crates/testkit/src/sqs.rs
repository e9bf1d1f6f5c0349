//! SQS events as a Lambda event source mapping hands them to a function, built from messages
//! received from a queue or straight from bodies.

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{json, Value};

/// The queue ARN [`sqs_event_of`] names as the source.
pub const TEST_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:monitor";

/// The SQS event for `messages` received from the queue `arn`.
pub fn sqs_event_for(
    arn: &str,
    messages: &[aws_sdk_sqs::types::Message],
) -> serde_json::Result<SqsEvent> {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            record(
                json!(m.message_id()),
                json!(m.receipt_handle()),
                json!(m.body()),
                json!(m.md5_of_body()),
                arn,
            )
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
}

/// An SQS event whose messages carry these bodies directly (what a queue holds when a rule is
/// bypassed or a body is malformed): message ids `m-0`, `m-1`, ... from [`TEST_QUEUE_ARN`].
pub fn sqs_event_of(bodies: &[String]) -> serde_json::Result<SqsEvent> {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            record(
                json!(format!("m-{i}")),
                json!("r"),
                json!(b),
                json!(""),
                TEST_QUEUE_ARN,
            )
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
}

fn record(id: Value, receipt: Value, body: Value, md5: Value, arn: &str) -> Value {
    json!({
        "messageId": id, "receiptHandle": receipt, "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
        "messageAttributes": {}, "md5OfBody": md5,
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1",
    })
}
