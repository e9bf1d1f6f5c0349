//! The sign-in cache: one file per server holding the ID token `steward login` obtained.
//!
//! Layout: `$STEWARD_CONFIG_DIR` (default `$XDG_CONFIG_HOME/steward`, else
//! `~/.config/steward`) `/tokens/<first 16 hex of SHA-256 of the normalized server URL>.json`.
//!
//! Invariants: the `tokens` directory is 0700 and every token file is created 0600 from its
//! first byte (written to a temporary file opened with that mode, then renamed into place), so
//! a token is never readable by anyone else, not even for an instant; `Debug` never shows a
//! token.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The environment variable naming the configuration directory.
pub const CONFIG_DIR_ENV: &str = "STEWARD_CONFIG_DIR";

/// A cached sign-in.
#[derive(Clone, Serialize, Deserialize)]
pub struct CachedToken {
    pub server: String,
    pub issuer: String,
    pub client_id: String,
    pub id_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("server", &self.server)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("refreshable", &self.refresh_token.is_some())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The configuration directory: `$STEWARD_CONFIG_DIR`, else `$XDG_CONFIG_HOME/steward`, else
/// `$HOME/.config/steward`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var(CONFIG_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(xdg) = var("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(xdg).join("steward"));
    }
    let home =
        var("HOME").context("neither STEWARD_CONFIG_DIR, XDG_CONFIG_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".config").join("steward"))
}

/// The server URL as the cache keys it: scheme and host lowercased, default port and trailing
/// slashes dropped (`HTTP://Example.com:443/` and `http://example.com` differ only by port).
pub fn normalize_server(server: &str) -> String {
    match reqwest::Url::parse(server.trim()) {
        Ok(url) => url.as_str().trim_end_matches('/').to_owned(),
        Err(_) => server.trim().trim_end_matches('/').to_owned(),
    }
}

/// Where the sign-in to `server` is cached under `dir`.
pub fn token_path(dir: &Path, server: &str) -> PathBuf {
    let digest = Sha256::digest(normalize_server(server).as_bytes());
    dir.join("tokens")
        .join(format!("{}.json", &hex::encode(digest)[..16]))
}

/// The cached sign-in to `server`, if there is one.
pub fn load(dir: &Path, server: &str) -> anyhow::Result<Option<CachedToken>> {
    let path = token_path(dir, server);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let token: CachedToken = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a sign-in cache; delete it or run `steward login`",
            path.display()
        )
    })?;
    Ok(Some(token))
}

/// Caches `token` for its server, replacing any earlier sign-in; returns the file's path.
pub fn save(dir: &Path, token: &CachedToken) -> anyhow::Result<PathBuf> {
    let tokens = dir.join("tokens");
    create_private_dir(&tokens)?;
    let path = token_path(dir, &token.server);
    let json = serde_json::to_vec_pretty(token)?;
    let tmp = tokens.join(format!(
        ".{}.{}.tmp",
        path.file_stem().and_then(|s| s.to_str()).unwrap_or("token"),
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = private_file(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(path)
}

/// Deletes the cached sign-in to `server`; `false` when there was none.
pub fn delete(dir: &Path, server: &str) -> anyhow::Result<bool> {
    let path = token_path(dir, server);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("deleting {}", path.display())),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    // An existing directory keeps its mode on create: tighten it.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {} to its owner", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(server: &str) -> CachedToken {
        CachedToken {
            server: server.into(),
            issuer: "https://id.example.com".into(),
            client_id: "steward-cli".into(),
            id_token: "eyJ.secret-id-token.sig".into(),
            refresh_token: Some("secret-refresh".into()),
            expires_at: Utc::now(),
        }
    }

    #[test]
    fn equivalent_server_urls_share_one_cache_file() {
        let dir = Path::new("/cfg");
        let a = token_path(dir, "HTTPS://API.Example.com:443/");
        assert_eq!(a, token_path(dir, "https://api.example.com"));
        assert_ne!(a, token_path(dir, "https://api.example.com:8443"));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), "0123456789abcdef.json".len());
        assert_eq!(a.parent().unwrap(), Path::new("/cfg/tokens"));
    }

    #[cfg(unix)]
    #[test]
    fn a_cached_token_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = save(dir.path(), &token("http://127.0.0.1:1")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("tokens")), 0o700);
        // Replacing it keeps the mode, and leaves no temporary file behind.
        save(dir.path(), &token("http://127.0.0.1:1")).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tokens"))
                .unwrap()
                .count(),
            1
        );
        let back = load(dir.path(), "http://127.0.0.1:1/").unwrap().unwrap();
        assert_eq!(back.refresh_token.as_deref(), Some("secret-refresh"));
        assert!(delete(dir.path(), "http://127.0.0.1:1").unwrap());
        assert!(load(dir.path(), "http://127.0.0.1:1").unwrap().is_none());
        assert!(!delete(dir.path(), "http://127.0.0.1:1").unwrap());
    }

    #[test]
    fn the_debug_of_a_cached_token_shows_no_token() {
        let shown = format!("{:?}", token("http://x"));
        assert!(!shown.contains("secret"), "{shown}");
    }
}
