//! The registry and audit log on one DynamoDB table: [`DynamoStore`] implements the core's
//! [`Registry`] and [`AuditLog`] ports with the keys and access patterns of
//! `crates/aws/ACCESS_PATTERNS.md` (keep the two in step).
//!
//! Invariants:
//! - Every call is a fixed small number of requests and none is a `Scan`: point reads are one
//!   consistent `BatchGetItem` (or `GetItem`), lists one `Query` (two for a stage filter or an
//!   audit page that crosses a partition), and every state change one `TransactWriteItems`.
//! - A commit applies all of a [`Commit`] or nothing: records with their expectations as
//!   conditions, the idempotency record, the audit events at `head.size + 1 ..`, the Merkle
//!   nodes they complete and the head conditioned on its old size (`commit.rs`). A failed
//!   expectation is `Conflict`, a taken key `IdempotencyKeyTaken`; a lost race for the head
//!   alone is retried on the new head, a bounded number of times. A `Conflict` is reported
//!   after a short random pause that widens while this instance keeps losing races, so that
//!   callers that retry at once (core's `register`) do not collide again in lockstep.
//! - The audit head is cached between calls. Point reads (`get_many`, `model`, `version`,
//!   `promotion`) fetch it in the same batch, so a governance action's commit is planned on a
//!   head that is milliseconds old and a commit costs one request; a stale head costs a
//!   retry, never a fork.
//! - Reads that decide anything (point reads, a model's versions, promotions, card revisions,
//!   production history, principals, the audit partitions) are strongly consistent. Queries on
//!   a GSI (list models, reviews, incidents, events of one model) are eventually consistent,
//!   as DynamoDB offers them.
//! - Principal roles are served from a TTL cache (default 5 s, [`DynamoStore::with_principal_ttl`];
//!   0 disables it) so authenticating a request costs no request when warm. A role change made
//!   through another instance (another Lambda) is therefore seen here after at most the TTL;
//!   changes committed through this instance are seen at once.
//! - Checkpoints are not signed here: the checkpoint function reads [`DynamoStore::head`],
//!   signs, and stores with [`DynamoStore::put_checkpoint`], which never moves the latest
//!   checkpoint backwards.
//!
//! Layout: this file holds the store and its constructor; `requests.rs` builds and sends the
//! reads (`GetItem`, `BatchGetItem`, `Query`), `audit_head.rs` caches and reads the head and
//! stores checkpoints, `audit_log.rs` implements [`AuditLog`] (event pages, proofs from the
//! stored Merkle subtrees), `commit.rs` plans, sends and retries the transaction,
//! `principals.rs` keeps the role cache and `registry.rs` implements [`Registry`]. `items.rs`
//! and `keys.rs` are the item codecs and key layout; `outbox.rs` the stream side;
//! `sessions.rs` the console's sign-in state ([`DynamoSessions`], the `SessionStore` port);
//! `deliveries.rs` webhook deliveries ([`DynamoDeliveries`], the `Deliveries` port). Webhook
//! subscriptions are registry records (`WEBHOOKS` / `{id}`), committed like the others.

mod audit_head;
mod audit_log;
mod commit;
mod deliveries;
mod items;
mod keys;
mod outbox;
mod principals;
mod registry;
mod requests;
mod serving;
mod sessions;
mod table;

use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::Client;

#[cfg(doc)]
use steward_core::ports::{AuditLog, Commit, Registry};

pub use audit_head::AuditHead;
pub use deliveries::DynamoDeliveries;
pub use outbox::{audit_event_from_image, StreamedAuditEvent, OUTBOX_MARKER_TTL, TASK_TOKEN_TTL};
pub use sessions::DynamoSessions;
pub use table::create_table;

pub(crate) use requests::sdk_error;

use commit::Contention;
use items::Head;
use principals::PrincipalCache;

/// The registry and audit log on one DynamoDB table.
pub struct DynamoStore {
    client: Client,
    table: String,
    signer_public: (String, Vec<u8>),
    head: Mutex<Option<Head>>,
    principal_ttl: Duration,
    principals: Mutex<PrincipalCache>,
    contention: Mutex<Contention>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .field("key_id", &self.signer_public.0)
            .field("principal_ttl", &self.principal_ttl)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store on `table`. `signer_public` is `(key id, raw public key)` of the key that signs
    /// checkpoints (the checkpoint function's KMS key), returned by [`AuditLog::public_key`].
    pub fn new(client: Client, table: String, signer_public: (String, Vec<u8>)) -> Self {
        Self {
            client,
            table,
            signer_public,
            head: Mutex::new(None),
            principal_ttl: Duration::from_secs(5),
            principals: Mutex::new(PrincipalCache::default()),
            contention: Mutex::new(Contention::new()),
        }
    }

    /// How long a principal's roles are served from memory (`0` reads the table every time).
    pub fn with_principal_ttl(mut self, ttl: Duration) -> Self {
        self.principal_ttl = ttl;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}
