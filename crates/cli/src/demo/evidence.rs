//! Evidence for auditors: audrey takes credit-risk v1's signed documentation pack (EU AI Act
//! Annex IV), verifies it with the audit key, and sees a single flipped byte refused.
//!
//! Invariant: the pack must verify with the key `GET /v1/audit/key` publishes and cite an
//! audit event for every review of the production promotion, or the demo fails.

use steward_core::pack::{from_zip, verify_pack, DOCUMENT_HTML};

use super::script::{check, ok, Cast, Script};
use super::MODEL;
use crate::verify::parse_public_key;

/// audrey (auditor) takes and verifies v1's pack; returns the zip.
pub(super) async fn pack(cast: &Cast, sc: &mut Script) -> anyhow::Result<Vec<u8>> {
    sc.step(format!(
        "audrey (auditor) takes the evidence pack of {MODEL} v1: the Annex IV document, its events and proofs, signed"
    ));
    let audrey = cast.as_("audrey");
    let zip = audrey
        .evidence_pack(MODEL, 1)
        .await
        .map_err(|e| anyhow::anyhow!("the evidence pack: {}", super::script::describe(&e)))?;
    let key = ok(audrey.audit_key().await, "the audit key")?;
    let key = parse_public_key(key["public_key"].as_str().unwrap_or_default())?;
    let pack = from_zip(&zip)?;
    let report = verify_pack(&pack, &key).map_err(|e| anyhow::anyhow!("the pack: {e}"))?;
    let document: steward_core::pack::Document =
        serde_json::from_slice(&pack.files[steward_core::pack::DOCUMENT_JSON])?;
    let production = document
        .oversight
        .promotions
        .iter()
        .find(|p| p.target.as_str() == "production" && p.status == "approved");
    check(
        production.is_some_and(|p| {
            p.reviews.len() == 4
                && p.reviews
                    .iter()
                    .all(|r| r.decided.as_ref().is_some_and(|d| d.event.is_some()))
        }),
        "the pack cites an audit event for each of the four production reviews",
    )?;
    sc.ok(format!(
        "verified: {} files, {} audit events proven against checkpoint {}, {} facts match their events (key {})",
        report.files, report.events, report.checkpoint_size, report.facts, report.key_id
    ));

    sc.step("audrey flips one byte of document.html and verifies again");
    let mut tampered = pack.clone();
    if let Some(html) = tampered.files.get_mut(DOCUMENT_HTML) {
        let at = html.len() / 2;
        html[at] ^= 0x20;
    }
    match verify_pack(&tampered, &key) {
        Ok(_) => anyhow::bail!("a tampered pack verified"),
        Err(e) => sc.ok(format!("refused: {e}")),
    }
    Ok(zip)
}
