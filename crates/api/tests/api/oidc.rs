//! People through OpenID Connect, against a real provider on 127.0.0.1 (npm `oidc-provider`,
//! started per test by `steward_testkit::oidc`): ID tokens from the authorization code flow
//! authenticate API calls, every kind of bad token is a 401 naming why and writes nothing, a
//! rotated key is picked up from the JWKS, and the console signs a person in through the code
//! flow with PKCE, state and nonce.

use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{json, Value};
use steward_api::{OidcConfig, OidcVerifier};
use steward_core::types::RiskTier;
use steward_testkit::oidc::{
    pkce, query_param, random_token, OidcProvider, SigningKey, CLI_CLIENT_ID, CONSOLE_CLIENT_ID,
    CONSOLE_CLIENT_SECRET, OTHER_CLIENT_ID,
};

use crate::common::{manifest, spawn_app_with_oidc, App};

/// A provider, and Steward accepting it: the console and CLI clients as audiences, group
/// `ml-reviewers` → technical-reviewer, the JWKS refetched at once on an unknown kid.
async fn setup() -> Result<(OidcProvider, App)> {
    setup_refetching_every(Duration::ZERO).await
}

/// [`setup`], with the JWKS refetched at most every `min_refresh`.
async fn setup_refetching_every(min_refresh: Duration) -> Result<(OidcProvider, App)> {
    let provider = OidcProvider::start(OidcProvider::default_config(None)).await?;
    let mut config = OidcConfig::new(
        provider.issuer(),
        vec![CONSOLE_CLIENT_ID.into(), CLI_CLIENT_ID.into()],
    )?
    .with_group_roles(
        Some("groups".into()),
        &["ml-reviewers=technical-reviewer".into()],
    )?;
    config.jwks_min_refresh = min_refresh;
    config.provider_name = "Test IdP".into();
    config.cli_client_id = Some(CLI_CLIENT_ID.into());
    config.scopes = vec![
        "openid".into(),
        "email".into(),
        "profile".into(),
        "groups".into(),
    ];
    if let Some(console) = config.console.as_mut() {
        console.client_secret = Some(CONSOLE_CLIENT_SECRET.into());
    }
    let app = spawn_app_with_oidc(OidcVerifier::new(config)?).await?;
    provider
        .register_client(OidcProvider::console_client(
            &app.url("/console/login/callback"),
        ))
        .await?;
    Ok((provider, app))
}

/// An ID token for `account` from the provider's code flow, as `steward login` gets one.
async fn id_token(provider: &OidcProvider, account: &str) -> Result<String> {
    let (verifier, challenge) = pkce();
    let redirect = "http://127.0.0.1:8400/callback";
    let url = provider.authorization_url(
        CLI_CLIENT_ID,
        redirect,
        &random_token(),
        &random_token(),
        &challenge,
    );
    let back = provider
        .authorize_with_browserless_login(url.as_str(), account)
        .await?;
    let code = query_param(&back, "code").context("a code")?;
    let tokens = provider
        .exchange_code(CLI_CLIENT_ID, None, &code, redirect, &verifier)
        .await?;
    Ok(tokens["id_token"]
        .as_str()
        .context("an ID token")?
        .to_owned())
}

/// The admin makes `id` a developer (`#` encoded: it would start a URL fragment).
async fn make_developer(app: &App, id: &str) -> Result<()> {
    app.put(
        "admin",
        &format!("/v1/principals/{}", id.replace('#', "%23")),
        &json!({"roles": ["developer"]}),
    )
    .await?
    .expect(200)?;
    Ok(())
}

fn principal(provider: &OidcProvider, sub: &str) -> String {
    format!("oidc:{}#{sub}", provider.issuer())
}

#[tokio::test]
async fn an_id_token_from_the_provider_authenticates_a_person_under_a_stable_namespaced_id(
) -> Result<()> {
    let (provider, app) = setup().await?;
    let alice = id_token(&provider, "alice").await?;
    let me = app
        .send_bearer(&alice, reqwest::Method::GET, "/v1/whoami", None)
        .await?
        .expect(200)?;
    assert_eq!(me.body["principal"], principal(&provider, "alice"));
    assert_eq!(me.body["authentication"], "oidc");
    assert_eq!(
        me.body["roles"],
        json!(["technical-reviewer"]),
        "from the groups claim"
    );

    // Roles are granted to the person's principal id as to anyone; bob then registers.
    let bob_id = principal(&provider, "bob");
    make_developer(&app, &bob_id).await?;
    let bob = id_token(&provider, "bob").await?;
    app.send_bearer(
        &bob,
        reqwest::Method::POST,
        "/v1/models/credit-risk/versions",
        Some(&manifest(RiskTier::Low)),
    )
    .await?
    .expect(201)?;
    let audit = app
        .get("aud", "/v1/audit?model=credit-risk")
        .await?
        .expect(200)?;
    let first = &audit.body["items"][0];
    assert_eq!(first["actor"], bob_id);
    assert_eq!(first["details"]["authentication"], "oidc");
    // A second sign-in is the same principal.
    let again = id_token(&provider, "bob").await?;
    let me = app
        .send_bearer(&again, reqwest::Method::GET, "/v1/whoami", None)
        .await?
        .expect(200)?;
    assert_eq!(me.body["principal"], bob_id);
    assert_eq!(me.body["roles"], json!(["developer"]));

    // The CLI finds the provider at the public endpoint.
    let public = app.get("", "/v1/auth/oidc").await?.expect(200)?;
    assert_eq!(public.body["issuer"], provider.issuer());
    assert_eq!(public.body["client_id"], CLI_CLIENT_ID);
    Ok(())
}

/// `token` with its payload replaced by `claims`, the signature kept.
fn with_payload(token: &str, claims: &Value) -> String {
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[tokio::test]
async fn expired_misaddressed_unsigned_foreign_and_tampered_tokens_are_401_and_write_nothing(
) -> Result<()> {
    let (provider, app) = setup().await?;
    let bob_id = principal(&provider, "bob");
    make_developer(&app, &bob_id).await?;
    let now = chrono::Utc::now().timestamp();
    let claims = |extra: Value| {
        let mut c = json!({"sub": "bob", "aud": CONSOLE_CLIENT_ID});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let real = id_token(&provider, "bob").await?;
    let (_, real_claims) = steward_testkit::oidc::decode_jwt(&real)?;
    let mut tampered_claims = real_claims.clone();
    tampered_claims["sub"] = json!("carol");
    let cases = [
        (
            "expired",
            provider
                .sign(
                    claims(json!({"iat": now - 900, "exp": now - 600})),
                    None,
                    SigningKey::Current,
                )
                .await?,
            "expired",
        ),
        (
            "not valid yet",
            provider
                .sign(claims(json!({"nbf": now + 600})), None, SigningKey::Current)
                .await?,
            "not valid yet",
        ),
        (
            "wrong audience",
            provider
                .sign(
                    claims(json!({"aud": OTHER_CLIENT_ID})),
                    None,
                    SigningKey::Current,
                )
                .await?,
            "another audience",
        ),
        (
            "wrong issuer",
            provider
                .sign(
                    claims(json!({"iss": "http://127.0.0.1:1"})),
                    None,
                    SigningKey::Current,
                )
                .await?,
            "another issuer",
        ),
        (
            "alg none",
            provider
                .sign(
                    claims(json!({})),
                    Some(json!({"alg": "none"})),
                    SigningKey::Current,
                )
                .await?,
            "\"none\" is not accepted",
        ),
        (
            "key not in the JWKS",
            provider
                .sign(claims(json!({})), None, SigningKey::Unknown)
                .await?,
            "does not publish",
        ),
        (
            "tampered payload",
            with_payload(&real, &tampered_claims),
            "signature does not verify",
        ),
    ];
    // The same claims, properly signed, are accepted: each refusal is the one defect.
    let good = provider
        .sign(claims(json!({})), None, SigningKey::Current)
        .await?;
    app.send_bearer(&good, reqwest::Method::GET, "/v1/whoami", None)
        .await?
        .expect(200)?;

    let before = app
        .get("aud", "/v1/audit?limit=500")
        .await?
        .expect(200)?
        .body["items"]
        .as_array()
        .map(Vec::len);
    for (case, token, why) in cases {
        let r = app
            .send_bearer(
                &token,
                reqwest::Method::POST,
                "/v1/models/credit-risk/versions",
                Some(&manifest(RiskTier::Low)),
            )
            .await?;
        assert_eq!(r.status, 401, "{case}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "unauthenticated", "{case}");
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{case}: {message}");
    }
    let after = app
        .get("aud", "/v1/audit?limit=500")
        .await?
        .expect(200)?
        .body["items"]
        .as_array()
        .map(Vec::len);
    assert_eq!(before, after, "nothing audited");
    app.get("dev", "/v1/models/credit-risk")
        .await?
        .expect(404)?;
    Ok(())
}

#[tokio::test]
async fn a_token_signed_with_a_rotated_in_key_is_accepted_once_the_jwks_is_refetched() -> Result<()>
{
    let (provider, app) = setup().await?;
    let claims = json!({"sub": "alice", "aud": CLI_CLIENT_ID});
    let before = provider
        .sign(claims.clone(), None, SigningKey::Current)
        .await?;
    app.send_bearer(&before, reqwest::Method::GET, "/v1/whoami", None)
        .await?
        .expect(200)?;
    // The JWKS Steward cached does not have the new key; its kid makes Steward refetch.
    provider.rotate(true).await?;
    let after = provider.sign(claims, None, SigningKey::Current).await?;
    let (header, _) = steward_testkit::oidc::decode_jwt(&after)?;
    assert_ne!(
        header["kid"],
        steward_testkit::oidc::decode_jwt(&before)?.0["kid"]
    );
    app.send_bearer(&after, reqwest::Method::GET, "/v1/whoami", None)
        .await?
        .expect(200)?;
    // The dropped key is gone from the refetched JWKS: its tokens no longer verify.
    let r = app
        .send_bearer(&before, reqwest::Method::GET, "/v1/whoami", None)
        .await?;
    assert_eq!(r.status, 401, "{}", r.body);
    Ok(())
}

/// The cookie `name=value` a response sets.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn the_console_signs_a_person_in_with_the_code_flow_and_refuses_replays_and_other_browsers(
) -> Result<()> {
    let (provider, app) = setup().await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = http
        .get(app.url("/console/login"))
        .send()
        .await?
        .text()
        .await?;
    assert!(page.contains("Sign in with Test IdP"), "{page}");

    // Start: a redirect to the provider with PKCE, state and nonce, and a browser binding.
    let start = |http: reqwest::Client| {
        let url = app.url("/console/login/oidc");
        async move {
            let r = http.get(url).send().await?;
            anyhow::ensure!(r.status() == 303, "start answered {}", r.status());
            let binding = set_cookie(&r, "steward_login").context("a binding cookie")?;
            let location = r.headers()[LOCATION].to_str()?.to_owned();
            Ok::<_, anyhow::Error>((location, binding))
        }
    };
    let (location, binding) = start(http.clone()).await?;
    let authorize = reqwest::Url::parse(&location)?;
    assert!(location.starts_with(provider.issuer()), "{location}");
    assert_eq!(
        query_param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    for p in ["state", "nonce", "code_challenge"] {
        assert!(query_param(&authorize, p).is_some(), "{p} in {location}");
    }
    let back = provider
        .authorize_with_browserless_login(&location, "alice")
        .await?;
    let done = http
        .get(back.as_str())
        .header(COOKIE, &binding)
        .send()
        .await?;
    assert_eq!(done.status(), 200);
    let session = set_cookie(&done, "steward_session").context("a session cookie")?;
    let inbox = http
        .get(app.url("/console/reviews"))
        .header(COOKIE, &session)
        .send()
        .await?;
    assert_eq!(inbox.status(), 200);
    let inbox = inbox.text().await?;
    assert!(inbox.contains(&principal(&provider, "alice")), "{inbox}");

    // The same callback again: the state was single-use.
    let replay = http
        .get(back.as_str())
        .header(COOKIE, &binding)
        .send()
        .await?;
    assert_eq!(replay.status(), 400);
    assert!(set_cookie(&replay, "steward_session").is_none());

    // A callback planted in another browser (without the binding cookie) signs nobody in.
    let (location, _) = start(http.clone()).await?;
    let back = provider
        .authorize_with_browserless_login(&location, "alice")
        .await?;
    let elsewhere = http.get(back.as_str()).send().await?;
    assert_eq!(elsewhere.status(), 400);
    assert!(set_cookie(&elsewhere, "steward_session").is_none());
    Ok(())
}

#[tokio::test]
async fn a_token_signed_with_hmac_using_the_providers_public_key_as_the_secret_is_refused(
) -> Result<()> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (provider, app) = setup().await?;
    let jwks = provider.jwks().await?;
    let rsa = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kty"] == "RSA"))
        .context("an RSA key in the JWKS")?;
    let now = chrono::Utc::now().timestamp();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": rsa["kid"]});
    let claims = json!({"iss": provider.issuer(), "sub": "alice", "aud": CLI_CLIENT_ID,
                        "iat": now, "exp": now + 300});
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    // The classic confusion: the public key (here its modulus, as the JWKS publishes it) used
    // as an HMAC secret, so a verifier that trusts the header's `alg` would accept it.
    let secret = b64.decode(rsa["n"].as_str().context("n")?)?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let signature = ring::hmac::sign(&key, signing_input.as_bytes());
    let token = format!("{signing_input}.{}", b64.encode(signature.as_ref()));
    let r = app
        .send_bearer(&token, reqwest::Method::GET, "/v1/whoami", None)
        .await?;
    assert_eq!(r.status, 401, "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("\"HS256\" is not accepted"), "{message}");
    Ok(())
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval() -> Result<()> {
    let (provider, app) = setup_refetching_every(Duration::from_secs(2)).await?;
    let claims = json!({"sub": "alice", "aud": CLI_CLIENT_ID});
    let first = provider
        .sign(claims.clone(), None, SigningKey::Current)
        .await?;
    app.send_bearer(&first, reqwest::Method::GET, "/v1/whoami", None)
        .await?
        .expect(200)?;
    provider.rotate(false).await?;
    let rotated = provider.sign(claims, None, SigningKey::Current).await?;
    // Just fetched: a kid Steward does not know does not make it ask the issuer again yet.
    let r = app
        .send_bearer(&rotated, reqwest::Method::GET, "/v1/whoami", None)
        .await?;
    assert_eq!(r.status, 401, "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("does not publish"), "{message}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    app.send_bearer(&rotated, reqwest::Method::GET, "/v1/whoami", None)
        .await?
        .expect(200)?;
    Ok(())
}

#[tokio::test]
async fn with_only_an_issuer_and_an_audience_steward_login_is_told_to_use_that_client() -> Result<()>
{
    // No provider is contacted: the metadata comes from configuration alone.
    let config = OidcConfig::new("https://idp.example.com", vec!["steward".into()])?;
    let app = spawn_app_with_oidc(OidcVerifier::new(config)?).await?;
    let public = app.get("", "/v1/auth/oidc").await?.expect(200)?;
    assert_eq!(public.body["issuer"], "https://idp.example.com");
    assert_eq!(public.body["client_id"], "steward");
    assert_eq!(public.body["scopes"], json!(["openid", "email", "profile"]));
    Ok(())
}
