//! File defences shared by the helper's configuration file and Docker's: whether a path is this
//! user's own and writable by nobody else (never through a symlink; on Windows, only the link
//! and the kind are checked), atomic replacement of a small file (temp file beside it, fsync,
//! rename, fsync the folder where the platform can), and sidecar lock files around a
//! read-modify-write.

use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::debug;

use crate::error::{Error, Result};

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

/// What a rewrite keeps of the file it replaces: its mode, and (when root rewrites another
/// user's file, as `sudo` with `HOME` kept does) its owner.
#[derive(Debug, Clone)]
pub struct Kept {
    /// `None`: a new file's (`private_file`).
    permissions: Option<fs::Permissions>,
    #[cfg(unix)]
    owner: (u32, u32),
}

impl Kept {
    pub fn of(metadata: &Metadata) -> Kept {
        Kept {
            permissions: Some(metadata.permissions()),
            #[cfg(unix)]
            owner: owner_of(metadata),
        }
    }

    /// For a new file in `dir`: private to the user, owned (when root) by the folder's owner, so
    /// that a file root writes into someone's home stays theirs. `None` when `dir` cannot be read.
    pub fn new_in(dir: &Path) -> Option<Kept> {
        #[cfg(unix)]
        let owner = owner_of(&fs::metadata(dir).ok()?);
        #[cfg(not(unix))]
        let _ = dir;
        Some(Kept {
            permissions: None,
            #[cfg(unix)]
            owner,
        })
    }
}

#[cfg(unix)]
fn owner_of(metadata: &Metadata) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    (metadata.uid(), metadata.gid())
}

/// Replaces `target` with `bytes`, atomically and durably: a new temp file beside it (created
/// exclusively, so never through a link) with what `kept` says (None: private to the user),
/// fsync, rename over `target`, fsync the folder. Once the rename is done the new contents are in
/// place: a folder that cannot be flushed after it is logged, not an error, so that a caller
/// never reports as failed (and half-applied) a change that was made.
pub fn write_atomic(target: &Path, bytes: &[u8], kept: Option<&Kept>) -> io::Result<()> {
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
    let permissions = kept.and_then(|kept| kept.permissions.clone());
    if let Some(permissions) = permissions.or_else(private_file) {
        temp.as_file().set_permissions(permissions)?;
    }
    #[cfg(unix)]
    if let Some(&Kept { owner, .. }) = kept {
        keep_owner(temp.as_file(), owner)?;
    }
    temp.as_file().sync_all()?;
    temp.persist(target).map_err(|err| err.error)?;
    if let Err(err) = sync_dir(dir) {
        debug!(
            "wrote {}, but could not flush its folder: {err}",
            target.display()
        );
    }
    Ok(())
}

/// Gives `file` to `owner` when this process is root and `owner` is someone else; a user who is
/// not root can only make files of their own, so nothing changes then.
#[cfg(unix)]
fn keep_owner(file: &File, (uid, gid): (u32, u32)) -> io::Result<()> {
    use rustix::process::{Gid, Uid, geteuid};
    if !geteuid().is_root() {
        return Ok(());
    }
    rustix::fs::fchown(file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
        .map_err(io::Error::from)
}

/// Gives the folder `dir`, just made, to the owner of the folder it is in, when this process is
/// root (nothing otherwise): a folder root makes in someone's home stays theirs.
pub fn give_to_parent_owner(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    if let Some(Kept { owner, .. }) = dir.parent().and_then(Kept::new_in) {
        keep_owner(&File::open(dir)?, owner)?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates `dir` (0700, with its missing parents) if it is missing, and checks it is a folder of
/// the user's own that nobody else can write; `Err` says why it cannot be used.
pub fn ensure_private_dir(dir: &Path) -> std::result::Result<(), String> {
    let metadata = match fs::symlink_metadata(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            create_private_dir(dir).map_err(|err| format!("cannot create it: {err}"))?;
            fs::symlink_metadata(dir)
        }
        other => other,
    }
    .map_err(|err| format!("cannot read it: {err}"))?;
    match refusal_at(&metadata, Kind::Directory, dir) {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

/// An exclusive lock on a sidecar lock file, held until it is dropped (the OS drops it when its
/// holder dies, however it dies).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Takes the exclusive lock of the lock file at `path` (created empty and private if missing,
/// never through a symlink), waiting at most `timeout` for another process to let it go.
pub fn lock(path: &Path, timeout: Duration) -> Result<FileLock> {
    let file = open_lock_file(path).map_err(|err| Error::io("cannot open lock file", path, err))?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    let mut logged = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(err)) => return Err(Error::io("cannot lock", path, err)),
        }
        if !logged {
            debug!("waiting for lock {}", path.display());
            logged = true;
        }
        if started.elapsed() >= timeout {
            return Err(Error::LockTimeout {
                path: path.to_path_buf(),
                after: timeout,
            });
        }
        std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    debug!("acquired lock {}", path.display());
    Ok(FileLock { _file: file })
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        options.mode(0o600).custom_flags(flags.bits() as i32);
    }
    #[cfg(not(unix))]
    if fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink()) {
        return Err(io::Error::other("it is a symbolic link"));
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("it is not a regular file"));
    }
    Ok(file)
}

/// `path`, made absolute and with its folder's links resolved where it exists: the same file
/// named two ways gives one name, for keying a lock.
pub fn canonical(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => fs::canonicalize(dir)
            .map(|dir| dir.join(name))
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
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
    fn a_second_locker_waits_then_gives_up_and_links_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.lock");
        let held = lock(&path, Duration::from_secs(1)).unwrap();
        let err = lock(&path, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        drop(held);
        assert!(lock(&path, Duration::from_millis(50)).is_ok());
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);

        let target = tmp.path().join("elsewhere");
        let link = tmp.path().join("link.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(lock(&link, Duration::from_millis(50)).is_err());
        assert!(!target.exists());
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
