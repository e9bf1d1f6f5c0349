//! Retirement: the version serving production cannot be retired without a
//! replacement; version 2, which no longer serves, retires naming version 1.

use super::script::{check, ok, refused, Cast, Script};
use super::MODEL;

/// dana is refused retiring version 1, then retires version 2.
pub(super) async fn retirement(cast: &Cast, sc: &mut Script) -> anyhow::Result<()> {
    sc.step(
        "dana tries to retire version 1, which serves production, without naming a replacement",
    );
    let e = refused(
        cast.as_("dana")
            .retire(MODEL, 1, "superseded by version 2", None)
            .await,
        422,
        "policy_violation",
        "retiring the serving version without replacement",
    )?;
    sc.refused(&e);

    sc.step("dana retires version 2, which no longer serves, naming version 1 as its replacement");
    let v = ok(
        cast.as_("dana")
            .retire(
                MODEL,
                2,
                "auc fell to 0.79 on live traffic; version 1 restored",
                Some(1),
            )
            .await,
        "retiring version 2",
    )?;
    check(v["stage"] == "retired", "version 2 is retired")?;
    sc.ok(format!(
        "version 2 retired (replacement: version {}); version 1 serves production",
        v["retirement"]["replacement"]
    ));

    Ok(())
}
