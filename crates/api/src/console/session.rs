//! Console sessions: who signed in, until when, and the CSRF token every form of theirs carries;
//! and the pending state of an OpenID Connect sign-in.
//!
//! Invariants:
//! - A session id, a CSRF token and a sign-in `state` are 256 bits from the OS's random
//!   source, hex; the id travels only in the `steward_session` cookie (HttpOnly,
//!   SameSite=Strict, `Path=/console`, Secure when the request came over TLS), the token only
//!   in the pages' hidden form fields.
//! - The [`SessionStore`] holds only digests of those secrets as keys, so whoever reads the
//!   store (a DynamoDB item, a memory dump) holds no usable session id.
//! - A session ends at its expiry (8 hours after sign-in) or at logout, whichever is first;
//!   an ended session is gone, so its cookie no longer authenticates anything.
//! - A session holds the identity sign-in proved, never roles from the registry: those are
//!   read on every request, so a role change applies to open sessions at once. (Roles an OIDC
//!   groups claim asserted at sign-in are part of that identity.)
//! - A pending sign-in is single-use and lasts [`LOGIN_LIFETIME`].
//! - The store is shared (DynamoDB behind several API function instances, memory in
//!   `steward serve`), so any instance can serve any signed-in request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};
use steward_core::error::StoreError;
use steward_core::ports::SessionStore;
use steward_core::types::{AuthMethod, PrincipalId, Role, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::Identity;

/// The session cookie's name.
pub const COOKIE: &str = "steward_session";
/// How long a session lasts after sign-in.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// How long a browser has to come back from the identity provider.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(600);

/// One signed-in identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub principal: PrincipalId,
    #[serde(default)]
    pub grants: Vec<PrincipalId>,
    #[serde(default)]
    pub asserted_roles: Vec<Role>,
    pub method: AuthMethod,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    /// The identity this session carries.
    pub fn identity(&self) -> Identity {
        Identity {
            id: self.principal.clone(),
            grants: self.grants.clone(),
            asserted_roles: self.asserted_roles.clone(),
            method: self.method,
        }
    }
}

/// What an OpenID Connect sign-in must find when the browser comes back: the nonce and PKCE
/// verifier it sent, and a digest of the browser-binding cookie it set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub nonce: String,
    pub verifier: String,
    pub binding_sha256: String,
    pub redirect_uri: String,
}

/// 256 random bits, hex.
pub(crate) fn secret() -> String {
    let mut bytes = [0u8; 32];
    // The OS's generator failing is not something a sign-in can recover from.
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}

/// The store key of secret `value` of `kind`: a digest, never the secret itself.
fn key(kind: &str, value: &str) -> String {
    Sha256::digest(format!("{kind}:{value}").as_bytes()).to_hex()
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_default()
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::backend("a stored console session does not parse", e)
}

/// The console's sessions and pending sign-ins, over a [`SessionStore`].
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new(Arc::new(MemorySessions::default()))
    }
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Self { store }
    }

    /// Opens a session for `identity`; returns its id and the session.
    pub async fn open(
        &self,
        identity: Identity,
        now: DateTime<Utc>,
    ) -> Result<(String, Session), StoreError> {
        let id = secret();
        let session = Session {
            principal: identity.id,
            grants: identity.grants,
            asserted_roles: identity.asserted_roles,
            method: identity.method,
            csrf: secret(),
            expires_at: now + chrono_of(LIFETIME),
        };
        let value = serde_json::to_string(&session).map_err(corrupt)?;
        self.store
            .put(&key("session", &id), &value, session.expires_at)
            .await?;
        Ok((id, session))
    }

    /// The live session of `id`.
    pub async fn get(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Session>, StoreError> {
        match self.store.get(&key("session", id), now).await? {
            Some(v) => {
                let s: Session = serde_json::from_str(&v).map_err(corrupt)?;
                Ok((s.expires_at > now).then_some(s))
            }
            None => Ok(None),
        }
    }

    /// Ends the session of `id` (logout).
    pub async fn close(&self, id: &str) -> Result<(), StoreError> {
        self.store.delete(&key("session", id)).await
    }

    /// Records a pending sign-in under a fresh `state`, which it returns.
    pub async fn begin_login(
        &self,
        pending: &PendingLogin,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let state = secret();
        let value = serde_json::to_string(pending).map_err(corrupt)?;
        self.store
            .put(
                &key("login", &state),
                &value,
                now + chrono_of(LOGIN_LIFETIME),
            )
            .await?;
        Ok(state)
    }

    /// The pending sign-in of `state`, removed so it cannot be used twice.
    pub async fn finish_login(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingLogin>, StoreError> {
        match self.store.take(&key("login", state), now).await? {
            Some(v) => Ok(Some(serde_json::from_str(&v).map_err(corrupt)?)),
            None => Ok(None),
        }
    }
}

/// Sessions in the serving process (`steward serve`, tests): one process serves the console.
#[derive(Debug, Default)]
pub struct MemorySessions {
    entries: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn put(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Expired entries are dropped as new ones arrive, so the map does not grow for ever.
        let now = Utc::now();
        entries.retain(|_, (_, exp)| *exp > now);
        entries.insert(key.to_owned(), (value.to_owned(), expires_at));
        Ok(())
    }

    async fn get(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Ok(entries
            .get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone()))
    }

    async fn take(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Ok(entries
            .remove(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Ok(())
    }
}

/// The `Set-Cookie` value that carries session `id`.
pub fn cookie(id: &str, secure: bool) -> String {
    Cookie::build((COOKIE, id.to_owned()))
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(LIFETIME.as_secs() as i64))
        .build()
        .to_string()
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn removal(secure: bool) -> String {
    Cookie::build((COOKIE, ""))
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

/// The session id a request's `Cookie` header carries, if any.
pub fn presented(cookie_header: Option<&str>) -> Option<String> {
    named(cookie_header, COOKIE)
}

fn named(cookie_header: Option<&str>, name: &str) -> Option<String> {
    Cookie::split_parse(cookie_header?)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// The cookie binding a pending OpenID Connect sign-in to the browser that started it, so a
/// callback URL planted in someone else's browser signs nobody in (login CSRF).
pub const LOGIN_COOKIE: &str = "steward_login";

/// The `Set-Cookie` value of the sign-in binding. `SameSite=Lax`, unlike the session cookie:
/// the browser comes back from the identity provider on a cross-site top-level navigation,
/// on which a `Strict` cookie would not be sent.
pub fn login_cookie(value: &str, secure: bool) -> String {
    Cookie::build((LOGIN_COOKIE, value.to_owned()))
        .path("/console/login")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(
            LOGIN_LIFETIME.as_secs() as i64
        ))
        .build()
        .to_string()
}

/// The `Set-Cookie` value that removes the sign-in binding.
pub fn login_cookie_removal(secure: bool) -> String {
    Cookie::build((LOGIN_COOKIE, ""))
        .path("/console/login")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

/// The sign-in binding a request carries, if any.
pub fn presented_login(cookie_header: Option<&str>) -> Option<String> {
    named(cookie_header, LOGIN_COOKIE)
}

/// The digest of a binding value that a [`PendingLogin`] keeps.
pub fn binding_digest(value: &str) -> String {
    key("binding", value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity::plain(PrincipalId::parse("alice").unwrap(), AuthMethod::Token)
    }

    #[tokio::test]
    async fn a_session_lasts_until_its_expiry_or_its_logout() {
        let sessions = Sessions::default();
        let t0 = Utc::now();
        let (id, s) = sessions.open(alice(), t0).await.unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, s.csrf);
        assert_eq!(sessions.get(&id, t0).await.unwrap().as_ref(), Some(&s));
        let later = t0 + chrono::Duration::hours(8);
        assert_eq!(sessions.get(&id, later).await.unwrap(), None, "expired");
        let (id, _) = sessions.open(alice(), t0).await.unwrap();
        sessions.close(&id).await.unwrap();
        assert_eq!(sessions.get(&id, t0).await.unwrap(), None, "logged out");
    }

    #[tokio::test]
    async fn the_store_never_holds_a_session_id_as_a_key() {
        let store = Arc::new(MemorySessions::default());
        let sessions = Sessions::new(store.clone());
        let (id, _) = sessions.open(alice(), Utc::now()).await.unwrap();
        let keys: Vec<String> = store.entries.lock().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 1);
        assert!(!keys[0].contains(&id) && !id.contains(&keys[0]));
    }

    #[tokio::test]
    async fn a_pending_sign_in_is_single_use_and_short_lived() {
        let sessions = Sessions::default();
        let t0 = Utc::now();
        let pending = PendingLogin {
            nonce: "n".into(),
            verifier: "v".into(),
            binding_sha256: "b".into(),
            redirect_uri: "http://127.0.0.1/console/login/callback".into(),
        };
        let state = sessions.begin_login(&pending, t0).await.unwrap();
        assert_eq!(
            sessions.finish_login(&state, t0).await.unwrap(),
            Some(pending.clone())
        );
        assert_eq!(sessions.finish_login(&state, t0).await.unwrap(), None);
        let state = sessions.begin_login(&pending, t0).await.unwrap();
        let late = t0 + chrono::Duration::minutes(11);
        assert_eq!(sessions.finish_login(&state, late).await.unwrap(), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped_to_the_console() {
        let c = cookie("abc", true);
        for part in [
            "steward_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/console",
            "Secure",
            "Max-Age=28800",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!cookie("abc", false).contains("Secure"));
        assert!(removal(false).contains("Max-Age=0"));
        assert_eq!(
            presented(Some("a=1; steward_session=abc; b=2")).as_deref(),
            Some("abc")
        );
        assert_eq!(presented(Some("a=1")), None);
        assert_eq!(presented(None), None);
    }

    #[tokio::test]
    async fn a_csrf_token_matches_only_itself() {
        let (_, s) = Sessions::default().open(alice(), Utc::now()).await.unwrap();
        assert!(s.csrf_matches(&s.csrf.clone()));
        assert!(!s.csrf_matches(""));
        assert!(!s.csrf_matches(&s.csrf[1..]));
    }
}
