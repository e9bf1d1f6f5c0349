//! A pack as a zip archive, in memory (the CLI reads and writes directories).
//!
//! Invariants: only relative paths of plain names (`[A-Za-z0-9._-]`) joined by `/` are written
//! or read, so no entry can escape the directory it is unpacked into; a zip that holds more
//! than [`MAX_FILES`] entries or [`MAX_BYTES`] uncompressed is refused before it is inflated
//! past the limit. Zips are written with fixed timestamps, so the same files give the same
//! bytes.

use std::io::{Cursor, Read, Write};

use thiserror::Error;
use zip::write::SimpleFileOptions;

use super::Pack;

/// Most entries a pack may hold.
pub const MAX_FILES: usize = 100_000;
/// Most bytes a pack may hold, uncompressed.
pub const MAX_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error("not a readable zip archive: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0:?} is not a path a pack holds (relative, plain names joined by '/')")]
    BadPath(String),
    #[error("the pack is larger than {MAX_FILES} files or {MAX_BYTES} bytes")]
    TooLarge,
}

fn io(path: &str) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether `path` is a pack path (what [`to_zip`] writes and [`from_zip`] reads): `a/b.json`, never `..`, absolute, empty or with `\`.
pub fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// The pack as a zip (deflated entries).
pub fn to_zip(pack: &Pack) -> Result<Vec<u8>, ArchiveError> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for (path, bytes) in &pack.files {
        if !valid_path(path) {
            return Err(ArchiveError::BadPath(path.clone()));
        }
        zip.start_file(path.as_str(), options)?;
        zip.write_all(bytes).map_err(io(path))?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Reads a pack from zip bytes. Directory entries are skipped.
pub fn from_zip(bytes: &[u8]) -> Result<Pack, ArchiveError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))?;
    if zip.len() > MAX_FILES {
        return Err(ArchiveError::TooLarge);
    }
    let mut pack = Pack::default();
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = zip.by_index(i)?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_owned();
        if !valid_path(&name) {
            return Err(ArchiveError::BadPath(name));
        }
        // Read at most what is left of the budget (plus one byte to notice going over),
        // whatever size the entry claims.
        let budget = MAX_BYTES - total;
        let mut data = Vec::new();
        entry
            .take(budget + 1)
            .read_to_end(&mut data)
            .map_err(io(&name))?;
        total += data.len() as u64;
        if total > MAX_BYTES {
            return Err(ArchiveError::TooLarge);
        }
        pack.files.insert(name, data);
    }
    Ok(pack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Pack {
        let mut p = Pack::default();
        p.files.insert("document.json".into(), b"{}\n".to_vec());
        p.files
            .insert("events/000000000001.json".into(), b"{\"seq\":1}".to_vec());
        p
    }

    #[test]
    fn a_zip_reads_back_as_the_same_files_and_is_the_same_bytes_each_time() {
        let z = to_zip(&sample()).unwrap();
        assert_eq!(from_zip(&z).unwrap(), sample());
        assert_eq!(to_zip(&sample()).unwrap(), z);
    }

    #[test]
    fn paths_that_could_escape_the_directory_are_refused() {
        for bad in ["../x", "/etc/passwd", "a//b", "a\\b", "./a", ""] {
            assert!(!valid_path(bad), "{bad:?}");
            let mut p = Pack::default();
            p.files.insert(bad.into(), vec![]);
            assert!(
                matches!(to_zip(&p), Err(ArchiveError::BadPath(_))),
                "{bad:?}"
            );
        }
    }
}
