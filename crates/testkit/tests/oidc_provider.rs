//! The OIDC test harness itself: the real provider (scripts/oidc-provider) does what the sign-in
//! tests rely on. Signatures are checked here with ring, independently of Steward's verifier.

use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{json, Value};
use steward_testkit::oidc::{
    decode_jwt, pkce, query_param, random_token, SigningKey, CLI_CLIENT_ID, CLI_REDIRECT_URI,
    CONSOLE_CLIENT_ID, CONSOLE_CLIENT_SECRET,
};
use steward_testkit::OidcProvider;

const CONSOLE_REDIRECT: &str = "http://127.0.0.1:4567/console/oidc/callback";

fn b64(s: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(s.as_str().expect("a base64url string"))
        .expect("base64url")
}

/// The token's claims if its signature verifies with the JWKS key its header's kid names.
fn verify(token: &str, jwks: &Value) -> anyhow::Result<Value> {
    let (header, claims) = decode_jwt(token)?;
    let kid = header["kid"].as_str().unwrap_or_default();
    let key = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["kid"] == kid)
        .ok_or_else(|| anyhow::anyhow!("kid {kid:?} is not in the JWKS"))?;
    let (input, sig) = token.rsplit_once('.').expect("three parts");
    let sig = URL_SAFE_NO_PAD.decode(sig)?;
    let ok = match header["alg"].as_str() {
        Some("RS256") => RsaPublicKeyComponents {
            n: b64(&key["n"]),
            e: b64(&key["e"]),
        }
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &sig,
        ),
        Some("ES256") => {
            let point = [vec![4], b64(&key["x"]), b64(&key["y"])].concat();
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(input.as_bytes(), &sig)
        }
        other => anyhow::bail!("unexpected alg {other:?}"),
    };
    ok.map_err(|_| anyhow::anyhow!("bad signature for kid {kid:?}"))?;
    Ok(claims)
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// Logs `account` in through `client_id`'s code flow and returns the ID token's claims
/// (verified against the JWKS) and the token response.
async fn sign_in(
    op: &OidcProvider,
    client_id: &str,
    secret: Option<&str>,
    redirect_uri: &str,
    account: &str,
) -> anyhow::Result<(Value, Value)> {
    let (verifier, challenge) = pkce();
    let (state, nonce) = (random_token(), random_token());
    let url = op.authorization_url(client_id, redirect_uri, &state, &nonce, &challenge);
    let back = op
        .authorize_with_browserless_login(url.as_str(), account)
        .await?;
    assert!(
        back.as_str().starts_with(redirect_uri),
        "{back} goes to {redirect_uri}"
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some(state.as_str()));
    assert_eq!(query_param(&back, "iss").as_deref(), Some(op.issuer()));
    let code = query_param(&back, "code").ok_or_else(|| anyhow::anyhow!("no code in {back}"))?;
    let tokens = op
        .exchange_code(client_id, secret, &code, redirect_uri, &verifier)
        .await?;
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let claims = verify(id_token, &op.jwks().await?)?;
    assert_eq!(claims["nonce"], nonce.as_str());
    Ok((claims, tokens))
}

#[tokio::test]
async fn the_discovery_document_names_the_issuer_its_jwks_and_s256_pkce() -> anyhow::Result<()> {
    let started = Instant::now();
    let op = OidcProvider::start(OidcProvider::default_config(Some(CONSOLE_REDIRECT))).await?;
    eprintln!("provider started in {:?}", started.elapsed());
    let issuer = op.issuer().to_owned();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");

    let discovery = op.discovery().await?;
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert_eq!(discovery["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );
    let algs = &discovery["id_token_signing_alg_values_supported"];
    for alg in ["RS256", "ES256"] {
        assert!(algs.as_array().unwrap().contains(&json!(alg)), "{algs}");
    }
    let jwks = op.jwks().await?;
    let types: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["RS256", "ES256"]);
    assert!(jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["d"].is_null()));
    Ok(())
}

#[tokio::test]
async fn the_console_client_signs_alice_in_with_code_and_pkce_and_gets_her_claims_in_the_id_token(
) -> anyhow::Result<()> {
    let op = OidcProvider::start(OidcProvider::default_config(Some(CONSOLE_REDIRECT))).await?;
    let (claims, tokens) = sign_in(
        &op,
        CONSOLE_CLIENT_ID,
        Some(CONSOLE_CLIENT_SECRET),
        CONSOLE_REDIRECT,
        "alice",
    )
    .await?;
    let (header, _) = decode_jwt(tokens["id_token"].as_str().unwrap())?;
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["iss"], op.issuer());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], CONSOLE_CLIENT_ID);
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["name"], "Alice");
    assert_eq!(claims["groups"], json!(["ml-reviewers"]));
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    Ok(())
}

#[tokio::test]
async fn the_native_cli_client_signs_in_on_a_random_loopback_port() -> anyhow::Result<()> {
    let mut config = OidcProvider::default_config(None);
    config["id_token_ttl"] = json!(120);
    let op = OidcProvider::start(config).await?;
    // A port the OS hands out, as the CLI's loopback listener gets one (RFC 8252 section 7.3).
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let redirect = CLI_REDIRECT_URI.replace("127.0.0.1", &format!("127.0.0.1:{port}"));

    let (claims, _) = sign_in(&op, CLI_CLIENT_ID, None, &redirect, "bob").await?;
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["aud"], CLI_CLIENT_ID);
    assert_eq!(claims["groups"], json!(["ml-developers"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );

    // The port is free; the path is not.
    let (_, challenge) = pkce();
    let elsewhere = format!("http://127.0.0.1:{port}/elsewhere");
    let url = op.authorization_url(CLI_CLIENT_ID, &elsewhere, "s", "n", &challenge);
    let refused = op
        .authorize_with_browserless_login(url.as_str(), "bob")
        .await;
    assert!(refused.is_err(), "{refused:?}");
    Ok(())
}

#[tokio::test]
async fn an_authorization_request_without_pkce_comes_back_with_an_error() -> anyhow::Result<()> {
    let op = OidcProvider::start(OidcProvider::default_config(Some(CONSOLE_REDIRECT))).await?;
    let mut url = op.authorization_url(CONSOLE_CLIENT_ID, CONSOLE_REDIRECT, "s", "n", "x");
    let without: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(without);
    let back = op
        .authorize_with_browserless_login(url.as_str(), "alice")
        .await?;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("invalid_request")
    );
    assert!(query_param(&back, "code").is_none());
    Ok(())
}

#[tokio::test]
async fn an_account_the_provider_does_not_have_cannot_sign_in() -> anyhow::Result<()> {
    let op = OidcProvider::start(OidcProvider::default_config(Some(CONSOLE_REDIRECT))).await?;
    let (_, challenge) = pkce();
    let url = op.authorization_url(CONSOLE_CLIENT_ID, CONSOLE_REDIRECT, "s", "n", &challenge);
    let err = op
        .authorize_with_browserless_login(url.as_str(), "mallory")
        .await
        .expect_err("mallory has no account");
    assert!(err.to_string().contains("refused the login"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_client_registered_after_start_signs_in_and_a_configured_id_cannot_be_taken(
) -> anyhow::Result<()> {
    let op = OidcProvider::start(OidcProvider::default_config(None)).await?;
    op.register_client(OidcProvider::console_client(CONSOLE_REDIRECT))
        .await?;
    let (claims, _) = sign_in(
        &op,
        CONSOLE_CLIENT_ID,
        Some(CONSOLE_CLIENT_SECRET),
        CONSOLE_REDIRECT,
        "carol",
    )
    .await?;
    assert_eq!(claims["groups"], json!(["ml-admins"]));

    let mut taken = OidcProvider::console_client(CONSOLE_REDIRECT);
    taken["client_id"] = json!(CLI_CLIENT_ID);
    assert!(op.register_client(taken).await.is_err());
    Ok(())
}

#[tokio::test]
async fn test_signed_tokens_verify_against_the_jwks_only_when_signed_by_the_provider_key(
) -> anyhow::Result<()> {
    let op = OidcProvider::start(OidcProvider::default_config(None)).await?;
    let jwks = op.jwks().await?;
    let expired = json!({"sub": "alice", "aud": "steward-console", "iat": 1000, "exp": 1300});

    let current = op.sign(expired.clone(), None, SigningKey::Current).await?;
    let claims = verify(&current, &jwks)?;
    assert_eq!(claims["exp"], 1300);
    assert_eq!(claims["iss"], op.issuer());

    let es = op
        .sign(
            json!({"sub": "bob"}),
            Some(json!({"alg": "ES256"})),
            SigningKey::Current,
        )
        .await?;
    let claims = verify(&es, &jwks)?;
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());

    let unknown = op.sign(expired.clone(), None, SigningKey::Unknown).await?;
    let (header, _) = decode_jwt(&unknown)?;
    let kid = header["kid"].as_str().unwrap();
    assert_eq!(kid.len(), kids(&jwks)[0].len(), "same kid format");
    assert!(!kids(&jwks).contains(&kid.to_owned()));
    assert!(verify(&unknown, &jwks).is_err());

    // An unknown key that claims a published kid does not verify either.
    let published = kids(&jwks)[0].clone();
    let forged = op
        .sign(
            expired,
            Some(json!({"kid": published})),
            SigningKey::Unknown,
        )
        .await?;
    let err = verify(&forged, &jwks).expect_err("not the provider's key");
    assert!(err.to_string().contains("bad signature"), "{err}");

    let none = op
        .sign(
            json!({"sub": "alice"}),
            Some(json!({"alg": "none", "typ": null})),
            SigningKey::Current,
        )
        .await?;
    let (header, _) = decode_jwt(&none)?;
    assert_eq!(header, json!({"alg": "none"}));
    assert!(none.ends_with('.'));
    Ok(())
}

#[tokio::test]
async fn rotation_publishes_a_new_key_that_the_provider_then_signs_its_id_tokens_with(
) -> anyhow::Result<()> {
    let op = OidcProvider::start(OidcProvider::default_config(Some(CONSOLE_REDIRECT))).await?;
    let before = op.jwks().await?;

    let kid = op.rotate(false).await?;
    assert!(!kids(&before).contains(&kid));
    let token = op
        .sign(json!({"sub": "alice"}), None, SigningKey::Current)
        .await?;
    assert!(
        verify(&token, &before).is_err(),
        "the old JWKS lacks the key"
    );
    let after = op.jwks().await?;
    verify(&token, &after)?;
    assert_eq!(kids(&after)[0], kid);
    assert!(kids(&before).iter().all(|k| kids(&after).contains(k)));

    // The provider's own ID tokens now carry the new kid.
    let (_, tokens) = sign_in(
        &op,
        CONSOLE_CLIENT_ID,
        Some(CONSOLE_CLIENT_SECRET),
        CONSOLE_REDIRECT,
        "alice",
    )
    .await?;
    let (header, _) = decode_jwt(tokens["id_token"].as_str().unwrap())?;
    assert_eq!(header["kid"], kid.as_str());

    // Dropping the previous keys: a token of an old key no longer verifies.
    let old = kids(&before)[0].clone();
    let newest = op.rotate(true).await?;
    let latest = op.jwks().await?;
    assert_eq!(kids(&latest).len(), 2, "one RSA and one EC key");
    assert_eq!(kids(&latest)[0], newest);
    let by_old = op
        .sign(json!({"sub": "alice"}), None, SigningKey::Kid(&old))
        .await?;
    verify(&by_old, &before)?;
    assert!(verify(&by_old, &latest).is_err());
    Ok(())
}

#[tokio::test]
async fn a_provider_with_a_broken_client_fails_to_start_and_says_why() {
    // A confidential client (the default auth method) without a secret.
    let client = json!({"client_id": "web", "redirect_uris": ["http://127.0.0.1/cb"]});
    let err = OidcProvider::start(json!({"port": 0, "clients": [client]}))
        .await
        .expect_err("a confidential client needs a secret");
    let err = err.to_string();
    assert!(err.contains("did not start"), "{err}");
    assert!(
        err.contains(r#"client "web""#) && err.contains("client_secret"),
        "{err}"
    );
}
