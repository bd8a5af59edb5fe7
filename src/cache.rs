//! The per-user login cache: one small JSON file per entry, replaced atomically, written only
//! under that entry's exclusive OS lock.
//!
//! Readers take no lock: a file is only ever replaced whole by `rename`, so a reader sees the
//! old entry or the new one. Anything unreadable (missing, truncated, garbage, another format,
//! a symlink, a FIFO) reads as "no entry" and is replaced by the next write.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use crate::config::IdentitySource;
use crate::error::{Error, Result};
use crate::private_dir::{Access, PrivateDir};
use crate::registry::Region;
use crate::secret::Secret;

/// Bumped whenever the file layout changes incompatibly; other values read as "no entry".
const FORMAT: u32 = 1;
/// How long a Lightsail registry login lasts (12 h after creation); no login lives longer.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// How far a login's expiry may lie beyond `LOGIN_LIFETIME` from now, for clocks that differ a
/// little from AWS's. Further ahead means this machine's clock went back since it was written.
pub const CLOCK_SLACK: Duration = Duration::from_secs(10 * 60);
/// How long after expiring an entry is kept before a miss removes it: long enough to say what
/// happened in a debug log or `doctor`, short enough that keys rotated daily do not pile up.
pub const KEEP_EXPIRED: Duration = Duration::from_secs(24 * 60 * 60);
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

/// What one cache entry holds: a login, and the hosts recently confirmed not to be its registry
/// (host to the Unix second until which that is believed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub login: Login,
    pub not_ours: BTreeMap<String, u64>,
}

impl Entry {
    /// Whether `host` was confirmed not to be this login's registry, and still is at `now`.
    pub fn not_ours(&self, host: &str, now: u64) -> bool {
        self.not_ours.get(host).is_some_and(|&until| now < until)
    }
}

impl From<Login> for Entry {
    fn from(login: Login) -> Entry {
        Entry {
            login,
            not_ours: BTreeMap::new(),
        }
    }
}

/// The file: the login nested under a format number (not flattened: serde's flatten cannot
/// read numbers with serde_json's `arbitrary_precision`, which keeps Docker's config exact).
/// `not_ours` was added without a format change: older readers ignore it.
#[derive(Serialize, Deserialize)]
struct EntryFile {
    format: u32,
    login: Login,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    not_ours: BTreeMap<String, u64>,
}

/// How a cached login may be used at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Outside the refresh margin: use it.
    Fresh,
    /// Inside the margin: refresh it, but it may still be served if the refresh fails.
    Aging,
    /// Expired, or stale: its expiry lies further ahead than any login lives, so the clock went
    /// back since it was written and its real age is unknown.
    Expired,
}

impl Login {
    pub fn freshness(&self, now: u64, margin: Duration) -> Freshness {
        let longest = LOGIN_LIFETIME + CLOCK_SLACK;
        if now >= self.expires_at || self.expires_at - now > longest.as_secs() {
            Freshness::Expired
        } else if now + margin.as_secs() >= self.expires_at {
            Freshness::Aging
        } else {
            Freshness::Fresh
        }
    }
}

/// What the cache holds, for `doctor`: readable entries, and how many of them are expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Census {
    pub entries: usize,
    pub expired: usize,
}

/// A cache directory that passed the safety checks (`PrivateDir`), used through what was checked.
#[derive(Debug)]
pub struct Cache {
    dir: PrivateDir,
}

impl Cache {
    /// Opens the cache directory, creating it (private) if it is missing. One that is not the
    /// user's own and private is refused, saying why, and left exactly as it is: callers that only
    /// read go on without a cache rather than trust, expose or change someone else's files.
    pub fn open(dir: &Path) -> Result<Cache> {
        let dir = PrivateDir::open(dir).map_err(|reason| Error::CacheRefused {
            dir: dir.to_path_buf(),
            reason,
        })?;
        Ok(Cache { dir })
    }

    /// `open`, for callers that can do without a cache: a refusal is logged, not returned.
    pub fn open_or_log(dir: Option<&Path>) -> Option<Cache> {
        match Cache::open(dir?) {
            Ok(cache) => Some(cache),
            Err(err) => {
                warn!("not using cache dir: {err}");
                None
            }
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The entry for logins fetched from the API in `region` with `identity`.
    pub fn login_slot(&self, region: &Region, identity: &IdentitySource) -> Slot<'_> {
        let hash = Sha256::digest(identity.key.as_bytes());
        let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
        self.slot(&format!("login-{region}-{hex}"))
    }

    /// The entry for credentials that `docker login` stored for `host`.
    pub fn stored_slot(&self, host: &str) -> Slot<'_> {
        self.slot(&format!("stored-{host}"))
    }

    fn slot(&self, name: &str) -> Slot<'_> {
        Slot {
            cache: self,
            file: format!("{name}.json"),
            temp: format!(".{name}.json.tmp"),
            lock: format!("{name}.lock"),
        }
    }

    /// Every readable entry, stored or fetched, with its slot.
    pub fn entries(&self) -> Vec<(Slot<'_>, Entry)> {
        self.dir
            .names()
            .into_iter()
            .filter_map(|name| {
                let stem = name.strip_suffix(".json")?;
                if !(stem.starts_with("login-") || stem.starts_with("stored-")) {
                    return None;
                }
                let slot = self.slot(stem);
                let entry = slot.read_entry()?;
                Some((slot, entry))
            })
            .collect()
    }

    /// How many readable entries the cache holds at `now`, and how many of them cannot be
    /// served (expired, or stale after the clock went back).
    pub fn census(&self, now: u64) -> Census {
        let entries = self.entries();
        let expired = entries
            .iter()
            .filter(|(_, entry)| entry.login.freshness(now, Duration::ZERO) == Freshness::Expired)
            .count();
        Census {
            entries: entries.len(),
            expired,
        }
    }

    /// Removes the entries that expired more than `KEEP_EXPIRED` before `now` (logins of access
    /// keys long rotated away), each under its lock, lock file included. An entry whose lock is
    /// held is left alone: its holder is about to replace it. Returns how many were removed.
    pub fn remove_long_expired(&self, now: u64) -> usize {
        let long_expired =
            |entry: &Entry| now.saturating_sub(entry.login.expires_at) > KEEP_EXPIRED.as_secs();
        let mut removed = 0;
        for (slot, _) in self
            .entries()
            .into_iter()
            .filter(|(_, entry)| long_expired(entry))
        {
            let locked = match slot.try_lock() {
                Ok(Some(locked)) => locked,
                Ok(None) => continue,
                Err(err) => {
                    debug!("not removing an expired entry: {err}");
                    continue;
                }
            };
            // Read again under the lock: another process may have replaced it meanwhile.
            if !locked
                .read_entry()
                .is_some_and(|entry| long_expired(&entry))
            {
                continue;
            }
            match locked.remove_with_lock() {
                Ok(()) => removed += 1,
                Err(err) => debug!("cannot remove {}: {err}", self.path(&slot.file).display()),
            }
        }
        if removed > 0 {
            debug!("removed {removed} entries expired for over a day");
        }
        removed
    }

    /// `name` in the cache directory, for messages.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The files behind one cache entry: the entry, its temp file and its lock, by name.
#[derive(Debug)]
pub struct Slot<'a> {
    cache: &'a Cache,
    file: String,
    temp: String,
    lock: String,
}

impl Slot<'_> {
    pub fn read(&self) -> Option<Login> {
        self.read_entry().map(|entry| entry.login)
    }

    pub fn read_entry(&self) -> Option<Entry> {
        read_entry(self.cache, &self.file)
    }

    /// Takes this entry's exclusive lock, waiting at most `timeout` for another process to
    /// finish. The OS drops the lock when its holder dies, however it dies.
    pub fn lock(&self, timeout: Duration) -> Result<Locked<'_>> {
        let path = self.cache.path(&self.lock);
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        let mut logged = false;
        let file = loop {
            if let Some(file) = self.lock_once()? {
                break file;
            }
            if !logged {
                debug!("waiting for lock {}", path.display());
                logged = true;
            }
            if started.elapsed() >= timeout {
                return Err(Error::LockTimeout {
                    path,
                    after: timeout,
                });
            }
            std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
            pause = (pause * 2).min(Duration::from_millis(20));
        };
        Ok(self.locked(file))
    }

    /// Takes this entry's lock if it is free now, without waiting: `None` if another holds it.
    pub fn try_lock(&self) -> Result<Option<Locked<'_>>> {
        Ok(self.lock_once()?.map(|file| self.locked(file)))
    }

    /// One attempt at the lock: the locked file, or `None` if another process holds it. A lock
    /// file unlinked by `remove_with_lock` while this process waited on it is no one's lock any
    /// more: the attempt is made again on the file now at its name.
    fn lock_once(&self) -> Result<Option<File>> {
        let path = || self.cache.path(&self.lock);
        loop {
            let file = self
                .cache
                .dir
                .open_file(&self.lock, Access::Lock)
                .map_err(|err| Error::io("cannot open lock file", path(), err))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Ok(None),
                Err(fs::TryLockError::Error(err)) => {
                    return Err(Error::io("cannot lock", path(), err));
                }
            }
            if self.cache.dir.is_linked(&self.lock, &file) {
                return Ok(Some(file));
            }
        }
    }

    fn locked(&self, file: File) -> Locked<'_> {
        debug!("acquired lock {}", self.cache.path(&self.lock).display());
        // A temp file here was left by a holder that died mid-write: nobody else writes it.
        if let Err(err) = self.cache.dir.remove_file(&self.temp)
            && err.kind() != io::ErrorKind::NotFound
        {
            debug!(
                "cannot remove {}: {err}",
                self.cache.path(&self.temp).display()
            );
        }
        Locked {
            slot: self,
            _lock: file,
        }
    }
}

/// An entry whose lock this process holds: the only way to change it.
#[derive(Debug)]
pub struct Locked<'a> {
    slot: &'a Slot<'a>,
    _lock: File,
}

impl Locked<'_> {
    pub fn read(&self) -> Option<Login> {
        self.slot.read()
    }

    pub fn read_entry(&self) -> Option<Entry> {
        self.slot.read_entry()
    }

    pub fn write(&self, login: &Login) -> io::Result<()> {
        self.write_entry(&Entry::from(login.clone()))
    }

    /// Replaces the entry atomically and durably: temp file, fsync, rename, fsync the directory.
    pub fn write_entry(&self, entry: &Entry) -> io::Result<()> {
        let file = EntryFile {
            format: FORMAT,
            login: entry.login.clone(),
            not_ours: entry.not_ours.clone(),
        };
        let json = serde_json::to_vec(&file)?;
        let dir = &self.slot.cache.dir;
        let mut temp = dir.open_file(&self.slot.temp, Access::Replace)?;
        temp.write_all(&json)?;
        temp.sync_all()?;
        drop(temp);
        dir.rename(&self.slot.temp, &self.slot.file)?;
        dir.sync()
    }

    pub fn remove(&self) -> io::Result<()> {
        let dir = &self.slot.cache.dir;
        match dir.remove_file(&self.slot.file) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => dir.sync(),
        }
    }

    /// Removes the entry and, on Unix, its lock file too, while holding that lock: a process
    /// waiting on the unlinked file sees it is gone and locks the new one (`lock_once`).
    /// Windows keeps the lock file: it cannot tell an unlinked file from a linked one. Not made
    /// durable (no folder fsync): an expired entry back after a crash is removed again.
    pub fn remove_with_lock(self) -> io::Result<()> {
        let dir = &self.slot.cache.dir;
        let names = [&self.slot.file, &self.slot.lock];
        let names = if cfg!(unix) { &names[..] } else { &names[..1] };
        for name in names {
            match dir.remove_file(name) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Reads one entry, refusing to follow a symlink or block on a FIFO.
fn read_entry(cache: &Cache, name: &str) -> Option<Entry> {
    let path = cache.path(name);
    let result = (|| -> io::Result<Vec<u8>> {
        let file = cache.dir.open_file(name, Access::Read)?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        // Room for the whole file and the end: one read on the hit path.
        let mut bytes = Vec::with_capacity(metadata.len().min(MAX_ENTRY_BYTES) as usize + 1);
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
    match serde_json::from_slice::<EntryFile>(&bytes) {
        Ok(file) if file.format == FORMAT => Some(Entry {
            login: file.login,
            not_ours: file.not_ours,
        }),
        Ok(file) => {
            debug!(
                "ignoring cache entry {}: format {} is not {FORMAT}",
                path.display(),
                file.format
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
    #[cfg(unix)]
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

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
    fn an_expiry_beyond_any_login_life_is_stale() {
        let longest = (LOGIN_LIFETIME + CLOCK_SLACK).as_secs();
        let now = 1_800_000_000;
        let margin = Duration::from_secs(600);
        assert_eq!(
            login(now + longest).freshness(now, margin),
            Freshness::Fresh
        );
        assert_eq!(
            login(now + longest + 1).freshness(now, margin),
            Freshness::Expired
        );
        assert_eq!(login(u64::MAX).freshness(now, margin), Freshness::Expired);
        // Once the clock is back where it was, the same entry is fresh again.
        assert_eq!(
            login(now + longest + 1).freshness(now + 1, margin),
            Freshness::Fresh
        );
    }

    #[test]
    fn removing_long_expired_entries_spares_the_recent_and_the_locked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let cache = Cache::open(&dir).unwrap();
        let now = 1_800_000_000;
        let day = KEEP_EXPIRED.as_secs();
        let key = |n: usize| IdentitySource {
            key: format!("key {n}"),
            description: String::new(),
        };
        let region = region("us-east-1");
        // As `write_entry` leaves them, without its thousands of fsyncs.
        let write = |n: usize, expires_at: u64| {
            let slot = cache.login_slot(&region, &key(n));
            let file = EntryFile {
                format: FORMAT,
                login: login(expires_at),
                not_ours: BTreeMap::new(),
            };
            fs::write(cache.path(&slot.file), serde_json::to_vec(&file).unwrap()).unwrap();
            fs::write(cache.path(&slot.lock), "").unwrap();
        };
        // A thousand, and their speed, are tests/suite/cache.rs's.
        for n in 0..100 {
            write(n, now - day - 1 - n as u64);
        }
        write(100, now - day); // expired exactly a day ago: kept
        write(101, now + 60); // fresh: kept
        write(102, now - 2 * day); // old, but its lock is held: kept
        let stored = cache.stored_slot("old.example");
        stored
            .lock(Duration::ZERO)
            .unwrap()
            .write(&login(now - 2 * day))
            .unwrap();
        let held_slot = cache.login_slot(&region, &key(102));
        let held = held_slot.lock(Duration::ZERO).unwrap();
        assert_eq!(
            cache.census(now),
            Census {
                entries: 104,
                expired: 103
            }
        );

        assert_eq!(cache.remove_long_expired(now), 101);
        assert_eq!(
            cache.census(now),
            Census {
                entries: 3,
                expired: 2
            }
        );
        let mut names = fs::read_dir(&dir)
            .unwrap()
            .map(|item| item.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>();
        names.sort();
        assert_eq!(names.len(), 6, "three entries and their locks: {names:?}");
        drop(held);
        assert_eq!(cache.remove_long_expired(now), 1);
        assert_eq!(cache.remove_long_expired(now), 0);
    }

    #[test]
    #[cfg(unix)]
    fn a_lock_file_unlinked_by_its_holder_is_nobodys_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        let slot = cache.login_slot(&region("us-east-1"), &identity());
        let holder = slot.lock(Duration::ZERO).unwrap();
        holder.write(&login(5)).unwrap();
        // Opened by a waiter before the holder unlinks it.
        let waiter = cache.dir.open_file(&slot.lock, Access::Lock).unwrap();
        assert!(cache.dir.is_linked(&slot.lock, &waiter));
        holder.remove_with_lock().unwrap();
        assert!(!cache.dir.is_linked(&slot.lock, &waiter));
        // The next locker gets the file at the name, and excludes everyone else.
        let next = slot.lock(Duration::ZERO).unwrap();
        assert!(slot.try_lock().unwrap().is_none());
        let again = cache.dir.open_file(&slot.lock, Access::Lock).unwrap();
        assert!(cache.dir.is_linked(&slot.lock, &again));
        assert!(!cache.dir.is_linked(&slot.lock, &waiter));
        drop(next);
    }

    #[test]
    fn write_then_read_round_trips_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/cache");
        let cache = Cache::open(&dir).unwrap();
        #[cfg(unix)]
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let slot = cache.login_slot(&region("us-east-1"), &identity());
        assert_eq!(slot.read(), None);
        slot.lock(Duration::from_secs(1))
            .unwrap()
            .write(&login(5))
            .unwrap();
        assert_eq!(slot.read(), Some(login(5)));
        #[cfg(unix)]
        assert_eq!(
            fs::metadata(cache.path(&slot.file)).unwrap().mode() & 0o777,
            0o600
        );
        assert!(!cache.path(&slot.temp).exists());
        assert_eq!(
            cache
                .entries()
                .into_iter()
                .map(|(_, entry)| entry)
                .collect::<Vec<_>>(),
            vec![Entry::from(login(5))]
        );
    }

    #[test]
    fn hosts_not_ours_are_kept_with_the_login_until_their_time() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        let slot = cache.login_slot(&region("us-east-1"), &identity());
        let mut entry = Entry::from(login(5_000));
        entry.not_ours.insert("other".into(), 1_000);
        slot.lock(Duration::from_secs(1))
            .unwrap()
            .write_entry(&entry)
            .unwrap();
        let read = slot.read_entry().unwrap();
        assert_eq!(read, entry);
        assert!(read.not_ours("other", 999));
        assert!(!read.not_ours("other", 1_000));
        assert!(!read.not_ours("else", 0));
        // An entry written before `not_ours` existed reads with none.
        let old =
            r#"{"format":1,"login":{"registry":"r","username":"u","secret":"s","expires_at":9}}"#;
        fs::write(cache.path(&slot.file), old).unwrap();
        assert!(slot.read_entry().unwrap().not_ours.is_empty());
    }

    #[test]
    fn unreadable_entries_read_as_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        let slot = cache.login_slot(&region("us-east-1"), &identity());
        let good = serde_json::to_string(&EntryFile {
            format: FORMAT,
            login: login(5),
            not_ours: BTreeMap::new(),
        })
        .unwrap();
        let file = cache.path(&slot.file);
        for bad in [
            String::new(),
            good[..good.len() / 2].to_string(),
            "garbage\u{0}\u{1}".into(),
            good.replace("\"format\":1", "\"format\":2"),
            "{\"auths\":{}}".into(),
            "[1,2,3]".into(),
            "x".repeat(100_000),
        ] {
            fs::write(&file, &bad).unwrap();
            assert_eq!(slot.read(), None, "{:?}", &bad[..bad.len().min(40)]);
        }
        fs::write(&file, &good).unwrap();
        assert_eq!(slot.read(), Some(login(5)));
    }

    #[test]
    fn identities_and_regions_get_their_own_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
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
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        let slot = cache.login_slot(&region("us-east-1"), &identity());
        let held = slot.lock(Duration::from_secs(1)).unwrap();
        let err = slot.lock(Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        drop(held);
        assert!(slot.lock(Duration::from_millis(50)).is_ok());
    }

    #[test]
    #[cfg(unix)]
    fn refuses_unsafe_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let refusal = |dir: &Path| Cache::open(dir).unwrap_err().to_string();
        assert!(refusal(&link).ends_with("it is a symbolic link"));

        fs::set_permissions(&real, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(refusal(&real).ends_with(&format!(
            "it is writable by group or others: fix it with `chmod 700 {}`",
            real.display()
        )));

        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(refusal(&file).ends_with("it is not a directory"));

        // Readable by others: refused, and its mode left as it is (it may be $HOME).
        fs::set_permissions(&real, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(refusal(&real).contains("it is readable by group or others (mode 755)"));
        assert_eq!(fs::metadata(&real).unwrap().mode() & 0o777, 0o755);

        fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(Cache::open(&real).is_ok());
    }
}
