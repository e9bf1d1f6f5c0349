//! `steward audit verify`: offline from a data directory's store or from an AWS deployment's
//! S3 audit objects (`--s3`, with the `aws` build feature), or online through the API.
//!
//! Online, nothing the server says is taken on trust except the public key (unless pinned with
//! `--public-key`): every event's leaf hash is recomputed from its canonical encoding, the
//! Merkle tree is rebuilt from those leaves, its root must equal the signed checkpoint's, the
//! checkpoint signature must verify, and every event's inclusion proof must lead to that root.
//!
//! The signature algorithm is always the trusted key's ([`PublicKey`]): an Ed25519 key
//! verifies Ed25519 signatures only, a P-256 (KMS) key ECDSA P-256 ones only.

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use serde_json::Value;
use steward_core::audit::checkpoint::verify_checkpoint_with;
use steward_core::audit::merkle::verify_inclusion;
use steward_core::audit::{AuditEvent, Checkpoint, Hash, MerkleTree, PublicKey};
use steward_core::ids::VersionNumber;
use tokio::task::JoinSet;

use crate::client::{items, next_cursor, Client, ClientError};

/// Events fetched per request when paging through the log.
const PAGE: usize = 1000;

/// Parses a public key given as hex: an Ed25519 key (64 hex digits), or a P-256 DER
/// `SubjectPublicKeyInfo` (as KMS `GetPublicKey` returns it) or SEC1 point.
pub fn parse_public_key(hex_key: &str) -> anyhow::Result<PublicKey> {
    let bytes = hex::decode(hex_key.trim()).map_err(|_| {
        anyhow!(
            "the public key is not hex: expected an Ed25519 key (64 hex digits) or a P-256 \
             DER SubjectPublicKeyInfo in hex"
        )
    })?;
    PublicKey::from_bytes(&bytes).map_err(|e| anyhow!("{e}"))
}

/// Reads a public key file: PEM (`-----BEGIN PUBLIC KEY-----`), DER, or hex text.
pub fn read_public_key_file(path: &Path) -> anyhow::Result<PublicKey> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = std::str::from_utf8(&bytes).ok().map(str::trim);
    let key = match text {
        Some(t) if t.starts_with("-----BEGIN") => {
            PublicKey::from_pem(t).map_err(|e| anyhow!("{e}"))
        }
        Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit()) => parse_public_key(t),
        _ => PublicKey::from_bytes(&bytes).map_err(|e| anyhow!("{e}")),
    };
    key.with_context(|| format!("{} holds no usable public key", path.display()))
}

/// Where the verifying key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Pinned,
    DataDir,
    Server,
}

impl KeySource {
    fn describe(self) -> &'static str {
        match self {
            KeySource::Pinned => "pinned with --public-key",
            KeySource::DataDir => "the data directory's own key; pin one with --public-key",
            KeySource::Server => "as published by the server; pin it with --public-key",
        }
    }
}

/// What a successful verification covered.
#[derive(Debug, Clone)]
pub struct Report {
    pub events: u64,
    pub checkpoints: Option<u64>,
    pub size: u64,
    pub root: Hash,
    pub checkpoint_time: Option<String>,
    pub key_id: String,
    /// [`PublicKey::algorithm`] of the key, when one was used.
    pub key_algorithm: Option<&'static str>,
    pub key_source: KeySource,
    /// Inclusion proofs verified, of how many (online only).
    pub proofs: Option<(u64, u64)>,
}

impl Report {
    /// The report as JSON (`--output json`).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "verified": true,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "size": self.size,
            "root": hex::encode(self.root),
            "checkpoint_time": self.checkpoint_time,
            "key_id": self.key_id,
            "key_algorithm": self.key_algorithm,
            "key_source": match self.key_source {
                KeySource::Pinned => "pinned",
                KeySource::DataDir => "data_dir",
                KeySource::Server => "server",
            },
            "inclusion_proofs": self.proofs.map(|(ok, _)| ok),
        })
    }

    pub fn render(&self, whence: &str) -> String {
        let mut pairs = vec![(
            "events",
            format!(
                "{} (every leaf hash recomputed from the event)",
                self.events
            ),
        )];
        if let Some(c) = self.checkpoints {
            pairs.push(("checkpoints", format!("{c} (every signature verified)")));
        }
        let signed = match &self.checkpoint_time {
            Some(t) => format!("{} events, signed {t}", self.size),
            None => format!("{} events", self.size),
        };
        pairs.push(("checkpoint", signed));
        pairs.push(("root", hex::encode(self.root)));
        let key = match self.key_algorithm {
            Some(alg) => format!("{} ({alg}; {})", self.key_id, self.key_source.describe()),
            None => format!("{} ({})", self.key_id, self.key_source.describe()),
        };
        pairs.push(("key id", key));
        if let Some((ok, total)) = self.proofs {
            pairs.push(("inclusion proofs", format!("{ok} of {total} verified")));
        }
        format!("audit log verified {whence}\n{}", crate::render::kv(&pairs))
    }
}

/// Verifies a data directory's audit log straight from its SQLite store.
pub fn offline(dir: &Path, pinned: Option<PublicKey>) -> anyhow::Result<Report> {
    let pinned = match pinned {
        None => None,
        Some(PublicKey::Ed25519(k)) => Some(k),
        // The embedded backend signs with Ed25519 only; no other key signed these checkpoints.
        Some(other) => bail!(
            "the pinned key {} is an {} key, but a data directory's checkpoints are signed \
             with Ed25519",
            other.key_id(),
            other.algorithm()
        ),
    };
    let report = steward_local::verify_data_dir(dir, pinned).map_err(|e| match e {
        steward_local::LocalError::Verify(why) => anyhow!(why),
        other => anyhow!("{other}"),
    })?;
    let (key, source) = match pinned {
        Some(k) => (k, KeySource::Pinned),
        None => (
            steward_local::signing_key(dir)?.verifying_key(),
            KeySource::DataDir,
        ),
    };
    let key = PublicKey::Ed25519(key);
    Ok(Report {
        events: report.events,
        checkpoints: Some(report.checkpoints),
        size: report.size,
        root: report.root,
        checkpoint_time: None,
        key_id: key.key_id(),
        key_algorithm: Some(key.algorithm()),
        key_source: source,
        proofs: None,
    })
}

/// Verifies an AWS deployment's audit log from its S3 audit objects alone (those under
/// `prefix` in `bucket`) against the pinned key. `endpoint` replaces AWS's S3 endpoint (an
/// emulator) and switches to path-style addressing; credentials and, unless given, the region
/// come from the AWS SDK's usual sources.
#[cfg(feature = "aws")]
pub async fn s3(
    bucket: &str,
    prefix: &str,
    key: &PublicKey,
    endpoint: Option<&str>,
    region: Option<&str>,
) -> anyhow::Result<Report> {
    let sdk = steward_aws::sdk_config(region, endpoint, false).await;
    // An endpoint given by address (an emulator on loopback) has no per-bucket host names.
    let config = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(endpoint.is_some())
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
    let report = steward_aws::s3::verify_s3(&client, bucket, prefix, key).await?;
    Ok(Report {
        events: report.events,
        checkpoints: Some(report.checkpoints),
        size: report.size,
        root: report.root,
        checkpoint_time: None,
        key_id: key.key_id(),
        key_algorithm: Some(key.algorithm()),
        key_source: KeySource::Pinned,
        proofs: None,
    })
}

/// An audit event as `GET /v1/audit` lists it.
#[derive(Debug, Deserialize)]
struct WireEvent {
    seq: u64,
    time: String,
    actor: String,
    action: String,
    name: Option<String>,
    version: Option<VersionNumber>,
    details: Value,
    leaf_hash: String,
}

/// An inclusion proof as `GET /v1/audit/proof/{seq}` answers it.
#[derive(Debug, Deserialize)]
struct WireProof {
    seq: u64,
    size: u64,
    leaf_hash: String,
    hashes: Vec<String>,
}

fn hash_hex(s: &str, what: &str) -> anyhow::Result<Hash> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(s, &mut h).map_err(|_| anyhow!("{what} is not 64 hex digits"))?;
    Ok(h)
}

fn api(e: ClientError, what: &str) -> anyhow::Error {
    let mut msg = format!("{what}: {e}");
    if let Some(api) = e.api() {
        for d in &api.details {
            msg.push_str(&format!("\n  {d}"));
        }
    }
    anyhow!(msg)
}

/// The log as rebuilt from the API, and the latest checkpoint it matches.
struct Online {
    client: Client,
    pinned: Option<PublicKey>,
    key: Option<(PublicKey, KeySource)>,
    tree: MerkleTree,
    checkpoint: Option<Checkpoint>,
    /// Whether the tree rebuilt from the listed events has the signed root. When it does not,
    /// the proofs are checked against the signed root alone, which names the changed events.
    root_matches: bool,
}

impl Online {
    /// Fetches the latest checkpoint and checks its signature.
    async fn fetch_checkpoint(&mut self) -> anyhow::Result<Option<Checkpoint>> {
        let body = match self.client.audit_checkpoint().await {
            Ok(b) => b,
            Err(ClientError::Api(e)) if e.status == 404 => return Ok(None),
            Err(e) => return Err(api(e, "fetching the checkpoint")),
        };
        let cp: Checkpoint = serde_json::from_value(body.clone())
            .context("the checkpoint is not {size, root, time, key_id, signature}")?;
        let key = match &self.key {
            Some((k, _)) => k,
            None => {
                let k = match &self.pinned {
                    Some(k) => (k.clone(), KeySource::Pinned),
                    None => {
                        let hex_key = body["public_key"].as_str().ok_or_else(|| {
                            anyhow!("the server publishes no public key with its checkpoint; pass --public-key")
                        })?;
                        (
                            parse_public_key(hex_key).context("the server's public key")?,
                            KeySource::Server,
                        )
                    }
                };
                &self.key.insert(k).0
            }
        };
        verify_checkpoint_with(&cp, key)
            .map_err(|e| anyhow!("checkpoint of size {}: {e}", cp.size))?;
        Ok(Some(cp))
    }

    /// Appends the events after those already in the tree, recomputing every leaf hash.
    async fn fetch_events(&mut self) -> anyhow::Result<()> {
        loop {
            let after = self.tree.len();
            let page = self
                .client
                .audit_events(None, after, Some(PAGE))
                .await
                .map_err(|e| api(e, &format!("fetching audit events after {after}")))?;
            let list = items(&page);
            for raw in list {
                let w: WireEvent = serde_json::from_value(raw.clone()).with_context(|| {
                    format!(
                        "audit event after seq {}: unexpected shape",
                        self.tree.len()
                    )
                })?;
                let expected = self.tree.len() + 1;
                if w.seq != expected {
                    bail!("expected event {expected}, the API returned event {}: an event is missing, duplicated or out of order", w.seq);
                }
                let claimed = hash_hex(&w.leaf_hash, &format!("the leaf hash of event {}", w.seq))?;
                let event = AuditEvent {
                    seq: w.seq,
                    time: w.time,
                    actor: w.actor,
                    action: w.action,
                    name: w.name,
                    version: w.version,
                    details: w.details,
                };
                let leaf = event.leaf_hash();
                if leaf != claimed {
                    bail!(
                        "event {}: the leaf hash the API sent does not match the event's contents",
                        w.seq
                    );
                }
                self.tree.push(leaf);
            }
            if list.is_empty() || next_cursor(&page).is_none() {
                return Ok(());
            }
        }
    }

    /// Brings tree and checkpoint to the same size and checks the root; the log may grow
    /// while we read it, so a few rounds are allowed.
    async fn sync(&mut self) -> anyhow::Result<()> {
        for _ in 0..5 {
            self.checkpoint = self.fetch_checkpoint().await?;
            self.fetch_events().await?;
            let size = self.checkpoint.as_ref().map_or(0, |c| c.size);
            let n = self.tree.len();
            if n < size {
                bail!("the latest checkpoint signs {size} events but the API lists only {n}: events were removed or truncated");
            }
            if n == size {
                self.root_matches = self
                    .checkpoint
                    .as_ref()
                    .is_none_or(|cp| self.tree.root() == cp.root);
                return Ok(());
            }
            // More events than the checkpoint we read: the log grew meanwhile; read again.
        }
        bail!("the log kept growing while it was read; retry when it is quieter")
    }
}

/// Verifies the audit log through the API.
pub async fn online(
    client: &Client,
    pinned: Option<PublicKey>,
    concurrency: usize,
) -> anyhow::Result<Report> {
    let mut st = Online {
        client: client.clone(),
        pinned,
        key: None,
        tree: MerkleTree::new(),
        checkpoint: None,
        root_matches: false,
    };
    st.sync().await?;
    let Some(cp) = st.checkpoint.clone() else {
        return Ok(Report {
            events: 0,
            checkpoints: None,
            size: 0,
            root: st.tree.root(),
            checkpoint_time: None,
            key_id: st
                .pinned
                .as_ref()
                .map_or_else(|| "-".into(), PublicKey::key_id),
            key_algorithm: st.pinned.as_ref().map(PublicKey::algorithm),
            key_source: if st.pinned.is_some() {
                KeySource::Pinned
            } else {
                KeySource::Server
            },
            proofs: Some((0, 0)),
        });
    };

    // Fetch every inclusion proof, `concurrency` at a time.
    let mut proofs: Vec<(u64, anyhow::Result<WireProof>)> = Vec::with_capacity(cp.size as usize);
    let mut pending = 1..=cp.size;
    let mut set = JoinSet::new();
    let spawn = |set: &mut JoinSet<_>, seq: u64| {
        let c = client.clone();
        set.spawn(async move {
            let r = match c.audit_proof(seq).await {
                Ok(body) => serde_json::from_value::<WireProof>(body)
                    .map_err(|e| anyhow!("unexpected shape: {e}")),
                Err(e) => Err(api(e, "fetching it")),
            };
            (seq, r)
        });
    };
    for seq in pending.by_ref().take(concurrency.max(1)) {
        spawn(&mut set, seq);
    }
    while let Some(done) = set.join_next().await {
        proofs.push(done.context("a proof task panicked")?);
        if let Some(seq) = pending.next() {
            spawn(&mut set, seq);
        }
    }
    proofs.sort_by_key(|(seq, _)| *seq);

    let mut failures = Vec::new();
    let mut verified = 0u64;
    for (seq, proof) in proofs {
        let outcome: anyhow::Result<()> = async {
            let p = proof?;
            if p.seq != seq {
                bail!("the API answered with the proof of event {}", p.seq);
            }
            if p.size > st.tree.len() {
                // Proved against a checkpoint newer than ours: catch up, re-checking the root.
                st.sync().await?;
                if p.size > st.tree.len() {
                    bail!(
                        "proved against a tree of {} events, larger than any signed checkpoint",
                        p.size
                    );
                }
            }
            let leaf = st
                .tree
                .leaf(seq - 1)
                .ok_or_else(|| anyhow!("not in the listed events"))?;
            if hash_hex(&p.leaf_hash, "its leaf hash")? != leaf {
                bail!("the proof is for a different leaf than the listed event");
            }
            let hashes = p
                .hashes
                .iter()
                .map(|h| hash_hex(h, "a proof hash"))
                .collect::<anyhow::Result<Vec<Hash>>>()?;
            // The signed root is always trustworthy; a root of our own tree only once it is
            // known to extend to a signed root.
            let signed = st
                .checkpoint
                .as_ref()
                .filter(|c| c.size == p.size)
                .map(|c| c.root);
            let root = match signed {
                Some(root) => root,
                None if st.root_matches => st.tree.root_at(p.size).map_err(|e| anyhow!("{e}"))?,
                None => bail!(
                    "proved against a tree of {} events, which no verified checkpoint signs",
                    p.size
                ),
            };
            verify_inclusion(&leaf, seq - 1, p.size, &hashes, &root).map_err(|e| anyhow!("{e}"))?;
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => verified += 1,
            Err(e) => failures.push(format!("event {seq}: inclusion proof: {e:#}")),
        }
    }
    if !st.root_matches || !failures.is_empty() {
        let mut msg = String::new();
        if !st.root_matches {
            msg.push_str(&format!(
                "the Merkle root of the {} listed events is not the signed checkpoint's root: events were changed",
                st.tree.len()
            ));
            if failures.is_empty() {
                bail!(msg);
            }
            msg.push('\n');
        }
        let shown: Vec<&str> = failures.iter().take(10).map(String::as_str).collect();
        let more = failures.len().saturating_sub(shown.len());
        msg.push_str(&format!(
            "{} of {} inclusion proofs failed:\n  {}",
            failures.len(),
            cp.size,
            shown.join("\n  ")
        ));
        if more > 0 {
            msg.push_str(&format!("\n  ... and {more} more"));
        }
        bail!(msg);
    }
    let (key, source) = st
        .key
        .expect("a checkpoint was verified, so a key was chosen");
    let latest = st.checkpoint.clone().unwrap_or_else(|| cp.clone());
    Ok(Report {
        events: st.tree.len(),
        checkpoints: None,
        size: latest.size,
        root: latest.root,
        checkpoint_time: Some(latest.time.clone()),
        key_id: key.key_id(),
        key_algorithm: Some(key.algorithm()),
        key_source: source,
        proofs: Some((verified, cp.size)),
    })
}
