//! Creating the table as `ACCESS_PATTERNS.md` designs it (tests and tooling; the SAM template
//! declares the same table).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use steward_core::StoreError;

use super::items::EXPIRES_AT;
use super::sdk_error;

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::backend("cannot build the table definition", e)
}

fn key(name: &str, t: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(t)
        .build()
        .map_err(build_error)
}

/// Creates `table`: `pk`/`sk` strings, on-demand capacity, the GSIs `gsi1`..`gsi3` (keys
/// `gsiNpk`/`gsiNsk`, projecting all attributes) and `gsi4` (keys only), a `NEW_IMAGE` stream (the outbox) and TTL
/// on `expires_at`. Waits until the table is active.
///
/// The SAM template's `AWS::DynamoDB::Table` must declare exactly this.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let mut attrs = Vec::new();
    for name in [
        "pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "gsi4pk", "gsi4sk",
    ] {
        attrs.push(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)?,
        );
    }
    let mut indexes = Vec::new();
    for i in 1..=4 {
        let projection = if i == 4 {
            ProjectionType::KeysOnly
        } else {
            ProjectionType::All
        };
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(format!("gsi{i}"))
                .key_schema(key(&format!("gsi{i}pk"), KeyType::Hash)?)
                .key_schema(key(&format!("gsi{i}sk"), KeyType::Range)?)
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .map_err(build_error)?,
        );
    }
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attrs))
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .set_global_secondary_indexes(Some(indexes))
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await
        .map_err(|e| sdk_error("CreateTable", e))?;

    let mut waited = Duration::ZERO;
    loop {
        let d = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTable", e))?;
        let status = d.table().and_then(|t| t.table_status());
        let indexes_active = d
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .all(|g| {
                g.index_status()
                    .is_none_or(|s| *s == aws_sdk_dynamodb::types::IndexStatus::Active)
            });
        if status == Some(&TableStatus::Active) && indexes_active {
            break;
        }
        if waited > Duration::from_secs(300) {
            return Err(StoreError::backend_msg(format!(
                "table {table} did not become active within 5 minutes"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        waited += Duration::from_millis(500);
    }

    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(EXPIRES_AT)
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await
        .map_err(|e| sdk_error("UpdateTimeToLive", e))?;
    Ok(())
}
