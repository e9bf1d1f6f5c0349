//! Audit, who may do what and the proof of what was done: ada lists the principals;
//! audrey verifies the audit log through the API (every leaf, the signed root, an inclusion
//! proof per event) and then, with the server gone, straight from the data directory.
//!
//! Invariant: the offline root must equal the one the API proved, or the demo fails.

use std::path::Path;

use super::script::{check, ok, Cast, Script};
use super::CAST;
use crate::client::items;
use crate::render::short;
use crate::verify;

/// ada (admin) lists the principals: every cast member.
pub(super) async fn principals(cast: &Cast, sc: &mut Script) -> anyhow::Result<()> {
    sc.step("ada (admin) lists the principals and their roles");
    let ps = ok(cast.as_("ada").principals().await, "principals")?;
    check(
        items(&ps).len() == CAST.len(),
        "every cast member is a principal",
    )?;
    sc.ok(format!(
        "{} principals, seeded from principals.toml",
        items(&ps).len()
    ));

    Ok(())
}

/// audrey verifies the log through the API; returns the report the offline check must match.
pub(super) async fn online_verification(
    cast: &Cast,
    sc: &mut Script,
) -> anyhow::Result<verify::Report> {
    sc.step("audrey verifies the audit log through the API: every leaf, the signed root, every inclusion proof");
    let report = verify::online(cast.as_("audrey"), None, 8).await?;
    check(
        report
            .proofs
            .is_some_and(|(ok, total)| ok == total && total == report.events),
        "an inclusion proof verified for every event",
    )?;
    sc.ok(format!(
        "verified: {} events, {} inclusion proofs, signed root {} (key {})",
        report.events,
        report.proofs.map_or(0, |(ok, _)| ok),
        short(&hex::encode(report.root)),
        report.key_id
    ));
    Ok(report)
}

/// With the server stopped, audrey verifies `dir` offline and finds the root the API proved.
pub(super) fn offline_verification(
    sc: &mut Script,
    dir: &Path,
    online: &verify::Report,
) -> anyhow::Result<()> {
    sc.step("the server stops; audrey verifies the data directory offline, straight from the SQLite store");
    let offline = verify::offline(dir, None)?;
    check(
        offline.root == online.root && offline.size == online.size,
        "the offline root differs from the one the API proved",
    )?;
    let checkpoints = offline.checkpoints.unwrap_or(0);
    sc.ok(format!(
        "verified: {} events, {checkpoints} signed checkpoint{}, root {} — the same root the API proved",
        offline.events,
        if checkpoints == 1 { "" } else { "s" },
        short(&hex::encode(offline.root))
    ));
    Ok(())
}
