//! Governance events to EventBridge: `PutEvents` with source `steward.governance`, the domain
//! event's `detail_type` as DetailType and its `detail` (which carries `schema_version`) as
//! Detail.
//!
//! Invariants:
//! - A request holds at most 10 entries and at most 256 KiB (PutEvents' limits).
//! - `PutEvents` answers HTTP 200 even when entries failed; `FailedEntryCount` and the
//!   per-entry results are always read, and exactly the failed entries are sent again, with
//!   capped, jittered exponential backoff and a bounded number of attempts. Entries failing
//!   with an error that retrying cannot fix (malformed, not authorised) are not retried.
//! - Whatever still failed is returned as a typed error naming each entry, so the caller (the
//!   DynamoDB stream consumer) fails its batch and the stream delivers it again: delivery is
//!   at least once, never silently less.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_smithy_types::error::display::DisplayErrorContext;
use steward_core::error::StoreError;
use steward_core::records::DomainEvent;
use thiserror::Error;

/// The source of every governance event.
pub const SOURCE: &str = steward_core::events::SOURCE;
/// PutEvents accepts at most this many entries per request.
pub const MAX_ENTRIES: usize = 10;
/// PutEvents accepts at most this many bytes per request.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Allowance per entry for what the size count below leaves out: Source, Time, Resources.
const ENTRY_OVERHEAD: usize = 256;

/// Entry error codes that a retry cannot fix.
pub const PERMANENT_CODES: &[&str] = &[
    "InvalidArgument",
    "MalformedDetail",
    "NotAuthorizedForSourceException",
    "NotAuthorizedForDetailTypeException",
    "AccessDeniedException",
    ENTRY_TOO_LARGE,
];
/// The code Steward gives an entry it never sent because it exceeds the request size limit.
pub const ENTRY_TOO_LARGE: &str = "Steward.EntryTooLarge";

/// One PutEvents entry as Steward sends it (bus and source are the publisher's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub detail_type: String,
    /// The detail as JSON text.
    pub detail: String,
}

impl Entry {
    fn from_event(event: &DomainEvent) -> Self {
        Self {
            detail_type: event.detail_type.clone(),
            detail: event.detail.to_string(),
        }
    }

    /// Bytes this entry counts against the request limit (with an allowance for the rest).
    fn size(&self) -> usize {
        self.detail_type.len() + self.detail.len() + ENTRY_OVERHEAD
    }
}

/// What PutEvents said about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    Accepted { event_id: String },
    Failed { code: String, message: String },
}

/// One `PutEvents` request: the seam the retry loop is written against, so that it can be
/// tested with entries failing on demand (no emulator fails entries on request).
#[async_trait]
pub trait PutEntries: Send + Sync {
    /// Sends `entries` (at most [`MAX_ENTRIES`]) in one request; one result per entry, in
    /// order. `Err` means the request as a whole failed and no entry was accepted.
    async fn put_entries(&self, entries: &[Entry]) -> Result<Vec<EntryResult>, PublishError>;
}

/// How often and how patiently failed entries are sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per entry, the first included (at least 1).
    pub max_attempts: u32,
    /// The delay before the second attempt; it doubles for each further attempt.
    pub base_delay: Duration,
    /// The longest delay between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// "Equal jitter": half the capped exponential delay, plus a random share of the other half.
    fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_delay);
        let half = exp / 2;
        let jitter = (uuid::Uuid::new_v4().as_u128() % 1_000) as u32;
        half + half.mul_f64(f64::from(jitter) / 1_000.0)
    }
}

/// An entry that was not published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    /// Its position in the events handed to [`EventBridgePublisher::publish`].
    pub index: usize,
    pub detail_type: String,
    /// EventBridge's `ErrorCode` of the last attempt (or [`ENTRY_TOO_LARGE`]).
    pub code: String,
    pub message: String,
    /// How many times it was sent.
    pub attempts: u32,
}

/// Why events were not (all) published.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PublishError {
    /// Some entries still failed after the retries they were allowed.
    #[error("{} of {total} events were not published: {}", failed.len(), describe(failed))]
    EntriesFailed {
        total: usize,
        failed: Vec<FailedEntry>,
    },
    /// A whole PutEvents request failed (after the SDK's own retries). Events before it in
    /// the batch may have been published.
    #[error(
        "EventBridge PutEvents failed ({published} of {total} events published before): {message}"
    )]
    Request {
        message: String,
        published: usize,
        total: usize,
    },
}

fn describe(failed: &[FailedEntry]) -> String {
    failed
        .iter()
        .map(|f| {
            format!(
                "#{} {} ({}: {}, {} attempts)",
                f.index, f.detail_type, f.code, f.message, f.attempts
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<PublishError> for StoreError {
    fn from(e: PublishError) -> Self {
        StoreError::backend("publishing governance events failed", e)
    }
}

/// Splits entries (by index) into requests within PutEvents' count and size limits; entries
/// too large for any request are returned apart.
fn chunk(entries: &[Entry]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let (mut chunks, mut too_large) = (Vec::new(), Vec::new());
    let (mut current, mut bytes) = (Vec::new(), 0);
    for (i, e) in entries.iter().enumerate() {
        let size = e.size();
        if size > MAX_REQUEST_BYTES {
            too_large.push(i);
            continue;
        }
        if current.len() == MAX_ENTRIES || bytes + size > MAX_REQUEST_BYTES {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(i);
        bytes += size;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    (chunks, too_large)
}

/// Publishes `events` through `put`: chunks within the PutEvents limits, then, per chunk,
/// resends exactly the entries that failed with a retryable code until they are accepted or
/// out of attempts. Returns the event ids in the order of `events`.
pub async fn publish_with<P: PutEntries + ?Sized>(
    put: &P,
    retry: &RetryPolicy,
    events: &[DomainEvent],
) -> Result<Vec<String>, PublishError> {
    let entries: Vec<Entry> = events.iter().map(Entry::from_event).collect();
    let total = entries.len();
    let (chunks, too_large) = chunk(&entries);
    let mut ids: Vec<Option<String>> = vec![None; total];
    let mut failed: Vec<FailedEntry> = too_large
        .into_iter()
        .map(|i| FailedEntry {
            index: i,
            detail_type: entries[i].detail_type.clone(),
            code: ENTRY_TOO_LARGE.into(),
            message: format!(
                "{} bytes, more than a PutEvents request may hold",
                entries[i].size()
            ),
            attempts: 0,
        })
        .collect();
    let max_attempts = retry.max_attempts.max(1);

    for chunk in chunks {
        let mut pending = chunk;
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            if attempt > 1 {
                tokio::time::sleep(retry.delay(attempt - 1)).await;
            }
            let batch: Vec<Entry> = pending.iter().map(|&i| entries[i].clone()).collect();
            let results = match put.put_entries(&batch).await {
                Ok(r) => r,
                Err(PublishError::Request { message, .. }) => {
                    return Err(PublishError::Request {
                        message,
                        published: ids.iter().filter(|id| id.is_some()).count(),
                        total,
                    })
                }
                Err(e) => return Err(e),
            };
            if results.len() != pending.len() {
                return Err(PublishError::Request {
                    message: format!(
                        "PutEvents answered {} results for {} entries",
                        results.len(),
                        pending.len()
                    ),
                    published: ids.iter().filter(|id| id.is_some()).count(),
                    total,
                });
            }
            let mut again = Vec::new();
            for (&i, result) in pending.iter().zip(results) {
                match result {
                    EntryResult::Accepted { event_id } => ids[i] = Some(event_id),
                    EntryResult::Failed { code, message } => {
                        let permanent = PERMANENT_CODES.contains(&code.as_str());
                        if permanent || attempt >= max_attempts {
                            failed.push(FailedEntry {
                                index: i,
                                detail_type: entries[i].detail_type.clone(),
                                code,
                                message,
                                attempts: attempt,
                            });
                        } else {
                            tracing::warn!(
                                entry = i,
                                detail_type = %entries[i].detail_type,
                                %code,
                                attempt,
                                "EventBridge entry failed; sending it again"
                            );
                            again.push(i);
                        }
                    }
                }
            }
            pending = again;
        }
    }

    if failed.is_empty() {
        Ok(ids.into_iter().map(Option::unwrap_or_default).collect())
    } else {
        failed.sort_by_key(|f| f.index);
        Err(PublishError::EntriesFailed { total, failed })
    }
}

/// Publishes governance events to an EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
    source: String,
    retry: RetryPolicy,
}

impl EventBridgePublisher {
    /// A publisher to `bus_name` with source [`SOURCE`] and the default [`RetryPolicy`].
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
            source: SOURCE.to_owned(),
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    /// Publishes `events` (see [`publish_with`]); the event ids in the order of `events`.
    /// Requests: one `PutEvents` per 10 events, plus one per retry round of failed entries.
    pub async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<String>, PublishError> {
        publish_with(self, &self.retry, events).await
    }
}

#[async_trait]
impl PutEntries for EventBridgePublisher {
    async fn put_entries(&self, entries: &[Entry]) -> Result<Vec<EntryResult>, PublishError> {
        let request: Vec<PutEventsRequestEntry> = entries
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(&self.source)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    .build()
            })
            .collect();
        let out = self
            .client
            .put_events()
            .set_entries(Some(request))
            .send()
            .await
            .map_err(|e| PublishError::Request {
                message: DisplayErrorContext(&e).to_string(),
                published: 0,
                total: entries.len(),
            })?;
        let results: Vec<EntryResult> = out
            .entries()
            .iter()
            .map(|r| match (r.event_id(), r.error_code()) {
                (Some(id), None) => EntryResult::Accepted {
                    event_id: id.to_owned(),
                },
                (_, code) => EntryResult::Failed {
                    code: code.unwrap_or("Unknown").to_owned(),
                    message: r.error_message().unwrap_or_default().to_owned(),
                },
            })
            .collect();
        let failed = results
            .iter()
            .filter(|r| matches!(r, EntryResult::Failed { .. }))
            .count();
        if usize::try_from(out.failed_entry_count()).ok() != Some(failed) {
            tracing::warn!(
                failed_entry_count = ?out.failed_entry_count(),
                failed,
                "PutEvents FailedEntryCount disagrees with its entries; trusting the entries"
            );
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail_len: usize) -> Entry {
        Entry {
            detail_type: "ModelDeployed".into(),
            detail: "x".repeat(detail_len),
        }
    }

    #[test]
    fn requests_hold_at_most_ten_entries() {
        let entries: Vec<Entry> = (0..23).map(|_| entry(10)).collect();
        let (chunks, too_large) = chunk(&entries);
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 3]);
        assert!(too_large.is_empty());
        assert_eq!(chunks.concat(), (0..23).collect::<Vec<_>>());
    }

    #[test]
    fn requests_stay_under_256_kib_and_oversized_entries_are_set_apart() {
        let entries = vec![
            entry(100_000),
            entry(100_000),
            entry(100_000),
            entry(MAX_REQUEST_BYTES),
            entry(10),
        ];
        let (chunks, too_large) = chunk(&entries);
        assert_eq!(chunks, vec![vec![0, 1], vec![2, 4]]);
        assert_eq!(too_large, vec![3]);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(800),
        };
        for retry in 1..10 {
            let d = p.delay(retry);
            let cap = Duration::from_millis(100 * 2u64.pow(retry - 1)).min(p.max_delay);
            assert!(d >= cap / 2 && d <= cap, "retry {retry}: {d:?}");
        }
    }
}
