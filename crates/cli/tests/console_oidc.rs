//! "Sign in with <provider>" in a real headless Chromium against a real `steward serve` and a
//! real OpenID Connect provider (npm `oidc-provider`, `steward_testkit::oidc`), all on
//! 127.0.0.1: the browser goes to the provider, signs in there as a person, comes back through
//! the authorization code flow (PKCE, state, nonce) and lands in the inbox with a session;
//! the person's roles come from the groups claim mapped with `--oidc-group-role`, and the
//! pending review they may decide is listed. Logout ends the session.
//!
//! Needs chromedriver (fails saying how to install it) and the provider's npm packages
//! (`bash scripts/oidc-provider/install`; fails saying so).

mod common;

use std::time::{Duration, Instant};

use common::browser::{browser, driver, screenshot};
use common::{add_principals, Server, MANIFEST};
use fantoccini::{Client, Locator};
use steward_testkit::oidc::{
    OidcProvider, CLI_CLIENT_ID, CONSOLE_CLIENT_ID, CONSOLE_CLIENT_SECRET,
};

async fn wait_for_path(c: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let url = c.current_url().await.unwrap();
        if url.path() == path {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "never reached {path}: at {url}\n{}",
                c.source().await.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_to_the_console_through_the_organisations_provider_in_a_real_browser() {
    let provider = OidcProvider::start(OidcProvider::default_config(None))
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let principals = tmp.path().join("principals.toml");
    let tokens = add_principals(&principals);
    let server = Server::start_with_env(
        &tmp.path().join("data"),
        &[
            "--principals",
            principals.to_str().unwrap(),
            "--oidc-issuer",
            provider.issuer(),
            "--oidc-client-id",
            CONSOLE_CLIENT_ID,
            "--oidc-cli-client-id",
            CLI_CLIENT_ID,
            "--oidc-group-role",
            "ml-reviewers=technical-reviewer",
            "--oidc-scopes",
            "openid,email,profile,groups",
            "--oidc-provider-name",
            "Example SSO",
        ],
        &[("STEWARD_OIDC_CLIENT_SECRET", CONSOLE_CLIENT_SECRET)],
    );
    provider
        .register_client(OidcProvider::console_client(&format!(
            "{}/console/login/callback",
            server.url
        )))
        .await
        .unwrap();
    // A staging promotion waiting for a technical review.
    let http = reqwest::Client::new();
    let post = |path: &str, token: &str, body: serde_json::Value| {
        http.post(format!("{}{path}", server.url))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let manifest: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
    let r = post("/v1/models/fraud-score/versions", &tokens["dev"], manifest)
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = post(
        "/v1/models/fraud-score/versions/1/promotions",
        &tokens["dev"],
        serde_json::json!({"target": "staging"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);

    let driver = driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/console/login", server.url))
        .await
        .unwrap();
    let button = c.find(Locator::Id("oidc-sign-in")).await.unwrap();
    assert_eq!(button.text().await.unwrap(), "Sign in with Example SSO");
    screenshot(&c, "sign-in").await;
    button.click().await.unwrap();

    // At the provider: its own login form.
    let login = c
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("input[name=login]"))
        .await
        .unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(provider.issuer()));
    login.send_keys("alice").await.unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Back at Steward, signed in: the inbox lists the review alice may decide.
    wait_for_path(&c, "/console/reviews").await;
    let who = c
        .find(Locator::Css(".who"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(who, format!("oidc:{}#alice", provider.issuer()));
    let inbox = c.source().await.unwrap();
    assert!(inbox.contains("fraud-score"), "{inbox}");
    screenshot(&c, "inbox-oidc").await;

    // Logout ends the session: the inbox sends the browser to sign in again.
    c.find(Locator::Css("form.logout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(&c, "/console/login").await;
    c.goto(&format!("{}/console/reviews", server.url))
        .await
        .unwrap();
    wait_for_path(&c, "/console/login").await;
    c.close().await.unwrap();
}
