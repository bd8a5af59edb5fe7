//! A folder of the user's own that the helper keeps files in (the cache), checked once when it is
//! opened and then used through what was checked.
//!
//! On Unix: a real directory (not a symlink), owned by this user, neither readable nor writable
//! by anyone else, held open; every file in it is reached through that handle (`openat`), never
//! through a symlink and never blocking on a FIFO. On Windows: a real directory (not a symlink
//! or junction) inside the user's profile; who may read it is the profile's access list, which
//! is private to the user by default and is not checked here.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// How a file in the folder is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read, without blocking (a FIFO planted there must not hang the helper).
    Read,
    /// Read and write, created if missing (a lock file).
    Lock,
    /// Write from empty, created if missing, readable by this user only (a temp file).
    Replace,
}

#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
    #[cfg(unix)]
    handle: std::os::fd::OwnedFd,
}

impl PrivateDir {
    /// Opens `path`, creating it (private) if it is missing. Err is why it was refused, for a
    /// message; a refused folder is left exactly as it was.
    pub fn open(path: &Path) -> Result<PrivateDir, String> {
        platform::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name` in the folder, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn open_file(&self, name: &str, access: Access) -> io::Result<File> {
        platform::open_file(self, name, access)
    }

    pub fn remove_file(&self, name: &str) -> io::Result<()> {
        platform::remove_file(self, name)
    }

    /// Replaces `to` with `from`, atomically.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        platform::rename(self, from, to)
    }

    /// Makes renames and removals in the folder durable (where the platform can).
    pub fn sync(&self) -> io::Result<()> {
        platform::sync(self)
    }

    /// The names in the folder.
    pub fn names(&self) -> Vec<String> {
        platform::names(self)
    }

    /// Whether `file` (opened from `name`) is still the file at `name`: false once another
    /// process unlinked or replaced it.
    pub fn is_linked(&self, name: &str, file: &File) -> bool {
        platform::is_linked(self, name, file)
    }
}

#[cfg(unix)]
mod platform {
    use std::fs::{DirBuilder, File};
    use std::io;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    use std::path::Path;

    use rustix::fs::{AtFlags, FileType, Mode, OFlags};

    use super::{Access, PrivateDir};

    pub fn open(path: &Path) -> Result<PrivateDir, String> {
        let flags = OFlags::RDONLY
            | OFlags::DIRECTORY
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC;
        let own = |uid: u32| uid == rustix::process::geteuid().as_raw();
        // Opened first, created only when missing: the usual case is one system call.
        let handle = match rustix::fs::open(path, flags, Mode::empty()) {
            Err(rustix::io::Errno::NOENT) => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(path)
                    .map_err(|err| format!("cannot create it: {err}"))?;
                rustix::fs::open(path, flags, Mode::empty())
            }
            opened => opened,
        };
        let handle = handle.map_err(|err| {
            // Why it could not be opened, for the message only (the handle is what is used).
            let found = rustix::fs::lstat(path).ok();
            let kind = found
                .as_ref()
                .map(|stat| FileType::from_raw_mode(stat.st_mode));
            match (kind, found) {
                (Some(FileType::Symlink), _) => "it is a symbolic link".to_string(),
                (Some(kind), _) if kind != FileType::Directory => "it is not a directory".into(),
                (_, Some(stat)) if !own(stat.st_uid) => "it is owned by another user".into(),
                _ => format!("cannot open it: {}", io::Error::from(err)),
            }
        })?;
        let stat = rustix::fs::fstat(&handle)
            .map_err(|err| format!("cannot read it: {}", io::Error::from(err)))?;
        if !own(stat.st_uid) {
            return Err("it is owned by another user".into());
        }
        let mode = stat.st_mode & 0o777;
        if mode & 0o022 != 0 {
            return Err(crate::files::writable(path, crate::files::Kind::Directory));
        }
        if mode & 0o044 != 0 {
            return Err(format!(
                "it is readable by group or others (mode {mode:o}); use a private directory (chmod 700)"
            ));
        }
        Ok(PrivateDir {
            path: path.to_path_buf(),
            handle,
        })
    }

    pub fn open_file(dir: &PrivateDir, name: &str, access: Access) -> io::Result<File> {
        let flags = match access {
            Access::Read => OFlags::RDONLY | OFlags::NONBLOCK,
            Access::Lock => OFlags::RDWR | OFlags::CREATE,
            Access::Replace => OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC,
        } | OFlags::NOFOLLOW
            | OFlags::CLOEXEC;
        let file = File::from(rustix::fs::openat(
            &dir.handle,
            name,
            flags,
            Mode::from_raw_mode(0o600),
        )?);
        if access == Access::Replace {
            // The mode given at creation is narrowed by the umask only; set it exactly anyway.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(file)
    }

    pub fn remove_file(dir: &PrivateDir, name: &str) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&dir.handle, name, AtFlags::empty())?)
    }

    pub fn rename(dir: &PrivateDir, from: &str, to: &str) -> io::Result<()> {
        Ok(rustix::fs::renameat(&dir.handle, from, &dir.handle, to)?)
    }

    pub fn sync(dir: &PrivateDir) -> io::Result<()> {
        Ok(rustix::fs::fsync(&dir.handle)?)
    }

    /// Compared by device and inode; a failure to tell counts as linked (the old behaviour).
    pub fn is_linked(dir: &PrivateDir, name: &str, file: &File) -> bool {
        let Ok(opened) = rustix::fs::fstat(file) else {
            return true;
        };
        match rustix::fs::statat(&dir.handle, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(now) => now.st_dev == opened.st_dev && now.st_ino == opened.st_ino,
            Err(rustix::io::Errno::NOENT) => false,
            Err(_) => true,
        }
    }

    pub fn names(dir: &PrivateDir) -> Vec<String> {
        let Ok(listing) = rustix::fs::Dir::read_from(&dir.handle) else {
            return Vec::new();
        };
        listing
            .filter_map(|item| item.ok())
            .filter_map(|item| Some(item.file_name().to_str().ok()?.to_string()))
            .collect()
    }
}

#[cfg(windows)]
mod platform {
    use std::fs::{self, File, OpenOptions};
    use std::io;
    use std::path::Path;

    use super::{Access, PrivateDir};

    pub fn open(path: &Path) -> Result<PrivateDir, String> {
        fs::create_dir_all(path).map_err(|err| format!("cannot create it: {err}"))?;
        let meta = fs::symlink_metadata(path).map_err(|err| format!("cannot read it: {err}"))?;
        if meta.file_type().is_symlink() {
            return Err("it is a symbolic link or junction".into());
        }
        if !meta.is_dir() {
            return Err("it is not a directory".into());
        }
        Ok(PrivateDir {
            path: path.to_path_buf(),
        })
    }

    pub fn open_file(dir: &PrivateDir, name: &str, access: Access) -> io::Result<File> {
        let path = dir.path.join(name);
        if fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink()) {
            return Err(io::Error::other("it is a symbolic link"));
        }
        let mut options = OpenOptions::new();
        match access {
            Access::Read => options.read(true),
            Access::Lock => options.read(true).write(true).create(true).truncate(false),
            Access::Replace => options.write(true).create(true).truncate(true),
        };
        options.open(path)
    }

    pub fn remove_file(dir: &PrivateDir, name: &str) -> io::Result<()> {
        fs::remove_file(dir.path.join(name))
    }

    pub fn rename(dir: &PrivateDir, from: &str, to: &str) -> io::Result<()> {
        fs::rename(dir.path.join(from), dir.path.join(to))
    }

    /// Lock files are never unlinked on Windows (see `cache::Locked::remove_with_lock`).
    pub fn is_linked(_: &PrivateDir, _: &str, _: &File) -> bool {
        true
    }

    /// Windows cannot flush a directory; the file itself was flushed before the rename.
    pub fn sync(_: &PrivateDir) -> io::Result<()> {
        Ok(())
    }

    pub fn names(dir: &PrivateDir) -> Vec<String> {
        let Ok(listing) = fs::read_dir(&dir.path) else {
            return Vec::new();
        };
        listing
            .filter_map(|item| item.ok())
            .filter_map(|item| item.file_name().into_string().ok())
            .collect()
    }
}
