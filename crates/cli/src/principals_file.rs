//! Writing local principals files: the starter set `steward serve` creates on a first run,
//! principals added with `steward principals add`, and the demo's cast.
//!
//! Invariants: a principals file holds token *hashes* only; tokens are 32 random bytes from the
//! OS, shown once (to stdout, by `principals add`) or written to a `tokens.txt` only its owner
//! can read, and never logged. Every file written here loads with
//! `steward_local::load_principals`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rand::RngCore;
use steward_core::types::{PrincipalId, Role, Sha256};

/// The file `steward serve` reads principals from by default, inside the data directory.
pub const PRINCIPALS_FILE: &str = "principals.toml";
/// Where the starter principals' tokens go, inside the data directory (mode 0600).
pub const TOKENS_FILE: &str = "tokens.txt";

/// A new bearer token: 32 random bytes as 64 hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A principal with the token it authenticates with.
#[derive(Clone)]
pub struct Credential {
    pub name: PrincipalId,
    pub roles: Vec<Role>,
    pub token: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Credential {
    pub fn new(name: &str, roles: &[Role]) -> anyhow::Result<Self> {
        Ok(Self {
            name: PrincipalId::parse(name).map_err(|e| anyhow::anyhow!("{e}"))?,
            roles: roles.to_vec(),
            token: new_token(),
        })
    }

    pub fn token_sha256(&self) -> Sha256 {
        Sha256::digest(self.token.as_bytes())
    }
}

/// The starter set: one principal per role.
pub fn starter_set() -> Vec<Credential> {
    [
        ("admin", Role::Admin),
        ("dev", Role::Developer),
        ("tech", Role::TechnicalReviewer),
        ("biz", Role::BusinessReviewer),
        ("comp", Role::ComplianceReviewer),
        ("release", Role::ReleaseManager),
        ("ops", Role::Operator),
        ("audit", Role::Auditor),
        ("ci", Role::Ci),
    ]
    .into_iter()
    .map(|(name, role)| Credential::new(name, &[role]).expect("static names are valid"))
    .collect()
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// One `[[principal]]` entry.
pub fn entry(name: &PrincipalId, roles: &[Role], token_sha256: &Sha256) -> String {
    let roles: Vec<String> = roles.iter().map(|r| toml_str(r.as_str())).collect();
    format!(
        "[[principal]]\nname = {}\nroles = [{}]\ntoken_sha256 = \"{}\"\n",
        toml_str(name.as_ref()),
        roles.join(", "),
        token_sha256.to_hex()
    )
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes a new principals file and, beside the data, a private `tokens.txt` for `creds`.
/// Refuses to replace either file.
pub fn write_with_tokens(
    principals: &Path,
    tokens: &Path,
    creds: &[Credential],
) -> anyhow::Result<()> {
    if principals.exists() {
        bail!("{} already exists", principals.display());
    }
    if tokens.exists() {
        bail!(
            "{} exists but {} does not; move the old tokens file away first",
            tokens.display(),
            principals.display()
        );
    }
    let width = creds
        .iter()
        .map(|c| c.name.as_ref().len())
        .max()
        .unwrap_or(0);
    let mut token_text = String::from(
        "# Steward bearer tokens: keep this file private.\n\
         # Columns: principal, token, roles. Use one with:\n\
         #   export STEWARD_TOKEN=$(awk '$1==\"dev\"{print $2}' tokens.txt)\n",
    );
    for c in creds {
        token_text.push_str(&format!(
            "{:<width$}  {}  {}\n",
            c.name.as_ref(),
            c.token,
            roles_text(&c.roles)
        ));
    }
    steward_local::write_private(tokens, &token_text)?;

    let mut text = String::from(
        "# Steward principals: name, roles and the SHA-256 of the principal's bearer token.\n\
         # Add one with `steward principals add NAME --role ROLE --file <this file>`.\n",
    );
    for c in creds {
        text.push('\n');
        text.push_str(&entry(&c.name, &c.roles, &c.token_sha256()));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(principals)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", principals.display()))?;
    Ok(())
}

/// Creates `DIR/principals.toml` with the starter set and `DIR/tokens.txt` with their tokens.
pub fn write_starter(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let principals = dir.join(PRINCIPALS_FILE);
    let tokens = dir.join(TOKENS_FILE);
    write_with_tokens(&principals, &tokens, &starter_set())?;
    Ok((principals, tokens))
}

/// Appends a principal with a new token to `file` (created if missing); returns the token.
pub fn add(file: &Path, name: &str, roles: &[Role]) -> anyhow::Result<String> {
    let cred = Credential::new(name, roles)?;
    let existing = if file.exists() {
        let entries = steward_local::load_principals(file)?;
        if entries.iter().any(|e| e.id == cred.name) {
            bail!(
                "{} already lists a principal named {}",
                file.display(),
                cred.name
            );
        }
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    } else {
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        String::new()
    };
    let mut addition = String::new();
    if !existing.is_empty() {
        if !existing.ends_with('\n') {
            addition.push('\n');
        }
        addition.push('\n');
    }
    addition.push_str(&entry(&cred.name, &cred.roles, &cred.token_sha256()));
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .and_then(|mut f| f.write_all(addition.as_bytes()))
        .with_context(|| format!("writing {}", file.display()))?;
    // The file must still load as a whole (the server refuses to start otherwise).
    steward_local::load_principals(file)?;
    Ok(cred.token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_set_has_one_principal_per_role_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let (p, t) = write_starter(dir.path()).unwrap();
        let entries = steward_local::load_principals(&p).unwrap();
        assert_eq!(entries.len(), Role::ALL.len());
        for role in Role::ALL {
            assert_eq!(entries.iter().filter(|e| e.roles == vec![*role]).count(), 1);
        }
        let tokens = std::fs::read_to_string(&t).unwrap();
        let principals = std::fs::read_to_string(&p).unwrap();
        for line in tokens.lines().filter(|l| !l.starts_with('#')) {
            let token = line.split_whitespace().nth(1).unwrap();
            assert_eq!(token.len(), 64);
            assert!(
                !principals.contains(token),
                "a token leaked into the principals file"
            );
            let sha = Sha256::digest(token.as_bytes());
            assert!(entries.iter().any(|e| e.token_sha256 == sha));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&t).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            write_starter(dir.path()).is_err(),
            "never replaces an existing file"
        );
    }

    #[test]
    fn adding_a_principal_appends_an_entry_and_refuses_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/principals.toml");
        let t1 = add(&file, "alice", &[Role::Developer]).unwrap();
        let t2 = add(
            &file,
            "bob \"the reviewer\"",
            &[Role::TechnicalReviewer, Role::BusinessReviewer],
        )
        .unwrap();
        assert_ne!(t1, t2);
        let entries = steward_local::load_principals(&file).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].id.as_ref(), "bob \"the reviewer\"");
        assert_eq!(entries[0].token_sha256, Sha256::digest(t1.as_bytes()));
        assert!(add(&file, "alice", &[Role::Auditor]).is_err());
    }
}
