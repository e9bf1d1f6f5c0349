//! `steward inventory` against a `steward serve` child process: a table by default, RFC 4180
//! CSV with `--format csv`, the API's JSON with `--format json`.

mod common;

use common::{add_principals, Server, MANIFEST};
use serde_json::Value;

#[test]
fn the_inventory_prints_as_csv_with_a_header_row_and_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let principals = tmp.path().join("principals.toml");
    let tokens = add_principals(&principals);
    let server = Server::start(&data, &["--principals", principals.to_str().unwrap()]);
    let as_ = |who: &str| server.cli(&tokens[who]);
    let manifest = tmp.path().join("manifest.json");
    std::fs::write(&manifest, MANIFEST).unwrap();
    as_("dev")
        .args(["register", "credit-risk", "--manifest"])
        .arg(&manifest)
        .assert()
        .success();

    let out = as_("audit")
        .args(["inventory", "--format", "csv"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(
        lines,
        [
            "name,owner_team,owner_contact,risk_tier,stage,production_version,production_since,\
             latest_version,last_review_at,last_review_by,next_periodic_review,open_incidents,\
             card_completeness,card_missing",
            "credit-risk,credit-ml,credit-ml@example.com,high,development,,,1,,,,0,0.86,rollback_tested",
            "",
        ],
        "{csv:?}"
    );

    let out = as_("audit")
        .args(["inventory", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["next_cursor"].is_null(), "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(items[0]["name"], "credit-risk");
    assert_eq!(items[0]["owner"]["team"], "credit-ml");
    assert_eq!(items[0]["stage"], "development");
    assert_eq!(items[0]["open_incidents"]["count"], 0);

    let table = as_("audit").arg("inventory").output().unwrap();
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("credit-risk"), "{table}");
}
