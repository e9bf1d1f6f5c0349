//! `steward evidence`: download a pack (and check it with the key the server publishes), and
//! `steward evidence verify`: check one offline against a pinned key.
//!
//! Invariants: a pack is unpacked only into a new or empty directory, and only through core's
//! pack paths (no entry can escape it); `verify` reads a directory without following symbolic
//! links and a zip within core's size limits.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::json;
use steward_core::pack::{from_zip, valid_path, verify_pack, Pack, MAX_BYTES, MAX_FILES};

use super::{client, print_client_error};
use crate::cli::{EvidenceArgs, EvidenceCmd, EvidenceVerifyArgs};
use crate::verify::{parse_public_key, read_public_key_file};

pub async fn run(a: EvidenceArgs) -> anyhow::Result<ExitCode> {
    if let Some(EvidenceCmd::Verify(v)) = a.command {
        return verify(v);
    }
    let (Some(name), Some(version)) = (a.name, a.version) else {
        bail!("give NAME and VERSION, or `verify PATH`");
    };
    let out = match (&a.out, &a.zip) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(PathBuf::from(format!("{name}-v{version}-evidence"))),
    };
    if let Some(dir) = &out {
        ensure_empty(dir)?;
    }
    let c = client(&a.conn)?;
    let zip = match c.evidence_pack(&name, version).await {
        Ok(z) => z,
        Err(e) => {
            print_client_error(&e);
            return Ok(ExitCode::FAILURE);
        }
    };
    let pack = from_zip(&zip).context("the server's answer is not an evidence pack")?;
    if let Some(path) = &a.zip {
        std::fs::write(path, &zip).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {} ({} bytes)", path.display(), zip.len());
    }
    if let Some(dir) = &out {
        write_dir(&pack, dir)?;
        println!("unpacked {} files into {}", pack.files.len(), dir.display());
    }
    // A first check with the key the server publishes; auditors pin it with `verify`.
    let key = match c.audit_key().await {
        Ok(k) => k,
        Err(e) => {
            print_client_error(&e);
            return Ok(ExitCode::FAILURE);
        }
    };
    let hex_key = key["public_key"].as_str().unwrap_or_default().to_owned();
    match verify_pack(&pack, &parse_public_key(&hex_key)?) {
        Ok(r) => {
            println!(
                "verified with the server's key {} ({} events, {} facts); pin it offline with:",
                r.key_id, r.events, r.facts
            );
            let target = out.as_ref().or(a.zip.as_ref()).expect("one of them");
            println!(
                "  steward evidence verify {} --public-key {hex_key}",
                target.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: the pack does not verify with the server's key: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn verify(a: EvidenceVerifyArgs) -> anyhow::Result<ExitCode> {
    let key = match (&a.public_key, &a.public_key_file) {
        (Some(hex), _) => parse_public_key(hex)?,
        (None, Some(file)) => read_public_key_file(file)?,
        (None, None) => bail!("--public-key or --public-key-file is required"),
    };
    // A pack that cannot be read (a damaged zip, a stray file name) fails like any other.
    let checked = read_pack(&a.path)
        .and_then(|pack| verify_pack(&pack, &key).map_err(|e| anyhow::anyhow!("{e}")));
    match checked {
        Ok(r) => {
            if a.json {
                let report = json!({
                    "verified": true, "model": r.model, "version": r.version,
                    "files": r.files, "events": r.events, "facts": r.facts,
                    "checkpoint_size": r.checkpoint_size, "key_id": r.key_id,
                    "html_compared": r.html_compared,
                });
                println!("{report:#}");
            } else {
                println!(
                    "verified: {} version {}, {} files signed by key {}",
                    r.model, r.version, r.files, r.key_id
                );
                println!(
                    "  {} audit events proven against the checkpoint of {} events; {} facts match their events",
                    r.events, r.checkpoint_size, r.facts
                );
                if r.html_compared {
                    println!("  document.html is the rendering of document.json");
                } else {
                    println!("  document.html was made by a renderer this steward does not know: not compared");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if a.json {
                println!(
                    "{:#}",
                    json!({"verified": false, "reason": format!("{e:#}")})
                );
            }
            eprintln!("verification FAILED: {e:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A pack from a zip file or a directory.
fn read_pack(path: &Path) -> anyhow::Result<Pack> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        return read_dir(path);
    }
    if meta.len() > MAX_BYTES {
        bail!("{} is larger than a pack may be", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    from_zip(&bytes).with_context(|| format!("{} is not a pack", path.display()))
}

fn ensure_empty(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} exists and is not empty", dir.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Writes the pack's files under `dir` (created if missing).
fn write_dir(pack: &Pack, dir: &Path) -> anyhow::Result<()> {
    for (path, bytes) in &pack.files {
        if !valid_path(path) {
            bail!("{path:?} is not a path a pack holds");
        }
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, bytes).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

/// Every regular file under `dir`, by its `/`-joined path relative to `dir`. Symbolic links
/// are not followed: a pack is what the directory itself holds.
fn read_dir(dir: &Path) -> anyhow::Result<Pack> {
    let mut pack = Pack::default();
    let mut total = 0u64;
    let mut pending: Vec<(PathBuf, String)> = vec![(dir.to_path_buf(), String::new())];
    while let Some((at, prefix)) = pending.pop() {
        for entry in std::fs::read_dir(&at).with_context(|| format!("reading {}", at.display()))? {
            let entry = entry.with_context(|| format!("reading {}", at.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push((entry.path(), rel));
            } else if kind.is_file() {
                if !valid_path(&rel) {
                    bail!("{rel:?} in {} is not a file a pack holds", dir.display());
                }
                let bytes = std::fs::read(entry.path())
                    .with_context(|| format!("reading {}", entry.path().display()))?;
                total += bytes.len() as u64;
                if total > MAX_BYTES || pack.files.len() >= MAX_FILES {
                    bail!("{} holds more than a pack may", dir.display());
                }
                pack.files.insert(rel, bytes);
            }
        }
    }
    Ok(pack)
}
