//! Stream records for the stream publisher, without DynamoDB Streams.
//!
//! The DynamoDB Streams API client (`aws-sdk-dynamodbstreams`) is not among the workspace's
//! dependencies, so the tests do not read DynamoDB Local's stream. They read the items the
//! commits wrote back from the table (raw `AttributeValue`s, one `Query` per partition) and
//! wrap each, as its `NewImage`, in a stream record of the documented Lambda event shape
//! (`Records[].eventName/dynamodb.{Keys,NewImage,SequenceNumber,...}`, DynamoDB JSON with
//! binary attributes in base64), then deserialize that JSON into the same `aws_lambda_events`
//! type the function receives.

use std::collections::HashMap;

use anyhow::Result;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::stream::StreamPublisher;

use super::Stack;

impl Stack {
    /// The stream publisher as its function builds it.
    pub fn publisher(&self) -> StreamPublisher {
        self.publisher_over(&self.backend)
    }

    /// The stream publisher over `backend`'s clients (e.g. one behind a fault injector), with
    /// this stack's bucket and bus.
    pub fn publisher_over(&self, backend: &AwsBackend) -> StreamPublisher {
        StreamPublisher {
            store: backend.store.clone(),
            objects: backend.audit_objects(&self.env).expect("an audit bucket"),
            events: backend.publisher(&self.env).expect("an event bus"),
        }
    }

    /// Raw items of one partition, in sort-key order.
    pub async fn partition(&self, pk: &str) -> Result<Vec<HashMap<String, AttributeValue>>> {
        let out = self
            .backend
            .store
            .client()
            .query()
            .table_name(self.backend.store.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.items().to_vec())
    }

    /// Every audit event item as an `INSERT` record, in sequence order: what the stream
    /// delivers of the audit log (other items left out).
    pub async fn audit_records(&self) -> Result<Vec<Value>> {
        Ok(self
            .partition("AUDIT#0")
            .await?
            .iter()
            .filter(|i| i.get("entity").and_then(|e| e.as_s().ok()) == Some(&"audit_event".into()))
            .map(|i| stream_record("INSERT", i))
            .collect())
    }

    /// [`Stack::audit_records`] as one stream event.
    pub async fn audit_stream(&self) -> Result<StreamEvent> {
        Ok(batch(&self.audit_records().await?))
    }
}

/// A stream record of Lambda's documented DynamoDB event shape for one item.
pub fn stream_record(event_name: &str, item: &HashMap<String, AttributeValue>) -> Value {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let image = serde_json::to_value(serde_dynamo::Item::from(item.clone())).unwrap();
    let keys = json!({"pk": image["pk"], "sk": image["sk"]});
    json!({
        "eventID": format!("{n:032x}"),
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_795_000_000.0,
            "Keys": keys,
            "NewImage": image,
            "SequenceNumber": format!("{:021}", 100_000_000_000_000_000_000u128 + u128::from(n)),
            "SizeBytes": 512,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/steward/stream/2026-11-27T10:00:00.000",
    })
}

/// A stream event of `records`.
pub fn batch(records: &[Value]) -> StreamEvent {
    serde_json::from_value(json!({ "Records": records }))
        .expect("the documented stream event shape")
}

/// A stream record's `SequenceNumber`: what a batch item failure names.
pub fn sequence_number(record: &Value) -> String {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .expect("a stream record has a SequenceNumber")
        .to_owned()
}
