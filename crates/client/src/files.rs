//! Private files: profiles, claim secrets, device keys and decrypted media are written
//! readable by the owner only (mode 0600, directories 0700), and replaced atomically so
//! a crash never leaves half a key on disk.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ClientError;

/// Creates `dir` (and parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> Result<(), ClientError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| ClientError::io("cannot create directory", dir, e))
}

/// Writes `bytes` to `path` with mode 0600 through a temporary file and a rename.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&parent)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = parent.join(format!(".{file_name}.{:016x}.tmp", rand::random::<u64>()));
    let result = write_new(&temp, bytes).and_then(|()| {
        fs::rename(&temp, path).map_err(|e| ClientError::io("cannot write", path, e))
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Writes a file that must not exist yet, mode 0600.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            ClientError::WouldOverwrite(path.to_path_buf())
        } else {
            ClientError::io("cannot create", path, e)
        }
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| ClientError::io("cannot write", path, e))
}

/// Serialises `value` as pretty JSON into a private file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ClientError> {
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| ClientError::Invalid(format!("cannot encode {}: {e}", path.display())))?;
    write_private(path, &text)
}

/// Reads a JSON file; `Ok(None)` when it does not exist.
pub fn read_json<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<Option<T>, ClientError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ClientError::io("cannot read", path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ClientError::BadFile {
            what,
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

/// Removes a file; a file that is already gone is not an error.
pub fn remove(path: &Path) -> Result<(), ClientError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClientError::io("cannot remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_owner_only_and_replaced_whole() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("nested").join("secret.json");
        write_json(&path, &vec![1, 2, 3])?;
        write_json(&path, &vec![4])?;
        assert_eq!(read_json::<Vec<u8>>(&path, "test file")?, Some(vec![4]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(fs::read_dir(path.parent().ok_or("no parent")?)?.count(), 1);
        remove(&path)?;
        remove(&path)?;
        assert_eq!(read_json::<Vec<u8>>(&path, "test file")?, None);
        Ok(())
    }

    #[test]
    fn new_files_never_overwrite() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("identity.txt");
        write_new(&path, b"first")?;
        assert!(matches!(
            write_new(&path, b"second"),
            Err(ClientError::WouldOverwrite(_))
        ));
        assert_eq!(fs::read(&path)?, b"first");
        Ok(())
    }
}
