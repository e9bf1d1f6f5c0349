//! Console sessions: who signed in, until when, and the CSRF token every form of theirs carries.
//!
//! Invariants:
//! - A session id and a CSRF token are 256 bits from the OS's random source, hex; the id
//!   travels only in the `steward_session` cookie (HttpOnly, SameSite=Strict, `Path=/console`,
//!   Secure when the request came over TLS), the token only in the pages' hidden form fields.
//! - A session ends at its expiry (8 hours after sign-in) or at logout, whichever is first;
//!   an ended session is gone from the store, so its cookie no longer authenticates anything.
//! - The store holds the principal id only: roles are read from the registry on every request,
//!   so a role change applies to open sessions at once.
//! - Sessions live in the serving process (the embedded `steward serve`). Behind several API
//!   function instances they would need a shared store; there the console signs in through
//!   OpenID Connect (its own issue).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cookie::{Cookie, SameSite};
use steward_core::types::PrincipalId;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "steward_session";
/// How long a session lasts after sign-in.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// One signed-in principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub principal: PrincipalId,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// The open sessions, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

/// 256 random bits, hex.
fn secret() -> String {
    let mut bytes = [0u8; 32];
    // The OS's generator failing is not something a sign-in can recover from.
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}

impl Sessions {
    /// Opens a session for `principal`; returns its id and the session.
    pub fn open(&self, principal: PrincipalId, now: DateTime<Utc>) -> (String, Session) {
        let id = secret();
        let session = Session {
            principal,
            csrf: secret(),
            expires_at: now + chrono::Duration::from_std(LIFETIME).unwrap_or_default(),
        };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        // Expired sessions are dropped as new ones open, so the map does not grow for ever.
        open.retain(|_, s| s.expires_at > now);
        open.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session of `id`; an expired one is removed and is `None`.
    pub fn get(&self, id: &str, now: DateTime<Utc>) -> Option<Session> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.get(id) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                open.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `id` (logout).
    pub fn close(&self, id: &str) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
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
    Cookie::split_parse(cookie_header?)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> PrincipalId {
        PrincipalId::parse("alice").unwrap()
    }

    #[test]
    fn a_session_lasts_until_its_expiry_or_its_logout() {
        let sessions = Sessions::default();
        let t0 = Utc::now();
        let (id, s) = sessions.open(alice(), t0);
        assert_eq!(id.len(), 64);
        assert_ne!(id, s.csrf);
        assert_eq!(sessions.get(&id, t0).as_ref(), Some(&s));
        let later = t0 + chrono::Duration::hours(8);
        assert_eq!(sessions.get(&id, later), None, "expired");
        let (id, _) = sessions.open(alice(), t0);
        sessions.close(&id);
        assert_eq!(sessions.get(&id, t0), None, "logged out");
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

    #[test]
    fn a_csrf_token_matches_only_itself() {
        let (_, s) = Sessions::default().open(alice(), Utc::now());
        assert!(s.csrf_matches(&s.csrf.clone()));
        assert!(!s.csrf_matches(""));
        assert!(!s.csrf_matches(&s.csrf[1..]));
    }
}
