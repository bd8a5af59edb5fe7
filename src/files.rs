//! File defences shared by the helper's configuration file and Docker's: whether a path is this
//! user's own and writable by nobody else (never through a symlink; on Windows, only the link
//! and the kind are checked), and atomic replacement of a small file (temp file beside it, fsync,
//! rename, fsync the folder where the platform can).

use std::fs::{self, Metadata};
use std::io::{self, Write};
use std::path::Path;

/// What kind of file a checked path must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Directory,
    File,
}

/// Why `metadata` (from `symlink_metadata`, or `fstat` of a file opened without following links)
/// is not a `kind` of this user's own that nobody else can write, or `None` when it is.
pub fn refusal(metadata: &Metadata, kind: Kind) -> Option<&'static str> {
    if metadata.file_type().is_symlink() {
        return Some("it is a symbolic link");
    }
    match kind {
        Kind::Directory if !metadata.is_dir() => return Some("it is not a directory"),
        Kind::File if !metadata.is_file() => return Some("it is not a regular file"),
        _ => {}
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if metadata.uid() != rustix::process::geteuid().as_raw() {
            return Some("it is owned by another user");
        }
        if metadata.mode() & 0o022 != 0 {
            return Some(WRITABLE);
        }
    }
    None
}

/// `refusal` for `path`, with the command that fixes a mode that lets others write it.
pub fn refusal_at(metadata: &Metadata, kind: Kind, path: &Path) -> Option<String> {
    let reason = refusal(metadata, kind)?;
    Some(if reason == WRITABLE {
        writable(path, kind)
    } else {
        reason.to_string()
    })
}

const WRITABLE: &str = "it is writable by group or others";

/// The refusal of a `path` others can write, naming the fix.
pub fn writable(path: &Path, kind: Kind) -> String {
    let mode = match kind {
        Kind::Directory => 700,
        Kind::File => 600,
    };
    format!("{WRITABLE}: fix it with `chmod {mode} {}`", path.display())
}

/// Replaces `target` with `bytes`, atomically and durably: a new temp file beside it (created
/// exclusively, so never through a link), `permissions` (None: private to the user), fsync,
/// rename over `target`, fsync the folder.
pub fn write_atomic(
    target: &Path,
    bytes: &[u8],
    permissions: Option<fs::Permissions>,
) -> io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let prefix = format!(
        ".{}.",
        target
            .file_name()
            .map(|name| name.to_string_lossy())
            .unwrap_or_default()
    );
    let mut temp = tempfile::Builder::new().prefix(&prefix).tempfile_in(dir)?;
    temp.write_all(bytes)?;
    if let Some(permissions) = permissions.or_else(private_file) {
        temp.as_file().set_permissions(permissions)?;
    }
    temp.as_file().sync_all()?;
    temp.persist(target).map_err(|err| err.error)?;
    sync_dir(dir)
}

/// Why `open_no_follow` opened nothing.
#[derive(Debug)]
pub enum NotOpened {
    Missing,
    Symlink,
    Failed(io::Error),
}

/// Opens `path` for reading, never through a symlink and never blocking on a FIFO (on Windows,
/// where there are no FIFOs, a symlink is looked for before opening).
pub fn open_no_follow(path: &Path) -> Result<fs::File, NotOpened> {
    let classify = |err: io::Error| match err.kind() {
        io::ErrorKind::NotFound => NotOpened::Missing,
        _ => NotOpened::Failed(err),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits() as i32)
            .open(path)
            .map_err(|err| match err.raw_os_error() {
                Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => NotOpened::Symlink,
                _ => classify(err),
            })
    }
    #[cfg(not(unix))]
    {
        if fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink()) {
            return Err(NotOpened::Symlink);
        }
        fs::File::open(path).map_err(classify)
    }
}

/// A new folder and its missing parents: private to the user (0700) where the platform has
/// modes.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir)
}

/// The permissions of a new private file: 0600 on Unix; on Windows the profile's access list
/// (private to the user by default) is left as it is.
fn private_file() -> Option<fs::Permissions> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Some(fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    None
}

/// Makes a rename in `dir` durable; Windows cannot flush a folder.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
#[cfg(unix)] // The tests check Unix modes.
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn refuses_links_wrong_kinds_and_shared_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, "x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let check = |path: &Path, kind| refusal(&fs::symlink_metadata(path).unwrap(), kind);
        assert_eq!(check(&file, Kind::File), None);
        assert_eq!(check(&link, Kind::File), Some("it is a symbolic link"));
        assert_eq!(check(&file, Kind::Directory), Some("it is not a directory"));
        assert_eq!(
            check(tmp.path(), Kind::File),
            Some("it is not a regular file")
        );
        fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
        assert_eq!(
            check(&file, Kind::File),
            Some("it is writable by group or others")
        );
    }

    #[test]
    fn write_atomic_replaces_whole_with_the_mode_and_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("config.json");
        fs::write(&target, "old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&target, b"new", None).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
