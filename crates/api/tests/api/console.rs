//! The web console over real HTTP on 127.0.0.1: sign-in and sessions, the inbox, the review
//! page and its decision form, CSRF, escaping and the security headers. (The same flows in a
//! real browser are the console's browser tests.)

use anyhow::{ensure, Context, Result};
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;
use steward_core::types::RiskTier;

use crate::common::*;

/// A browser's view of the console: no redirects followed, the session cookie kept by hand.
pub(crate) struct Browser<'a> {
    app: &'a App,
    http: reqwest::Client,
    cookie: Option<String>,
}

/// An HTML answer.
pub(crate) struct Page {
    pub(crate) status: u16,
    headers: HeaderMap,
    pub(crate) html: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The CSRF token of the page's forms.
    pub(crate) fn csrf(&self) -> Result<String> {
        let at = self
            .html
            .find("name=\"csrf\" value=\"")
            .context("a form with a CSRF token")?;
        let rest = &self.html[at + "name=\"csrf\" value=\"".len()..];
        Ok(rest[..rest.find('"').context("quoted")?].to_owned())
    }
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a App) -> Result<Self> {
        Ok(Self {
            app,
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()?,
            cookie: None,
        })
    }

    pub(crate) async fn read(&self, r: reqwest::RequestBuilder) -> Result<Page> {
        let r = match &self.cookie {
            Some(c) => r.header(COOKIE, c),
            None => r,
        };
        let r = r.send().await?;
        Ok(Page {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            html: r.text().await?,
        })
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Page> {
        self.read(self.http.get(self.app.url(path))).await
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Result<Page> {
        self.read(self.http.post(self.app.url(path)).form(form))
            .await
    }

    /// Signs in with `who`'s token and keeps the session cookie.
    pub(crate) async fn sign_in(&mut self, who: &str) -> Result<Page> {
        let page = self
            .post("/console/login", &[("token", &token(who))])
            .await?;
        ensure!(page.status == 303, "sign-in: {} {}", page.status, page.html);
        let set = page
            .headers
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .context("a session cookie")?;
        self.cookie = Some(set.split(';').next().unwrap_or_default().to_owned());
        Ok(page)
    }
}

#[tokio::test]
async fn signing_in_opens_a_strict_http_only_session_and_signing_out_ends_it() -> Result<()> {
    let app = spawn_app().await?;
    let mut b = Browser::new(&app)?;
    let root = b.get("/").await?;
    assert_eq!((root.status, root.location()), (303, "/console/"));
    let inbox = b.get("/console/reviews").await?;
    assert_eq!((inbox.status, inbox.location()), (303, "/console/login"));

    let refused = b
        .post("/console/login", &[("token", "not-a-token")])
        .await?;
    assert_eq!(refused.status, 401);
    assert!(
        refused.html.contains("not one Steward knows"),
        "{}",
        refused.html
    );
    assert!(!refused.headers.contains_key(SET_COOKIE));

    let signed = b.sign_in("tech").await?;
    assert_eq!(signed.location(), "/console/reviews");
    let cookie = signed.headers[SET_COOKIE].to_str()?;
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=28800",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(
        !cookie.contains(&token("tech")),
        "the token is not the session"
    );
    let inbox = b.get("/console/reviews").await?;
    assert_eq!(inbox.status, 200);
    assert!(inbox.html.contains("tech"), "who is signed in");
    assert_eq!(
        inbox.headers["content-security-policy"].to_str()?,
        steward_api::console::CSP
    );
    assert_eq!(inbox.headers["x-content-type-options"], "nosniff");
    assert_eq!(inbox.headers["cache-control"], "no-store");

    let csrf = inbox.csrf()?;
    let forged = b.post("/console/logout", &[]).await?;
    assert_eq!(forged.status, 403, "a logout without the CSRF token");
    let out = b.post("/console/logout", &[("csrf", &csrf)]).await?;
    assert_eq!((out.status, out.location()), (303, "/console/login"));
    assert!(out.headers[SET_COOKIE].to_str()?.contains("Max-Age=0"));
    let after = b.get("/console/reviews").await?;
    assert_eq!(
        (after.status, after.location()),
        (303, "/console/login"),
        "the old cookie no longer signs in"
    );
    Ok(())
}

#[tokio::test]
async fn a_reviewer_approves_from_the_review_page_and_the_promotion_advances() -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let p = app.promote_as("dev", "credit-risk", 1, "staging").await?;
    let review = review_id(&p, "technical")?.to_owned();
    let mut b = Browser::new(&app)?;
    b.sign_in("tech").await?;
    let inbox = b.get("/console/reviews").await?;
    assert!(
        inbox.html.contains(&format!("/console/reviews/{review}")),
        "the pending review is in the inbox: {}",
        inbox.html
    );
    let page = b.get(&format!("/console/reviews/{review}")).await?;
    assert_eq!(page.status, 200, "{}", page.html);
    let card = &manifest(RiskTier::Low)["card"];
    for text in [
        card["overview"].as_str().unwrap(),
        card["rollback"]["procedure"].as_str().unwrap(),
        card["intended_use"]["purpose"].as_str().unwrap(),
    ] {
        assert!(
            page.html.contains(&maud::html! { (text) }.into_string()),
            "card text {text:?}"
        );
    }
    assert!(page.html.contains("Evaluations"));
    assert!(
        page.html.contains("<span class=\"pass\">pass</span>"),
        "metrics marked against their thresholds"
    );
    assert!(page.html.contains("name=\"decision\""));
    let csrf = page.csrf()?;
    let before = app.audit_size().await?;
    let done = b
        .post(
            &format!("/console/reviews/{review}/decision"),
            &[
                ("csrf", &csrf),
                ("decision", "approve"),
                ("comment", "looks right"),
                ("conditions", "watch drift\n"),
                ("conditions", "recheck in Q3"),
            ],
        )
        .await?;
    assert_eq!(
        (done.status, done.location()),
        (303, format!("/console/reviews/{review}").as_str())
    );
    let promotion = app
        .get(
            "dev",
            &format!("/v1/promotions/{}", p["id"].as_str().unwrap()),
        )
        .await?
        .expect(200)?;
    assert_eq!(promotion.body["status"], "approved");
    assert_eq!(promotion.body["reviews"][0]["decided_by"], "tech");
    assert_eq!(
        promotion.body["reviews"][0]["conditions"],
        json!(["watch drift", "recheck in Q3"])
    );
    assert!(app.audit_size().await? > before);
    let decided = app
        .audit_events(Some("credit-risk"))
        .await?
        .into_iter()
        .filter(|e| e["action"] == "review.decided")
        .map(|e| e["actor"].clone())
        .collect::<Vec<_>>();
    assert_eq!(
        decided,
        [json!("tech")],
        "audited as the signed-in principal"
    );
    let again = b.get(&format!("/console/reviews/{review}")).await?;
    assert!(
        again.html.contains("nothing is left to decide"),
        "{}",
        again.html
    );
    Ok(())
}

#[tokio::test]
async fn the_registrants_own_review_says_why_and_a_forged_decision_is_refused() -> Result<()> {
    let app = spawn_app().await?;
    app.register_as("devtech", "own", RiskTier::Low).await?;
    let p = app.promote_as("dev", "own", 1, "staging").await?;
    let review = review_id(&p, "technical")?.to_owned();
    let mut b = Browser::new(&app)?;
    b.sign_in("devtech").await?;
    let page = b.get(&format!("/console/reviews/{review}")).await?;
    assert_eq!(page.status, 200);
    assert!(
        page.html.contains("You may not decide this review"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("name=\"decision\""), "no decision form");
    let csrf = page.csrf()?;
    let before = app.snapshot().await?;
    let forged = b
        .post(
            &format!("/console/reviews/{review}/decision"),
            &[("csrf", &csrf), ("decision", "approve")],
        )
        .await?;
    assert_eq!(forged.status, 403, "{}", forged.html);
    assert!(
        forged.html.contains("separation_of_duties"),
        "{}",
        forged.html
    );
    assert_eq!(app.snapshot().await?, before, "nothing written");
    Ok(())
}

#[tokio::test]
async fn a_decision_without_this_sessions_csrf_token_is_refused_and_writes_nothing() -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let p = app.promote_as("dev", "credit-risk", 1, "staging").await?;
    let review = review_id(&p, "technical")?.to_owned();
    let mut other = Browser::new(&app)?;
    other.sign_in("tech2").await?;
    let foreign = other.get("/console/reviews").await?.csrf()?;
    let mut b = Browser::new(&app)?;
    b.sign_in("tech").await?;
    let before = app.snapshot().await?;
    let path = format!("/console/reviews/{review}/decision");
    for form in [
        vec![("decision", "approve")],
        vec![("csrf", ""), ("decision", "approve")],
        vec![("csrf", foreign.as_str()), ("decision", "approve")],
    ] {
        let r = b.post(&path, &form).await?;
        assert_eq!(r.status, 403, "{form:?}: {}", r.html);
        assert!(r.html.contains("CSRF"), "{}", r.html);
    }
    // From another site, even with the right token (`null`: a cross-origin post under the
    // console's `Referrer-Policy: same-origin`).
    let csrf = b.get("/console/reviews").await?.csrf()?;
    for origin in ["https://evil.example", "null"] {
        let cross = b
            .read(
                b.http
                    .post(app.url(&path))
                    .header("Origin", origin)
                    .form(&[("csrf", csrf.as_str()), ("decision", "approve")]),
            )
            .await?;
        assert_eq!(cross.status, 403, "{origin}");
    }
    assert_eq!(app.snapshot().await?, before);
    let pending = app
        .get(
            "dev",
            &format!("/v1/promotions/{}", p["id"].as_str().unwrap()),
        )
        .await?
        .expect(200)?;
    assert_eq!(pending.body["status"], "in_review");
    Ok(())
}

#[tokio::test]
async fn markup_in_a_model_card_renders_as_inert_text() -> Result<()> {
    let app = spawn_app().await?;
    let mut m = manifest(RiskTier::Low);
    let hostile = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    m["card"]["overview"] = json!(hostile);
    m["card"]["limitations"] = json!([hostile]);
    app.post("dev", "/v1/models/hostile/versions", &m)
        .await?
        .expect(201)?;
    let p = app.promote_as("dev", "hostile", 1, "staging").await?;
    let review = review_id(&p, "technical")?.to_owned();
    let mut b = Browser::new(&app)?;
    b.sign_in("tech").await?;
    let page = b.get(&format!("/console/reviews/{review}")).await?;
    assert_eq!(page.status, 200);
    assert!(!page.html.contains("<script>"), "no script element");
    assert!(!page.html.contains("<img"), "no img element");
    assert!(
        page.html.contains(
            "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"
        ),
        "the card's text, escaped"
    );
    Ok(())
}

#[tokio::test]
async fn the_audit_page_and_its_proofs_are_for_auditors_and_carry_each_events_bytes() -> Result<()>
{
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let mut dev = Browser::new(&app)?;
    dev.sign_in("dev").await?;
    assert_eq!(dev.get("/console/audit").await?.status, 403);
    assert_eq!(dev.get("/console/audit/checkpoint").await?.status, 403);
    let anonymous = Browser::new(&app)?;
    assert_eq!(anonymous.get("/console/audit/proofs/1").await?.status, 303);

    let mut aud = Browser::new(&app)?;
    aud.sign_in("aud").await?;
    let page = aud.get("/console/audit").await?;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("id=\"audit-verification\""));
    assert!(
        page.html.contains("data-status=\"pending\""),
        "the browser decides, not the server"
    );
    assert!(page
        .html
        .contains("<script src=\"/console/assets/audit.js\">"));
    let event = app
        .audit_events(None)
        .await?
        .into_iter()
        .next()
        .context("an event")?;
    assert!(page
        .html
        .contains(&format!("data-seq=\"{}\"", event["seq"])));
    let checkpoint = aud.get("/console/audit/checkpoint").await?;
    assert_eq!(checkpoint.status, 200);
    let cp: serde_json::Value = serde_json::from_str(&checkpoint.html)?;
    // Ed25519's 32 raw bytes embedded, a P-256 SubjectPublicKeyInfo on AWS: the key the page's
    // script checks the signature with, named by its key id.
    let key = hex::decode(cp["public_key"].as_str().context("public_key")?)?;
    assert!(key.len() == 32 || key.len() == 91, "{cp}");
    use sha2::Digest;
    assert_eq!(
        cp["key_id"],
        hex::encode(&sha2::Sha256::digest(&key)[..8]),
        "{cp}"
    );
    let proof = aud
        .get(&format!("/console/audit/proofs/{}", event["seq"]))
        .await?;
    assert_eq!(proof.status, 200);
    let js = aud.get("/console/assets/audit.js").await?;
    assert_eq!(js.status, 200);
    assert!(js.headers["content-type"]
        .to_str()?
        .starts_with("text/javascript"));
    Ok(())
}

#[tokio::test]
async fn the_registry_pages_list_filter_and_show_a_models_timeline_versions_gates_and_card_diff(
) -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    app.to_production("credit-risk", 1).await?;
    app.register("fraud-score", RiskTier::High).await?;
    // A second card revision, so the version page has a diff to show.
    let c = app
        .get("dev", "/v1/models/credit-risk/versions/1/card")
        .await?
        .expect(200)?;
    let mut card = c.body["card"].clone();
    card["overview"] = json!("Revised overview.");
    let r = app
        .client
        .put(app.url("/v1/models/credit-risk/versions/1/card"))
        .bearer_auth(token("dev"))
        .header("If-Match", format!("\"{}\"", c.body["revision"]))
        .json(&card)
        .send()
        .await?;
    assert_eq!(r.status(), 200);

    let mut b = Browser::new(&app)?;
    b.sign_in("dev").await?;
    let all = b.get("/console/models").await?;
    assert_eq!(all.status, 200);
    assert!(
        all.html.contains("/console/models/credit-risk")
            && all.html.contains("/console/models/fraud-score")
    );
    let high = b.get("/console/models?tier=high").await?;
    assert!(
        high.html.contains("fraud-score") && !high.html.contains("/console/models/credit-risk\"")
    );
    let found = b.get("/console/models?q=fraud").await?;
    assert!(
        found.html.contains("fraud-score") && !found.html.contains("/console/models/credit-risk\"")
    );
    assert_eq!(b.get("/console/models?stage=nowhere").await?.status, 422);

    let model = b.get("/console/models/credit-risk").await?;
    assert_eq!(model.status, 200);
    assert!(model.html.contains("<svg"), "the production timeline");
    assert!(model.html.contains("version 1 from"), "{}", model.html);
    assert_eq!(b.get("/console/models/unknown").await?.status, 404);

    let version = b.get("/console/models/credit-risk/versions/1").await?;
    assert_eq!(version.status, 200, "{}", version.html);
    for part in [
        "Gates",
        "staging",
        "production",
        "Card revisions",
        "Revision 2",
        "Revised overview.",
        "card.overview",
    ] {
        assert!(version.html.contains(part), "{part}");
    }
    assert_eq!(
        b.get("/console/models/credit-risk/versions/0")
            .await?
            .status,
        422
    );
    Ok(())
}

#[tokio::test]
async fn the_monitoring_page_shows_incidents_with_what_opened_them_and_what_steward_did(
) -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    app.to_production("credit-risk", 1).await?;
    app.post(
        "ops",
        "/v1/signals",
        &json!({"model": "credit-risk", "version": 1, "kind": "drift", "metric": "psi", "value": 0.35}),
    )
    .await?
    .expect(200)?;
    let mut b = Browser::new(&app)?;
    b.sign_in("ops").await?;
    let page = b.get("/console/incidents?status=open").await?;
    assert_eq!(page.status, 200, "{}", page.html);
    for part in [
        "drift",
        "psi = 0.35",
        "0.2",
        "open",
        "Periodic reviews",
        "Pending retirements",
    ] {
        assert!(page.html.contains(part), "{part}: {}", page.html);
    }
    let resolved = b.get("/console/incidents?status=resolved").await?;
    assert!(!resolved.html.contains("psi = 0.35"));
    assert_eq!(
        b.get("/console/incidents?status=sideways").await?.status,
        422
    );
    Ok(())
}

#[tokio::test]
async fn the_monitoring_page_shows_each_serious_incidents_reporting_deadline() -> Result<()> {
    let clock = manual_clock();
    let app = spawn_app_with_clock(steward_core::Policy::default(), clock.clone()).await?;
    app.register("credit-risk", RiskTier::Low).await?;
    app.to_production("credit-risk", 1).await?;
    let r = app
        .post(
            "ops",
            "/v1/signals",
            &json!({"model": "credit-risk", "version": 1, "kind": "drift", "metric": "psi", "value": 0.35}),
        )
        .await?
        .expect(200)?;
    let id = r.body["incident"]["id"].as_str().unwrap().to_owned();
    let classified = app
        .post(
            "comp",
            &format!("/v1/incidents/{id}/classification"),
            &json!({"severity": "serious", "category": "death"}),
        )
        .await?
        .expect(200)?;
    let due = classified.body["report_due"].as_str().unwrap().to_owned();
    let due_at = chrono::DateTime::parse_from_rfc3339(&due)?.with_timezone(&chrono::Utc);

    let mut b = Browser::new(&app)?;
    b.sign_in("comp").await?;
    let page = b.get("/console/incidents").await?;
    assert_eq!(page.status, 200, "{}", page.html);
    let shown = due_at.format("%Y-%m-%d %H:%M UTC").to_string();
    for part in [
        "Serious incidents awaiting their report (EU AI Act Art. 73)",
        id.as_str(),
        "death",
        shown.as_str(),
        "(in 10 days)",
    ] {
        assert!(page.html.contains(part), "{part}: {}", page.html);
    }
    assert!(!page.html.contains("overdue"));

    // Past the deadline without a report: overdue.
    clock.advance(std::time::Duration::from_secs(11 * 86_400));
    // (A new session: the console's sessions age on the same clock.)
    let mut b = Browser::new(&app)?;
    b.sign_in("comp").await?;
    let page = b.get("/console/incidents").await?;
    assert!(page.html.contains("overdue"), "{}", page.html);

    // Once the report is recorded the deadline leaves the list and the report's reference shows.
    app.post(
        "comp",
        &format!("/v1/incidents/{id}/report"),
        &json!({"reference": "MSA-2026-0042"}),
    )
    .await?
    .expect(200)?;
    let page = b.get("/console/incidents").await?;
    assert!(
        !page.html.contains("awaiting their report"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("reported: MSA-2026-0042"),
        "{}",
        page.html
    );
    Ok(())
}

#[tokio::test]
async fn an_admin_sets_roles_from_the_principals_page_under_the_apis_rules() -> Result<()> {
    let app = spawn_app().await?;
    let mut dev = Browser::new(&app)?;
    dev.sign_in("dev").await?;
    assert_eq!(dev.get("/console/principals").await?.status, 403);
    let mut admin = Browser::new(&app)?;
    admin.sign_in("admin").await?;
    let page = admin.get("/console/principals").await?;
    assert_eq!(page.status, 200);
    let csrf = page.csrf()?;
    let without = admin
        .post(
            "/console/principals/dev2",
            &[("roles", "developer"), ("roles", "operator")],
        )
        .await?;
    assert_eq!(without.status, 403, "no CSRF token");
    let set = admin
        .post(
            "/console/principals/dev2",
            &[
                ("csrf", &csrf),
                ("roles", "developer"),
                ("roles", "operator"),
            ],
        )
        .await?;
    assert_eq!(
        (set.status, set.location()),
        (303, "/console/principals"),
        "{}",
        set.html
    );
    let listed = app.get("admin", "/v1/principals").await?.expect(200)?;
    let dev2 = listed.body["items"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["id"] == "dev2"))
        .context("dev2")?;
    assert_eq!(dev2["roles"], json!(["developer", "operator"]));
    let audited = app
        .audit_events(None)
        .await?
        .into_iter()
        .filter(|e| e["action"] == "principal.roles_set" && e["actor"] == "admin")
        .count();
    assert_eq!(audited, 1);
    let own = admin
        .post(
            "/console/principals/admin",
            &[("csrf", &csrf), ("roles", "technical-reviewer")],
        )
        .await?;
    assert_eq!(
        own.status, 403,
        "nobody changes their own roles: {}",
        own.html
    );
    Ok(())
}

#[tokio::test]
async fn an_evaluation_below_its_cards_threshold_is_marked_failed_and_the_gate_says_why(
) -> Result<()> {
    let app = spawn_app().await?;
    let mut m = manifest(RiskTier::Low);
    m["card"]["operational"]["monitoring"]["quality"] = json!([{"metric": "auc", "min": 0.99}]);
    app.post("dev", "/v1/models/strict/versions", &m)
        .await?
        .expect(201)?;
    let mut b = Browser::new(&app)?;
    b.sign_in("tech").await?;
    let page = b.get("/console/models/strict/versions/1").await?;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("&gt;= 0.99"), "the threshold shown");
    assert!(
        page.html.contains("<span class=\"fail\">fail</span>"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("does not meet &gt;= 0.99"),
        "the gate's reason"
    );
    Ok(())
}

#[tokio::test]
async fn a_person_signed_in_through_oidc_gets_roles_from_the_principals_page_form_as_written(
) -> Result<()> {
    let app = spawn_app().await?;
    let person = "oidc:https://idp.example.com#u-42";
    app.put(
        "admin",
        &format!("/v1/principals/{}", person.replace('#', "%23")),
        &json!({"roles": ["developer"]}),
    )
    .await?
    .expect(200)?;
    let mut admin = Browser::new(&app)?;
    admin.sign_in("admin").await?;
    let page = admin.get("/console/principals").await?;
    // The form posts to the id with `#` encoded, so the browser does not cut it at a fragment.
    let action = "/console/principals/oidc:https://idp.example.com%23u-42";
    assert!(page.html.contains(action), "{}", page.html);
    let csrf = page.csrf()?;
    let set = admin
        .post(action, &[("csrf", &csrf), ("roles", "technical-reviewer")])
        .await?;
    assert_eq!(set.status, 303, "{}", set.html);
    let listed = app.get("admin", "/v1/principals").await?.expect(200)?;
    let record = listed.body["items"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["id"] == person))
        .context("the person")?;
    assert_eq!(record["roles"], json!(["technical-reviewer"]));
    Ok(())
}

#[tokio::test]
async fn a_reported_check_shows_on_the_version_page_as_inert_text_with_its_details_link(
) -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let hostile = "<script>alert(1)</script>";
    app.post(
        "ci",
        "/v1/models/credit-risk/versions/1/checks",
        &json!({
            "name": "unit-tests", "status": "passed", "environment": "staging",
            "metrics": {"coverage": 0.84, hostile: 1},
            "evidence": {"uri": format!("s3://ci/{hostile}"), "sha256": "ab".repeat(32)},
            "details_url": "https://ci.example.com/runs/42?a=1&b=\"><img/src=x>",
        }),
    )
    .await?
    .expect(201)?;
    app.post(
        "ci",
        "/v1/models/credit-risk/versions/1/checks",
        &json!({"name": "load-test", "status": "failed"}),
    )
    .await?
    .expect(201)?;
    let mut b = Browser::new(&app)?;
    b.sign_in("dev").await?;
    let page = b.get("/console/models/credit-risk/versions/1").await?;
    assert_eq!(page.status, 200, "{}", page.html);
    for part in [
        "<section id=\"checks\">",
        "unit-tests",
        "<span class=\"pass\">passed</span>",
        "load-test",
        "<span class=\"fail\">failed</span>",
        "coverage=0.84",
        "by ci at",
        "href=\"https://ci.example.com/runs/42?a=1&amp;b=&quot;&gt;&lt;img/src=x&gt;\"",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
    ] {
        assert!(page.html.contains(part), "{part}: {}", page.html);
    }
    assert!(!page.html.contains("<script>"), "no script element");
    assert!(!page.html.contains("<img"), "no img element");
    Ok(())
}
