//! The serving inventory on the table: one item per endpoint in the `SERVING#ENDPOINTS`
//! partition (sorted by `{platform}/{environment}/{endpoint}`), and versions found by their
//! artifact through gsi2 (`ARTIFACT#{sha256}`) and gsi4 (`URI#{sha256 of the URI}`, keys only).
//!
//! Invariant: the artifact indexes are eventually consistent, like every GSI: a version
//! registered a moment before a serving report may not match it yet; the next report does.
//! Versions written before the indexes existed enter them on their next write.

use std::collections::BTreeMap;

use steward_core::ids::VersionNumber;
use steward_core::ports::Page;
use steward_core::records::VersionRef;
use steward_core::serving::ServingRecord;
use steward_core::types::{ModelName, Sha256};
use steward_core::StoreError;

use super::items::str_attr;
use super::keys::{self, decode_cursor};
use super::requests::{decode_rows, page_of, Query};
use super::DynamoStore;

/// `{name}#{version:010}` back into a version reference.
fn version_ref(sk: &str) -> Option<VersionRef> {
    let (name, version) = sk.rsplit_once('#')?;
    Some(VersionRef {
        name: ModelName::parse(name).ok()?,
        version: VersionNumber::new(version.parse().ok()?).ok()?,
    })
}

impl DynamoStore {
    /// Requests: 1 `GetItem`-like batch read (with the audit head).
    pub(super) async fn serving_record(
        &self,
        key: &str,
    ) -> Result<Option<ServingRecord>, StoreError> {
        self.point_read(keys::serving_key(key)).await
    }

    /// Requests: 1 `Query` of the partition after the cursor.
    pub(super) async fn serving_page(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ServingRecord>, StoreError> {
        let after = decode_cursor(cursor)?;
        let q = Query::table(keys::SERVING_RECORDS_PK.into());
        let (rows, evaluated) = self.index_page(q, "sk", after, limit).await?;
        Ok(page_of(decode_rows(rows)?, limit, evaluated))
    }

    /// Requests: 1 `Query` of gsi4, and 1 of gsi2 when the SHA-256 is known.
    pub(super) async fn artifact_versions(
        &self,
        sha256: Option<&Sha256>,
        uri: &str,
    ) -> Result<Vec<VersionRef>, StoreError> {
        let mut found = BTreeMap::new();
        let mut queries = vec![("gsi4", "gsi4sk", keys::artifact_uri_gsi_pk(uri))];
        if let Some(sha) = sha256 {
            queries.push(("gsi2", "gsi2sk", keys::artifact_sha_gsi_pk(sha)));
        }
        for (index, sk, pk) in queries {
            for item in self.query_all(Query::index(index, pk)).await? {
                if let Some(v) = str_attr(&item, sk).and_then(version_ref) {
                    found.insert((v.name.to_string(), v.version), v);
                }
            }
        }
        Ok(found.into_values().collect())
    }
}
