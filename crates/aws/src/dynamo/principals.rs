//! Principal roles, served from a TTL cache so that authenticating a request costs no
//! request when warm.
//!
//! Invariant: a role change committed through this instance is seen at once (the commit
//! refreshes the cache); one made through another instance after at most the TTL.

use std::collections::HashMap;
use std::time::Instant;

use steward_core::ports::{Commit, Put};
use steward_core::records::PrincipalRecord;
use steward_core::types::PrincipalId;
use steward_core::StoreError;

use super::items::from_item;
use super::keys;
use super::requests::{decode_all, Query};
use super::DynamoStore;

/// Principal records cached at most (the cache is cleared when full).
const PRINCIPAL_CACHE_MAX: usize = 10_000;

#[derive(Default)]
pub(super) struct PrincipalCache {
    entries: HashMap<PrincipalId, (Instant, Option<PrincipalRecord>)>,
}

impl DynamoStore {
    /// A principal's record, from the cache while it is younger than the TTL.
    pub(super) async fn cached_principal(
        &self,
        id: &PrincipalId,
    ) -> Result<Option<PrincipalRecord>, StoreError> {
        if !self.principal_ttl.is_zero() {
            let cache = self.principals.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, rec)) = cache.entries.get(id) {
                if at.elapsed() < self.principal_ttl {
                    return Ok(rec.clone());
                }
            }
        }
        let rec: Option<PrincipalRecord> = self
            .get_item(&keys::principal_key(id.as_ref()))
            .await?
            .map(from_item)
            .transpose()?;
        if !self.principal_ttl.is_zero() {
            let mut cache = self.principals.lock().unwrap_or_else(|e| e.into_inner());
            if cache.entries.len() >= PRINCIPAL_CACHE_MAX {
                cache.entries.clear();
            }
            cache
                .entries
                .insert(id.clone(), (Instant::now(), rec.clone()));
        }
        Ok(rec)
    }

    /// Every principal (a consistent query of the principals partition).
    pub(super) async fn all_principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        decode_all(
            self.query_all(Query::table(keys::PRINCIPALS_PK.into()))
                .await?,
        )
    }

    pub(super) fn remember_principals(&self, commit: &Commit) {
        if self.principal_ttl.is_zero() {
            return;
        }
        let mut cache = self.principals.lock().unwrap_or_else(|e| e.into_inner());
        for p in &commit.puts {
            if let Put::Principal(p, _) = p {
                cache
                    .entries
                    .insert(p.id.clone(), (Instant::now(), Some(p.clone())));
            }
        }
    }
}
