//! The web console in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! installed by `.ci/run`), driven over WebDriver (fantoccini) against a real `steward serve`
//! on 127.0.0.1: sign in, find the pending review in the inbox, read its card and evaluations,
//! approve it; a registrant's own review says why it may not be decided and a forged POST is
//! refused; markup in a model card stays inert; a POST without the CSRF token is refused;
//! logout ends the session; the audit page verifies the log in the browser (WebCrypto) and
//! reports a tampered inclusion proof as failed. Screenshots of the pages go to `docs/console/` when
//! `STEWARD_SCREENSHOTS=1` (how the committed ones were made), else beside the test's output.
//!
//! Without `chromedriver` on the PATH the test fails, saying how to install it.

mod common;

use std::time::{Duration, Instant};

use common::browser::{browser, driver, screenshot};
use common::{add_principals, steward, Server, MANIFEST};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

/// An API call as `token`'s principal; the answer's JSON.
async fn api(server: &Server, token: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", server.url);
    let r = match body {
        Some(b) => http.post(url).json(&b),
        None => http.get(url),
    }
    .bearer_auth(token)
    .send()
    .await
    .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A POST as `token`'s principal that must answer `status`; the answer's JSON.
async fn post(server: &Server, token: &str, path: &str, body: Value, status: u16) -> Value {
    let (got, answer) = api(server, token, path, Some(body)).await;
    assert_eq!(got, status, "POST {path}: {answer}");
    answer
}

async fn sign_in(c: &Client, server: &Server, token: &str) {
    c.goto(&format!("{}/console/login", server.url))
        .await
        .unwrap();
    c.find(Locator::Css("input[name=token]"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    c.find(Locator::Css("form[action='/console/login'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The click submits; the browser then follows the redirect to the inbox.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = c.current_url().await.unwrap();
        if url.path().ends_with("/console/reviews") {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "not signed in: {url}\n{}",
                c.source().await.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of the element at `css`, once the page has one.
async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// The text of the element at `css` once it contains `needle` (the page may still be the one
/// before a form's submission).
async fn text_with(c: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if t.contains(needle) {
                    return t;
                }
                assert!(
                    Instant::now() < deadline,
                    "{css} never said {needle:?}: {t}"
                );
            }
        }
        if Instant::now() > deadline {
            panic!("no {css} in {}", c.source().await.unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_signs_in_reads_the_review_and_approves_it_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let principals = tmp.path().join("principals.toml");
    let tokens = add_principals(&principals);
    let out = steward()
        .args([
            "principals",
            "add",
            "devtech",
            "--role",
            "developer",
            "--role",
            "technical-reviewer",
            "--file",
        ])
        .arg(&principals)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let devtech = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let server = Server::start(
        &tmp.path().join("data"),
        &["--principals", principals.to_str().unwrap()],
    );

    // A low-risk version in staging review, and one whose card carries markup, registered by
    // the principal who also holds the technical reviewer role.
    let manifest: Value = serde_json::from_str(MANIFEST).unwrap();
    let mut low = manifest.clone();
    low["risk_tier"] = json!("low");
    post(
        &server,
        &tokens["dev"],
        "/v1/models/credit-risk/versions",
        low.clone(),
        201,
    )
    .await;
    let p = post(
        &server,
        &tokens["dev"],
        "/v1/models/credit-risk/versions/1/promotions",
        json!({"target": "staging"}),
        202,
    )
    .await;
    let review = p["reviews"][0]["id"].as_str().unwrap().to_owned();
    let mut hostile = low;
    hostile["card"]["overview"] =
        json!("<script>window.__xss=1</script>\"><img src=x onerror=\"window.__xss=2\">");
    post(
        &server,
        &devtech,
        "/v1/models/own-model/versions",
        hostile,
        201,
    )
    .await;
    let own = post(
        &server,
        &tokens["dev"],
        "/v1/models/own-model/versions/1/promotions",
        json!({"target": "staging"}),
        202,
    )
    .await;
    let own_review = own["reviews"][0]["id"].as_str().unwrap().to_owned();

    let driver = driver().await;
    let c = browser(&driver).await;

    // The technical reviewer: inbox, review page, approval.
    sign_in(&c, &server, &tokens["tech"]).await;
    let link = c
        .find(Locator::Css(&format!(
            "a[href='/console/reviews/{review}']"
        )))
        .await
        .expect("the pending review in the inbox");
    screenshot(&c, "inbox").await;
    link.click().await.unwrap();
    let card = text(&c, "#card").await;
    assert!(
        card.contains(manifest["card"]["overview"].as_str().unwrap()),
        "{card}"
    );
    assert!(card.contains(manifest["card"]["rollback"]["procedure"].as_str().unwrap()));
    let evaluations = text(&c, "#evaluations").await;
    assert!(evaluations.contains("auc"), "{evaluations}");
    screenshot(&c, "review").await;
    c.find(Locator::Css("input[name=decision][value=approve]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("textarea[name=comment]"))
        .await
        .unwrap()
        .send_keys("card and metrics check out")
        .await
        .unwrap();
    c.find(Locator::Css("#decision button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_with(&c, "#decision", "nothing is left to decide").await;
    let (_, promotion) = api(
        &server,
        &tokens["dev"],
        &format!("/v1/promotions/{}", p["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(promotion["status"], "approved", "the promotion advanced");
    assert_eq!(promotion["reviews"][0]["decided_by"], "tech");

    // A POST without the CSRF token, from the signed-in page itself: refused.
    let status = c
        .execute_async(
            "const [path, done] = arguments; \
             fetch(path, {method: 'POST', body: new URLSearchParams({decision: 'approve'})}) \
               .then(r => done(r.status));",
            vec![json!(format!("/console/reviews/{own_review}/decision"))],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));

    // Sign out: the session ends.
    c.find(Locator::Css("form.logout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.goto(&format!("{}/console/reviews", server.url))
        .await
        .unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/login"),
        "signed out"
    );

    // The registrant who also reviews: told why before any click; a forged POST is refused.
    sign_in(&c, &server, &devtech).await;
    c.goto(&format!("{}/console/reviews/{own_review}", server.url))
        .await
        .unwrap();
    let why = text(&c, "#decision").await;
    assert!(why.contains("You may not decide this review"), "{why}");
    assert!(
        c.find(Locator::Css("input[name=decision]")).await.is_err(),
        "no decision form"
    );
    // Markup in the card is text: no script ran, no element was made from it.
    let xss = c.execute("return [window.__xss === undefined, document.querySelectorAll('main script, main img').length];", vec![]).await.unwrap();
    assert_eq!(xss, json!([true, 0]));
    assert!(text(&c, "#card")
        .await
        .contains("<script>window.__xss=1</script>"));
    let forged = c
        .execute_async(
            "const [path, done] = arguments; \
             const csrf = document.querySelector('input[name=csrf]').value; \
             fetch(path, {method: 'POST', body: new URLSearchParams({csrf, decision: 'approve'})}) \
               .then(r => done(r.status));",
            vec![json!(format!("/console/reviews/{own_review}/decision"))],
        )
        .await
        .unwrap();
    assert_eq!(
        forged,
        json!(403),
        "core refuses the registrant's own approval"
    );
    let (_, still) = api(
        &server,
        &tokens["dev"],
        &format!("/v1/promotions/{}", own["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(still["status"], "in_review");

    // Version 1 to production, then a version 2 after it: the model page's timeline shows both.
    for v in [1, 2] {
        let at = format!("/v1/models/credit-risk/versions/{v}");
        if v == 2 {
            let mut m: Value = serde_json::from_str(MANIFEST).unwrap();
            m["risk_tier"] = json!("low");
            m["card"]["overview"] = json!("Retrained on the 2026 applications.");
            post(
                &server,
                &tokens["dev"],
                "/v1/models/credit-risk/versions",
                m,
                201,
            )
            .await;
            let p = post(
                &server,
                &tokens["dev"],
                &format!("{at}/promotions"),
                json!({"target": "staging"}),
                202,
            )
            .await;
            let r = p["reviews"][0]["id"].as_str().unwrap().to_owned();
            post(
                &server,
                &tokens["tech"],
                &format!("/v1/reviews/{r}/decision"),
                json!({"decision": "approve"}),
                200,
            )
            .await;
        }
        post(
            &server,
            &tokens["dev"],
            &format!("{at}/deployments"),
            json!({"environment": "staging"}),
            201,
        )
        .await;
        let eval = steward_testkit::staging_evaluation(v);
        post(
            &server,
            &tokens["dev"],
            &format!("{at}/evaluations"),
            eval,
            201,
        )
        .await;
        let p = post(
            &server,
            &tokens["dev"],
            &format!("{at}/promotions"),
            json!({"target": "production"}),
            202,
        )
        .await;
        let r = p["reviews"][0]["id"].as_str().unwrap().to_owned();
        if v == 2 {
            // The review of the version that would replace version 1: what changed, side by side.
            c.goto(&format!("{}/console/reviews/{r}", server.url))
                .await
                .unwrap();
            let replaces = text(&c, "#replaces").await;
            assert!(
                replaces.contains("Replaces version 1 in production"),
                "{replaces}"
            );
            assert!(replaces.contains("card.overview"), "{replaces}");
            assert!(
                replaces.contains("Retrained on the 2026 applications."),
                "{replaces}"
            );
            let fairness = text(&c, "#fairness").await;
            assert!(fairness.contains("disparity"), "{fairness}");
            c.execute(
                "document.getElementById('replaces').scrollIntoView();",
                vec![],
            )
            .await
            .unwrap();
            screenshot(&c, "review-replacing").await;
        }
        post(
            &server,
            &tokens["tech"],
            &format!("/v1/reviews/{r}/decision"),
            json!({"decision": "approve"}),
            200,
        )
        .await;
        post(
            &server,
            &tokens["release"],
            &format!("{at}/deployments"),
            json!({"environment": "production"}),
            201,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    c.goto(&format!("{}/console/models/credit-risk", server.url))
        .await
        .unwrap();
    let timeline = c
        .find_all(Locator::Css("#timeline svg rect"))
        .await
        .unwrap();
    assert_eq!(timeline.len(), 2, "two versions served production");
    screenshot(&c, "model").await;

    // The auditor: the audit page verifies itself in the browser, and notices a tampered proof.
    c.find(Locator::Css("form.logout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_with(&c, "main", "Sign in to Steward").await;
    sign_in(&c, &server, &tokens["audit"]).await;
    c.goto(&format!("{}/console/audit", server.url))
        .await
        .unwrap();
    assert_eq!(
        audit_status(&c).await,
        "verified",
        "{}",
        text(&c, "#audit-verification").await
    );
    let report = text(&c, "#audit-verification").await;
    assert!(report.contains("signature verified"), "{report}");
    assert!(
        !report.contains(": 0 events"),
        "something was verified: {report}"
    );
    screenshot(&c, "audit").await;
    // Every proof the page fetches from now on has one hash altered.
    c.execute(
        "const real = window.fetch; \
         window.fetch = (path, init) => real(path, init).then(async r => { \
           if (!String(path).includes('/proofs/')) return r; \
           const p = await r.json(); \
           if (p.hashes.length) p.hashes[0] = (p.hashes[0][0] === '0' ? '1' : '0') + p.hashes[0].slice(1); \
           return new Response(JSON.stringify(p), {status: 200, headers: {'content-type': 'application/json'}}); }); \
         document.getElementById('audit-verification').dataset.status = 'pending'; \
         window.stewardAudit.verify();",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(audit_status(&c).await, "failed");
    let report = text(&c, "#audit-verification").await;
    assert!(report.contains("inclusion proof"), "{report}");

    c.close().await.unwrap();
    server.stop_gracefully();
}

/// The audit page's verdict, once its script has one.
async fn audit_status(c: &Client) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = c
            .find(Locator::Id("audit-verification"))
            .await
            .unwrap()
            .attr("data-status")
            .await
            .unwrap()
            .unwrap_or_default();
        if status != "pending" {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the audit page never finished verifying"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
