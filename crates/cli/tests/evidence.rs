//! `steward evidence` end to end on the demo's high-risk model: the real binary downloads the
//! pack from a real `steward serve`, `steward evidence verify` checks it offline (directory and
//! zip), and each kind of tampering fails with its reason; the document renders in a real
//! headless Chromium with every Annex IV section (screenshot to `docs/evidence/` when
//! `STEWARD_SCREENSHOTS=1`, else beside the test's output).
//!
//! Without `chromedriver` on the PATH the browser test fails, saying how to install it.

mod common;

use std::path::{Path, PathBuf};

use common::browser::{browser, driver};
use common::{steward, Server};
use fantoccini::Locator;

/// The demo's data directory (kept) and the hex audit key it printed.
fn demo(dir: &Path) -> (PathBuf, String) {
    let keep = dir.join("demo");
    let out = steward()
        .args(["demo", "--keep"])
        .arg(&keep)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "the demo failed:\n{stdout}");
    let key = stdout
        .lines()
        .find_map(|l| l.split("--public-key ").nth(1))
        .expect("the demo prints how to verify its pack")
        .trim()
        .to_owned();
    (keep, key)
}

fn token(data: &Path, who: &str) -> String {
    std::fs::read_to_string(data.join("tokens.txt"))
        .unwrap()
        .lines()
        .find(|l| l.split_whitespace().next() == Some(who))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_owned()
}

/// `steward evidence verify PATH --public-key KEY`: (success, stdout + stderr).
fn verify(path: &Path, key: &str) -> (bool, String) {
    let out = steward()
        .args(["evidence", "verify"])
        .arg(path)
        .args(["--public-key", key])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).unwrap();
        let target = to.join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn an_auditor_downloads_the_demo_pack_and_verifies_it_offline_and_tampering_fails_with_its_reason()
{
    let tmp = tempfile::tempdir().unwrap();
    let (data, key) = demo(tmp.path());

    // The zip the demo kept verifies offline with the key it printed.
    let (ok, text) = verify(&data.join("credit-risk-v1-evidence.zip"), &key);
    assert!(ok, "{text}");
    assert!(text.contains("verified: credit-risk version 1"), "{text}");
    assert!(
        text.contains("document.html is the rendering of document.json"),
        "{text}"
    );

    // A damaged zip fails too, with its reason.
    let mut zip = std::fs::read(data.join("credit-risk-v1-evidence.zip")).unwrap();
    let at = zip.len() / 3;
    zip[at] ^= 0xff;
    let damaged = tmp.path().join("damaged.zip");
    std::fs::write(&damaged, zip).unwrap();
    let (ok, text) = verify(&damaged, &key);
    assert!(!ok, "a damaged zip verified");
    assert!(text.contains("verification FAILED"), "{text}");

    // An auditor downloads it from the server; a developer may not.
    let server = Server::start(&data, &[]);
    let pack = tmp.path().join("pack");
    let out = server
        .cli(&token(&data, "audrey"))
        .args(["evidence", "credit-risk", "1", "--out"])
        .arg(&pack)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("verified with the server's key"),
        "{stdout}"
    );
    let out = server
        .cli(&token(&data, "dana"))
        .args(["evidence", "credit-risk", "1", "--zip"])
        .arg(tmp.path().join("dana.zip"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("403 forbidden"));
    server.stop_gracefully();

    let (ok, text) = verify(&pack, &key);
    assert!(ok, "{text}");
    for f in [
        "document.html",
        "document.json",
        "checkpoint.json",
        "manifest.json",
        "manifest.sig",
    ] {
        assert!(pack.join(f).is_file(), "{f} missing");
    }
    let events = walk(&pack.join("events"));
    let proofs = walk(&pack.join("proofs"));
    assert!(events.len() >= 12 && events.len() == proofs.len());

    let tampered = |name: &str, change: &dyn Fn(&Path)| {
        let dir = tmp.path().join(name);
        copy_dir(&pack, &dir);
        change(&dir);
        let (ok, text) = verify(&dir, &key);
        assert!(!ok, "{name}: a tampered pack verified:\n{text}");
        text
    };
    // A flipped byte in any file.
    for file in walk(&pack) {
        let rel = file.strip_prefix(&pack).unwrap().to_owned();
        let name = format!("flipped-{}", rel.display()).replace('/', "-");
        let text = tampered(&name, &|dir| {
            let path = dir.join(&rel);
            let mut bytes = std::fs::read(&path).unwrap();
            let at = bytes.len() / 2;
            bytes[at] ^= 0x01;
            std::fs::write(&path, bytes).unwrap();
        });
        assert!(text.contains("verification FAILED"), "{text}");
        let rel = rel.to_string_lossy();
        if rel != "manifest.json" && rel != "manifest.sig" {
            assert!(
                text.contains(&format!("{rel} has been altered")),
                "{rel}: {text}"
            );
        }
    }
    // A removed event.
    let first = events[0].strip_prefix(&pack).unwrap().to_owned();
    let text = tampered("removed-event", &|dir| {
        std::fs::remove_file(dir.join(&first)).unwrap()
    });
    assert!(
        text.contains(&format!(
            "{} is in the signed manifest but missing",
            first.display()
        )),
        "{text}"
    );
    // A swapped proof.
    let (a, b) = (
        proofs[0].strip_prefix(&pack).unwrap().to_owned(),
        proofs[1].strip_prefix(&pack).unwrap().to_owned(),
    );
    let text = tampered("swapped-proof", &|dir| {
        let (pa, pb) = (dir.join(&a), dir.join(&b));
        let (ba, bb) = (std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
        std::fs::write(&pa, bb).unwrap();
        std::fs::write(&pb, ba).unwrap();
    });
    assert!(text.contains("has been altered"), "{text}");
    // An added file.
    let text = tampered("added-file", &|dir| {
        std::fs::write(dir.join("note.txt"), "x").unwrap()
    });
    assert!(
        text.contains("note.txt is in the pack but not in the signed manifest"),
        "{text}"
    );
    // The wrong key (another valid Ed25519 key).
    let other = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let (ok, text) = verify(&pack, other);
    assert!(!ok);
    assert!(text.contains("not by the key given"), "{text}");
}

#[tokio::test]
async fn the_document_renders_in_a_headless_browser_with_every_annex_iv_section() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _) = demo(tmp.path());
    let pack = tmp.path().join("pack");
    let zip = std::fs::read(data.join("credit-risk-v1-evidence.zip")).unwrap();
    let files = steward_core::pack::from_zip(&zip).unwrap();
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(pack.join("document.html"), &files.files["document.html"]).unwrap();

    let d = driver().await;
    let c = browser(&d).await;
    c.goto(&format!("file://{}", pack.join("document.html").display()))
        .await
        .unwrap();
    let headings: Vec<String> = {
        let mut out = Vec::new();
        for h in c.find_all(Locator::Css("h2")).await.unwrap() {
            out.push(h.text().await.unwrap());
        }
        out
    };
    assert_eq!(
        headings,
        [
            "1. General description",
            "2. Development",
            "3. Data",
            "4. Evaluation and testing",
            "5. Human oversight",
            "6. Risk management and the policy in force",
            "7. Post-market monitoring",
            "8. Lifecycle changes",
        ]
    );
    // Content from the registry: the four production reviewers, cited audit events, the
    // artifact's hash; and the inline style applied under the document's own CSP.
    let body = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "tom",
        "bea",
        "carl",
        "rita",
        "audit event #",
        "SHA-256",
        "high",
    ] {
        assert!(body.contains(expected), "the document lacks {expected:?}");
    }
    let border = c
        .execute(
            "return getComputedStyle(document.querySelector('th')).borderTopStyle",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(border, "solid", "the inline style applies under the CSP");

    c.set_window_size(1100, 1400).await.unwrap();
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let dir = if std::env::var("STEWARD_SCREENSHOTS").as_deref() == Ok("1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/evidence")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("evidence-screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("credit-risk-v1-document.png"), png).unwrap();
    // The human oversight section: who decided each review, with its audit event.
    c.execute(
        "document.getElementById('oversight').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join("credit-risk-v1-oversight.png"), png).unwrap();
    c.close().await.unwrap();
}
