//! The local principals file (TOML): one `[[principal]]` per principal with its name, roles
//! and the SHA-256 of its bearer token. Tokens themselves are never stored.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use steward_core::types::{PrincipalId, Role, Sha256};

use crate::LocalError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: PrincipalId,
    roles: Vec<Role>,
    token_sha256: Sha256,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    principal: Vec<FileEntry>,
}

/// One principal of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalEntry {
    pub id: PrincipalId,
    pub roles: Vec<Role>,
    pub token_sha256: Sha256,
}

/// Parses a principals file; names and token hashes must be unique.
pub fn load_principals(path: &Path) -> Result<Vec<PrincipalEntry>, LocalError> {
    let text = std::fs::read_to_string(path).map_err(|source| LocalError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_principals(&text).map_err(|message| LocalError::Invalid {
        path: path.to_owned(),
        message,
    })
}

pub(crate) fn parse_principals(text: &str) -> Result<Vec<PrincipalEntry>, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut names = HashSet::new();
    let mut tokens = HashSet::new();
    let mut out = Vec::new();
    for e in file.principal {
        if !names.insert(e.name.clone()) {
            return Err(format!("principal {} is listed twice", e.name));
        }
        if !tokens.insert(e.token_sha256) {
            return Err(format!(
                "principal {} reuses another principal's token",
                e.name
            ));
        }
        let mut roles = e.roles;
        roles.sort();
        roles.dedup();
        out.push(PrincipalEntry {
            id: e.name,
            roles,
            token_sha256: e.token_sha256,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const H2: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

    #[test]
    fn a_principals_file_lists_names_roles_and_token_hashes() {
        let p = parse_principals(&format!(
            "[[principal]]\nname = \"alice\"\nroles = [\"developer\"]\ntoken_sha256 = \"{H1}\"\n\
             [[principal]]\nname = \"bob\"\nroles = [\"technical-reviewer\", \"business-reviewer\"]\ntoken_sha256 = \"{H2}\"\n"
        ))
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].id.as_ref(), "alice");
        assert_eq!(
            p[1].roles,
            vec![Role::TechnicalReviewer, Role::BusinessReviewer]
        );
    }

    #[test]
    fn duplicate_names_unknown_roles_and_bad_hashes_are_refused() {
        let dup = format!("[[principal]]\nname = \"a\"\nroles = []\ntoken_sha256 = \"{H1}\"\n[[principal]]\nname = \"a\"\nroles = []\ntoken_sha256 = \"{H2}\"\n");
        assert!(parse_principals(&dup).unwrap_err().contains("twice"));
        let same_token = format!("[[principal]]\nname = \"a\"\nroles = []\ntoken_sha256 = \"{H1}\"\n[[principal]]\nname = \"b\"\nroles = []\ntoken_sha256 = \"{H1}\"\n");
        assert!(parse_principals(&same_token).unwrap_err().contains("token"));
        let role =
            format!("[[principal]]\nname = \"a\"\nroles = [\"root\"]\ntoken_sha256 = \"{H1}\"\n");
        assert!(parse_principals(&role).is_err());
        assert!(parse_principals(
            "[[principal]]\nname = \"a\"\nroles = []\ntoken_sha256 = \"abc\"\n"
        )
        .is_err());
    }
}
