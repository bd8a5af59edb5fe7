//! The per-user login cache: one small JSON file per entry, replaced atomically, written only
//! under that entry's exclusive OS lock.
//!
//! Readers take no lock: a file is only ever replaced whole by `rename`, so a reader sees the
//! old entry or the new one. Anything unreadable (missing, truncated, garbage, another format,
//! a symlink, a FIFO) reads as "no entry" and is replaced by the next write.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::OFlags;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::debug;

use crate::config::IdentitySource;
use crate::error::{Error, Result};
use crate::files;
use crate::registry::Region;
use crate::secret::Secret;

/// Bumped whenever the file layout changes; other values read as "no entry".
const FORMAT: u32 = 1;
/// No entry is anywhere near this big; a bigger file is not ours.
const MAX_ENTRY_BYTES: u64 = 64 * 1024;

/// Registry credentials and when they stop working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub registry: String,
    pub username: String,
    pub secret: Secret,
    /// Seconds since the Unix epoch.
    pub expires_at: u64,
}

/// The file: the login nested under a format number (not flattened: serde's flatten cannot
/// read numbers with serde_json's `arbitrary_precision`, which keeps Docker's config exact).
#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    login: Login,
}

/// How a cached login may be used at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Outside the refresh margin: use it.
    Fresh,
    /// Inside the margin: refresh it, but it may still be served if the refresh fails.
    Aging,
    Expired,
}

impl Login {
    pub fn freshness(&self, now: u64, margin: Duration) -> Freshness {
        if now >= self.expires_at {
            Freshness::Expired
        } else if now + margin.as_secs() >= self.expires_at {
            Freshness::Aging
        } else {
            Freshness::Fresh
        }
    }
}

/// A cache directory that passed the safety checks.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// Opens (creating it 0700 if needed) a cache directory that is a real directory owned by
    /// this user and writable by nobody else. Anything else is refused, saying why: callers that
    /// only read go on without a cache rather than trust or write to someone else's files.
    pub fn open(dir: &Path) -> Result<Cache> {
        let refuse = |reason: String| Error::CacheRefused {
            dir: dir.to_path_buf(),
            reason,
        };
        let metadata = match fs::symlink_metadata(dir) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|err| refuse(format!("cannot create it: {err}")))?;
                fs::symlink_metadata(dir)
            }
            other => other,
        }
        .map_err(|err| refuse(format!("cannot read it: {err}")))?;
        if let Some(reason) = files::refusal(&metadata, files::Kind::Directory) {
            return Err(refuse(reason.into()));
        }
        if metadata.mode() & 0o777 != 0o700 {
            // Ours, but readable by others (e.g. made by hand): tighten it.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|err| refuse(format!("cannot make it private: {err}")))?;
        }
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }

    /// `open`, for callers that can do without a cache: a refusal is logged, not returned.
    pub fn open_or_log(dir: Option<&Path>) -> Option<Cache> {
        match Cache::open(dir?) {
            Ok(cache) => Some(cache),
            Err(err) => {
                debug!("WARNING: not using cache dir: {err}");
                None
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry for logins fetched from the API in `region` with `identity`.
    pub fn login_slot(&self, region: &Region, identity: &IdentitySource) -> Slot {
        let hash = Sha256::digest(identity.key.as_bytes());
        let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
        self.slot(&format!("login-{region}-{hex}"))
    }

    /// The entry for credentials that `docker login` stored for `host`.
    pub fn stored_slot(&self, host: &str) -> Slot {
        self.slot(&format!("stored-{host}"))
    }

    fn slot(&self, name: &str) -> Slot {
        Slot {
            file: self.dir.join(format!("{name}.json")),
            temp: self.dir.join(format!(".{name}.json.tmp")),
            lock: self.dir.join(format!("{name}.lock")),
        }
    }

    /// Every readable entry, stored or fetched, with its slot.
    pub fn entries(&self) -> Vec<(Slot, Login)> {
        let Ok(listing) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        listing
            .filter_map(|item| item.ok())
            .filter_map(|item| {
                let name = item.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".json")?;
                if !(stem.starts_with("login-") || stem.starts_with("stored-")) {
                    return None;
                }
                let slot = self.slot(stem);
                let login = slot.read()?;
                Some((slot, login))
            })
            .collect()
    }
}

/// The files behind one cache entry: the entry, its temp file and its lock.
#[derive(Debug)]
pub struct Slot {
    file: PathBuf,
    temp: PathBuf,
    lock: PathBuf,
}

impl Slot {
    pub fn read(&self) -> Option<Login> {
        read_entry(&self.file)
    }

    /// Takes this entry's exclusive lock, waiting at most `timeout` for another process to
    /// finish. The OS drops the lock when its holder dies, however it dies.
    pub fn lock(&self, timeout: Duration) -> Result<Locked<'_>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32)
            .open(&self.lock)
            .map_err(|err| Error::io("cannot open lock file", &self.lock, err))?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        let mut logged = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(err)) => {
                    return Err(Error::io("cannot lock", &self.lock, err));
                }
            }
            if !logged {
                debug!("waiting for lock {}", self.lock.display());
                logged = true;
            }
            if started.elapsed() >= timeout {
                return Err(Error::LockTimeout {
                    path: self.lock.clone(),
                    after: timeout,
                });
            }
            std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        debug!("acquired lock {}", self.lock.display());
        // A temp file here was left by a holder that died mid-write: nobody else writes it.
        remove_if_present(&self.temp);
        Ok(Locked {
            slot: self,
            _lock: file,
        })
    }
}

/// An entry whose lock this process holds: the only way to change it.
#[derive(Debug)]
pub struct Locked<'a> {
    slot: &'a Slot,
    _lock: File,
}

impl Locked<'_> {
    pub fn read(&self) -> Option<Login> {
        self.slot.read()
    }

    /// Replaces the entry atomically and durably: temp file, fsync, rename, fsync the directory.
    pub fn write(&self, login: &Login) -> io::Result<()> {
        let entry = Entry {
            format: FORMAT,
            login: login.clone(),
        };
        let json = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        let mut temp = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32)
            .open(&self.slot.temp)?;
        // The mode above is subject to the umask only by narrowing; set it exactly anyway.
        temp.set_permissions(fs::Permissions::from_mode(0o600))?;
        temp.write_all(&json)?;
        temp.sync_all()?;
        drop(temp);
        fs::rename(&self.slot.temp, &self.slot.file)?;
        sync_parent(&self.slot.file)
    }

    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_file(&self.slot.file) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => sync_parent(&self.slot.file),
        }
    }
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

fn remove_if_present(path: &Path) {
    if let Err(err) = fs::remove_file(path)
        && err.kind() != io::ErrorKind::NotFound
    {
        debug!("cannot remove {}: {err}", path.display());
    }
}

/// Reads one entry, refusing to follow a symlink or block on a FIFO.
fn read_entry(path: &Path) -> Option<Login> {
    let result = (|| -> io::Result<Vec<u8>> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
            .open(path)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            return Err(io::Error::other("too large"));
        }
        Ok(bytes)
    })();
    let bytes = match result {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
        Err(err) => {
            debug!("ignoring cache entry {}: {err}", path.display());
            return None;
        }
    };
    match serde_json::from_slice::<Entry>(&bytes) {
        Ok(entry) if entry.format == FORMAT => Some(entry.login),
        Ok(entry) => {
            debug!(
                "ignoring cache entry {}: format {} is not {FORMAT}",
                path.display(),
                entry.format
            );
            None
        }
        // Only the position: serde_json's message can quote a value, and values here are secrets.
        Err(err) => {
            debug!(
                "ignoring cache entry {}: not an entry ({:?} at line {}, column {})",
                path.display(),
                err.classify(),
                err.line(),
                err.column()
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(expires_at: u64) -> Login {
        Login {
            registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
            username: "AWS".into(),
            secret: Secret::new("pw".into()),
            expires_at,
        }
    }

    fn region(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    fn identity() -> IdentitySource {
        IdentitySource {
            key: "profile\ndev".into(),
            description: "profile 'dev'".into(),
        }
    }

    #[test]
    fn freshness_honours_the_margin_and_never_serves_expired() {
        let margin = Duration::from_secs(600);
        let entry = login(10_000);
        assert_eq!(entry.freshness(9_399, margin), Freshness::Fresh);
        assert_eq!(entry.freshness(9_400, margin), Freshness::Aging);
        assert_eq!(entry.freshness(9_999, margin), Freshness::Aging);
        assert_eq!(entry.freshness(10_000, margin), Freshness::Expired);
        assert_eq!(entry.freshness(99_999, margin), Freshness::Expired);
    }

    #[test]
    fn write_then_read_round_trips_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/cache");
        let cache = Cache::open(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let slot = cache.login_slot(&region("us-east-1"), &identity());
        assert_eq!(slot.read(), None);
        slot.lock(Duration::from_secs(1))
            .unwrap()
            .write(&login(5))
            .unwrap();
        assert_eq!(slot.read(), Some(login(5)));
        assert_eq!(fs::metadata(&slot.file).unwrap().mode() & 0o777, 0o600);
        assert!(!slot.temp.exists());
        assert_eq!(
            cache
                .entries()
                .into_iter()
                .map(|(_, l)| l)
                .collect::<Vec<_>>(),
            vec![login(5)]
        );
    }

    #[test]
    fn unreadable_entries_read_as_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(tmp.path()).unwrap();
        let slot = cache.login_slot(&region("us-east-1"), &identity());
        let good = serde_json::to_string(&Entry {
            format: FORMAT,
            login: login(5),
        })
        .unwrap();
        for bad in [
            String::new(),
            good[..good.len() / 2].to_string(),
            "garbage\u{0}\u{1}".into(),
            good.replace("\"format\":1", "\"format\":2"),
            "{\"auths\":{}}".into(),
            "[1,2,3]".into(),
            "x".repeat(100_000),
        ] {
            fs::write(&slot.file, &bad).unwrap();
            assert_eq!(slot.read(), None, "{:?}", &bad[..bad.len().min(40)]);
        }
        fs::write(&slot.file, &good).unwrap();
        assert_eq!(slot.read(), Some(login(5)));
    }

    #[test]
    fn identities_and_regions_get_their_own_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(tmp.path()).unwrap();
        let other = IdentitySource {
            key: "profile\nprod".into(),
            description: String::new(),
        };
        let a = cache.login_slot(&region("us-east-1"), &identity()).file;
        assert_ne!(a, cache.login_slot(&region("us-east-1"), &other).file);
        assert_ne!(a, cache.login_slot(&region("eu-west-1"), &identity()).file);
        assert_eq!(a, cache.login_slot(&region("us-east-1"), &identity()).file);
    }

    #[test]
    fn a_second_locker_waits_then_gives_up() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(tmp.path()).unwrap();
        let slot = cache.login_slot(&region("us-east-1"), &identity());
        let held = slot.lock(Duration::from_secs(1)).unwrap();
        let err = slot.lock(Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        drop(held);
        assert!(slot.lock(Duration::from_millis(50)).is_ok());
    }

    #[test]
    fn refuses_unsafe_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let refusal = |dir: &Path| Cache::open(dir).unwrap_err().to_string();
        assert!(refusal(&link).ends_with("it is a symbolic link"));

        fs::set_permissions(&real, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(refusal(&real).ends_with("it is writable by group or others"));

        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(refusal(&file).ends_with("it is not a directory"));

        fs::set_permissions(&real, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(Cache::open(&real).is_ok());
        assert_eq!(fs::metadata(&real).unwrap().mode() & 0o777, 0o700);
    }
}
