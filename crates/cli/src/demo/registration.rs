//! Registration: a card with a missing section is refused and names the field;
//! the complete manifest registers version 1 in development, its hashes on record.

use anyhow::anyhow;
use serde_json::Value;

use super::script::{check, ok, refused, s, Cast, Script};
use super::MODEL;
use crate::render::short;

/// dana registers without `card.rollback`: 422, naming the field.
pub(super) async fn refused_without_rollback(
    cast: &Cast,
    sc: &mut Script,
    manifest: &Value,
) -> anyhow::Result<()> {
    sc.step(format!(
        "dana registers {MODEL}, but its model card has no rollback section"
    ));
    let mut incomplete = manifest.clone();
    incomplete["card"]
        .as_object_mut()
        .ok_or_else(|| anyhow!("the manifest has no card"))?
        .remove("rollback");
    let e = refused(
        cast.as_("dana").register(MODEL, &incomplete, None).await,
        422,
        "validation_failed",
        "registering without card.rollback",
    )?;
    check(
        e.details
            .iter()
            .any(|d| d.field.as_deref() == Some("card.rollback")),
        "the refusal names card.rollback",
    )?;
    sc.refused(&e);

    Ok(())
}

/// dana registers the complete manifest: version 1, in development.
pub(super) async fn first_version(
    cast: &Cast,
    sc: &mut Script,
    manifest: &Value,
) -> anyhow::Result<()> {
    sc.step(format!(
        "dana registers {MODEL} with a complete card, lineage and evaluation"
    ));
    let v1 = ok(
        cast.as_("dana")
            .register(MODEL, manifest, Some("credit-risk-v1"))
            .await,
        "registering version 1",
    )?;
    check(
        v1["version"] == 1 && v1["stage"] == "development",
        "version 1 in development",
    )?;
    sc.ok(format!(
        "201 Created: {MODEL} version 1, {} risk, stage {}",
        s(&v1, "risk_tier"),
        s(&v1, "stage")
    ));
    sc.info(format!(
        "manifest sha256 {}  artifact sha256 {}  training data sha256 {}",
        short(s(&v1, "manifest_sha256")),
        short(v1["artifact"]["sha256"].as_str().unwrap_or("-")),
        short(
            v1["lineage"]["training_data"][0]["sha256"]
                .as_str()
                .unwrap_or("-")
        ),
    ));

    Ok(())
}
