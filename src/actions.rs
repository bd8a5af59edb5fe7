//! The protocol actions (`get`, `store`, `erase`, `list`): plain, synchronous decisions between
//! the cache and the API. The clock is read by the caller and the API call is passed in, so every
//! decision is testable without either.
//!
//! The hit path of `get` is deliberately tiny: parse the host, read one or two small files,
//! compare a timestamp. The async runtime, AWS config and credentials are touched only on a miss.

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::debug;

use crate::bindings;
use crate::cache::{CLOCK_SLACK, Cache, Entry, Freshness, Login};
use crate::config::Config;
use crate::error::{Error, Result, one_line};
use crate::lightsail::fetch_login;
use crate::registry::{Region, Registry};
use crate::secret::Secret;

pub use crate::cache::LOGIN_LIFETIME;
/// How long a host confirmed not to be the account's registry is believed so: a misconfigured
/// host costs at most one API call per this long.
pub const NOT_OURS_FOR: Duration = Duration::from_secs(5 * 60);

/// `get` at `now` (Unix seconds): the credentials for `server_url`, or `NotFound` when the host
/// is not a Lightsail registry of the caller's account.
pub fn get(config: &Config, server_url: &str, now: u64) -> Result<Login> {
    // A host bound to an AWS profile in the helper's configuration file uses that profile only.
    let bound = bindings::config_for(config, server_url)?;
    let config = bound.as_ref().unwrap_or(config);
    get_with(config, server_url, now, |region| {
        fetch_login(config, region)
    })
}

/// `get` with the API call passed in, so the decisions can be tested without a network.
///
/// What `docker login` stored answers first only while it is fresh and its password says when
/// it expires. One of unknown age (a password that does not say) gives way to the account's
/// own login for the host; it is served, to its end, only when the account cannot answer for
/// the host: the API failing, or saying the host is not the account's registry.
fn get_with(
    config: &Config,
    server_url: &str,
    now: u64,
    fetch: impl FnOnce(&Region) -> Result<Login>,
) -> Result<Login> {
    let registry = Registry::parse(server_url).ok_or(Error::NotFound)?;
    let cache = Cache::open_or_log(config.cache_dir.as_deref());
    let stored = cache
        .as_ref()
        .and_then(|cache| cache.stored_slot(&registry.host).read())
        .filter(|login| login.registry == registry.host)
        .map(|login| StoredLogin::new(login, now))
        .filter(|stored| stored.login.freshness(now, Duration::ZERO) != Freshness::Expired);
    if let Some(stored) = &stored
        && stored.expiry_known
        && stored.login.freshness(now, config.refresh_margin) == Freshness::Fresh
    {
        debug!("serving credentials stored by `docker login`");
        return Ok(stored.login.clone());
    }
    let account = match &cache {
        Some(cache) => account_login(config, cache, &registry, now, fetch),
        None => fetch(&registry.region).and_then(|login| ours(login, &registry)),
    };
    match (account, stored) {
        (Err(err), Some(stored)) => {
            debug!("serving the unexpired credentials stored by `docker login` ({err})");
            Ok(stored.login)
        }
        (answer, _) => answer,
    }
}

/// A login that `docker login` stored, with its expiry taken from its password where the
/// password says.
struct StoredLogin {
    login: Login,
    expiry_known: bool,
}

impl StoredLogin {
    fn new(mut login: Login, now: u64) -> StoredLogin {
        let expiry = password_expiry(login.secret.expose(), now);
        if let Some(expiry) = expiry {
            login.expires_at = login.expires_at.min(expiry);
        }
        StoredLogin {
            login,
            expiry_known: expiry.is_some(),
        }
    }
}

/// When an ECR registry password stops working, read from the password itself, or `None` when it
/// does not say (or says something implausible at `now`).
///
/// ECR passwords (and Lightsail's registry is ECR underneath) are standard base64 of a JSON
/// object whose `expiration` is that Unix second. Public sources: AWS's own
/// aws-controllers-k8s/code-generator, `scripts/lib/common.sh` (`is_public_ecr_logged_in`:
/// base64-decodes the password of a `docker login` to ECR Public and compares `.expiration` to
/// `date +%s`); the post "Understanding AWS ECR Credentials and Expiration"
/// (ajinkyak423.hashnode.dev) says the same of private ECR's; the API reference's
/// `AuthorizationData` says a password is valid for 12 hours. No source shows a Lightsail one, so
/// a password of another shape is simply of unknown age. Nothing else is read from it, and it is
/// never logged; a value beyond a login's lifetime from `now` is not taken (another unit, or a
/// clock gone back).
fn password_expiry(password: &str, now: u64) -> Option<u64> {
    // ECR passwords are about 2 KB; anything much bigger is not one.
    if password.len() > 16 * 1024 {
        return None;
    }
    let json = aws_smithy_types::base64::decode(password).ok()?;
    let token: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&json).ok()?;
    let expiry = token.get("expiration")?.as_u64()?;
    let latest = now + (LOGIN_LIFETIME + CLOCK_SLACK).as_secs();
    (expiry <= latest).then_some(expiry)
}

/// The account's login for `registry`, or `NotFound` when the host is not the account's
/// Lightsail registry. A fresh cached login answers for its own host; for another host it is
/// asked again once, under the lock, so that a switch to another account (same profile, new
/// keys) works at once, and the answer "not ours" is remembered for `NOT_OURS_FOR`.
fn account_login(
    config: &Config,
    cache: &Cache,
    registry: &Registry,
    now: u64,
    fetch: impl FnOnce(&Region) -> Result<Login>,
) -> Result<Login> {
    let answers = |entry: &Entry| {
        entry.login.registry == registry.host || entry.not_ours(&registry.host, now)
    };
    let remember = |entry: &mut Entry, current: Option<Entry>| {
        // What was found about other hosts still holds while the account's registry is the same.
        if let Some(current) =
            current.filter(|current| current.login.registry == entry.login.registry)
        {
            entry.not_ours = current.not_ours;
            entry.not_ours.retain(|_, until| now < *until);
        }
        if entry.login.registry != registry.host {
            entry
                .not_ours
                .insert(registry.host.clone(), now + NOT_OURS_FOR.as_secs());
        }
    };
    let entry = region_entry(
        config,
        cache,
        &registry.region,
        now,
        answers,
        fetch,
        remember,
    )?;
    ours(entry.login, registry)
}

/// The account's registry login for `region`, whatever its host (`push` and `configure` learn
/// the host from it): from the cache while fresh, else fetched under the entry's lock and saved;
/// a held lock and a failing API are handled as `get` handles them.
pub fn region_login(
    config: &Config,
    cache: Option<&Cache>,
    region: &Region,
    now: u64,
    fetch: impl FnOnce(&Region) -> Result<Login>,
) -> Result<Login> {
    let Some(cache) = cache else {
        return fetch(region);
    };
    region_entry(config, cache, region, now, |_| true, fetch, |_, _| {}).map(|entry| entry.login)
}

/// The cache entry of `region`'s login: a fresh one that `answers`, else one fetched under the
/// entry's lock (`update`d from the one it replaces, then saved). A process that waited for the
/// lock reads the entry again, and uses what the lock holder saved. When the lock stays held
/// past the lock timeout or the API fails, an unexpired entry is served to its end; else the
/// error. The lock cannot be taken at all (a read-only cache): the API answers, nothing saved.
fn region_entry(
    config: &Config,
    cache: &Cache,
    region: &Region,
    now: u64,
    answers: impl Fn(&Entry) -> bool,
    fetch: impl FnOnce(&Region) -> Result<Login>,
    update: impl FnOnce(&mut Entry, Option<Entry>),
) -> Result<Entry> {
    let margin = config.refresh_margin;
    let usable =
        |entry: &Entry| entry.login.freshness(now, margin) == Freshness::Fresh && answers(entry);
    let slot = cache.login_slot(region, &config.identity);
    let cached = slot.read_entry();
    if let Some(entry) = cached.clone().filter(usable) {
        debug!("cache hit in {region}");
        return Ok(entry);
    }
    let fallback = |err: Error, entry: Option<Entry>| match entry {
        Some(entry) if entry.login.freshness(now, margin) != Freshness::Expired => {
            debug!("refresh failed ({err}); answering from the unexpired cached login");
            Ok(entry)
        }
        _ => Err(err),
    };
    let locked = match slot.lock(config.lock_timeout) {
        Ok(locked) => Some(locked),
        Err(err @ Error::LockTimeout { .. }) => return fallback(err, slot.read_entry().or(cached)),
        Err(err) => {
            debug!("going on without the cache lock: {err}");
            None
        }
    };
    let current = locked
        .as_ref()
        .and_then(|locked| locked.read_entry())
        .or(cached);
    if locked.is_some()
        && let Some(entry) = current.clone().filter(usable)
    {
        debug!("another process fetched the login while this one waited");
        return Ok(entry);
    }
    debug!("cache miss in {region}");
    let answer = match fetch(region) {
        Ok(login) => {
            let mut entry = Entry::from(login);
            update(&mut entry, current);
            if let Some(locked) = &locked
                && let Err(err) = locked.write_entry(&entry)
            {
                debug!(
                    "could not save the login in {}: {err}",
                    cache.dir().display()
                );
            }
            Ok(entry)
        }
        Err(err) => fallback(err, current),
    };
    // A miss is rare and slow anyway: the time to tidy up after keys long rotated away, once
    // the lock is released (nobody waits for this).
    drop(locked);
    cache.remove_long_expired(now);
    answer
}

/// The account's Lightsail login answers for its own registry host only: any other ECR host
/// in the region (the user's own ECR registry, say) is not ours.
fn ours(login: Login, registry: &Registry) -> Result<Login> {
    if login.registry == registry.host {
        Ok(login)
    } else {
        debug!(
            "{} is not this account's Lightsail registry ({})",
            registry.host, login.registry
        );
        Err(Error::NotFound)
    }
}

/// `store` at `now`: keeps what `docker login` was given for a Lightsail/ECR host, until its
/// password expires where it says, else for a login's lifetime.
pub fn store(
    config: &Config,
    server_url: &str,
    username: &str,
    secret: &str,
    now: u64,
) -> Result<()> {
    let registry =
        Registry::parse(server_url).ok_or_else(|| Error::NotARegistryHost(one_line(server_url)))?;
    if secret.is_empty() {
        return Err(Error::MissingSecret);
    }
    let cache = Cache::open(config.cache_dir.as_deref().ok_or(Error::NoCacheDir)?)?;
    let slot = cache.stored_slot(&registry.host);
    let locked = slot.lock(config.lock_timeout)?;
    // A password that says when it expires is kept until then; one that does not, for a
    // login's lifetime (and then gives way to the account's own login: `get_with`).
    let lifetime = now + LOGIN_LIFETIME.as_secs();
    let login = Login {
        registry: registry.host,
        username: username.to_string(),
        secret: Secret::new(secret.to_string()),
        expires_at: password_expiry(secret, now).map_or(lifetime, |expiry| expiry.min(lifetime)),
    };
    locked
        .write(&login)
        .map_err(|err| Error::io("cannot save credentials in", cache.dir(), err))
}

/// `erase`: forgets everything held for the host, stored or fetched. Nothing held is fine.
pub fn erase(config: &Config, server_url: &str) -> Result<()> {
    let Some(registry) = Registry::parse(server_url) else {
        return Ok(());
    };
    let Some(cache) = Cache::open_or_log(config.cache_dir.as_deref()) else {
        return Ok(());
    };
    let failed = |err| Error::io("cannot remove credentials from", cache.dir(), err);
    for (slot, entry) in cache.entries() {
        if entry.login.registry == registry.host {
            slot.lock(config.lock_timeout)?.remove().map_err(failed)?;
        } else if entry.not_ours.contains_key(&registry.host) {
            // Forget that it was found not ours, too: the next `get` asks again.
            let locked = slot.lock(config.lock_timeout)?;
            if let Some(mut entry) = locked.read_entry() {
                entry.not_ours.remove(&registry.host);
                locked.write_entry(&entry).map_err(failed)?;
            }
        }
    }
    Ok(())
}

/// `list` at `now`: the registries held and unexpired, with their usernames. No API call, no
/// secret.
pub fn list(config: &Config, now: u64) -> BTreeMap<String, String> {
    let Some(cache) = Cache::open_or_log(config.cache_dir.as_deref()) else {
        return BTreeMap::new();
    };
    cache
        .entries()
        .into_iter()
        .map(|(_, entry)| entry.login)
        .filter(|login| login.freshness(now, Duration::ZERO) != Freshness::Expired)
        .map(|login| (login.registry, login.username))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::KEEP_EXPIRED;
    use crate::config::IdentitySource;
    use std::cell::Cell;

    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    /// The tests' clock: decisions never read the real one.
    const NOW: u64 = 1_800_000_000;

    fn config(dir: &std::path::Path) -> Config {
        Config::for_tests(dir)
    }

    fn login(secret: &str, expires_in: u64) -> Login {
        Login {
            registry: HOST.into(),
            username: "AWS".into(),
            secret: Secret::new(secret.into()),
            expires_at: NOW + expires_in,
        }
    }

    fn unreachable(region: &Region) -> Result<Login> {
        Err(Error::Unreachable {
            region: region.clone(),
            reason: "test".into(),
        })
    }

    #[test]
    fn foreign_hosts_never_reach_the_api() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        for host in ["docker.io", "ghcr.io", "localhost:5000", ""] {
            let err =
                get_with(&config, host, NOW, |_| panic!("API called for {host}")).unwrap_err();
            assert!(matches!(err, Error::NotFound));
        }
    }

    #[test]
    fn one_fetch_then_hits_and_another_host_is_asked_once_then_remembered_not_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        let calls = Cell::new(0);
        let fetch = |region: &Region| {
            assert_eq!(region.as_str(), "us-east-1");
            calls.set(calls.get() + 1);
            Ok(login("one", 43_200))
        };
        for _ in 0..2 {
            let served = get_with(&config, HOST, NOW, fetch).unwrap();
            assert_eq!(served.secret.expose(), "one");
        }
        assert_eq!(calls.get(), 1);
        let own_ecr = "999999999999.dkr.ecr.us-east-1.amazonaws.com";
        for _ in 0..2 {
            let answer = get_with(&config, own_ecr, NOW + 10, fetch);
            assert!(matches!(answer, Err(Error::NotFound)));
        }
        assert_eq!(calls.get(), 2, "asked once, then remembered");
        let later = NOW + 10 + NOT_OURS_FOR.as_secs();
        assert!(matches!(
            get_with(&config, own_ecr, later, fetch),
            Err(Error::NotFound)
        ));
        assert_eq!(calls.get(), 3, "remembered for NOT_OURS_FOR only");
        // The login's own host is still a hit.
        get_with(&config, HOST, later, fetch).unwrap();
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn after_an_account_switch_the_new_registry_works_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        get_with(&config, HOST, NOW, |_| Ok(login("old account", 43_200))).unwrap();
        let new_host = "210987654321.dkr.ecr.us-east-1.amazonaws.com";
        let new_login = Login {
            registry: new_host.into(),
            ..login("new account", 43_200)
        };
        let served = get_with(&config, new_host, NOW + 1, |_| Ok(new_login.clone())).unwrap();
        assert_eq!(served.secret.expose(), "new account");
        // The new login is the cached one now: the old account's host is the one asked about.
        let served = get_with(&config, new_host, NOW + 2, |_| panic!("cached")).unwrap();
        assert_eq!(served.secret.expose(), "new account");
    }

    #[test]
    fn erase_forgets_that_a_host_is_not_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        let own_ecr = "999999999999.dkr.ecr.us-east-1.amazonaws.com";
        let calls = Cell::new(0);
        let fetch = |_: &Region| {
            calls.set(calls.get() + 1);
            Ok(login("one", 43_200))
        };
        assert!(get_with(&config, own_ecr, NOW, fetch).is_err());
        assert!(get_with(&config, own_ecr, NOW, fetch).is_err());
        assert_eq!(calls.get(), 1);
        erase(&config, own_ecr).unwrap();
        assert!(get_with(&config, own_ecr, NOW, fetch).is_err());
        assert_eq!(calls.get(), 2, "asked again after erase");
        // The login itself was kept: HOST is still served from the cache.
        get_with(&config, HOST, NOW, |_| panic!("cached")).unwrap();
    }

    #[test]
    fn when_the_api_fails_a_host_of_another_registry_is_not_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        get_with(&config, HOST, NOW, |_| Ok(login("one", 43_200))).unwrap();
        let own_ecr = "999999999999.dkr.ecr.us-east-1.amazonaws.com";
        assert!(matches!(
            get_with(&config, own_ecr, NOW, unreachable),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn aging_login_is_refreshed_or_served_when_refresh_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        get_with(&config, HOST, NOW, |_| Ok(login("old", 600))).unwrap();
        let served = get_with(&config, HOST, NOW, unreachable).unwrap();
        assert_eq!(served.secret.expose(), "old");
        let fresh = get_with(&config, HOST, NOW, |_| Ok(login("new", 43_200))).unwrap();
        assert_eq!(fresh.secret.expose(), "new");
    }

    #[test]
    fn expired_login_is_never_served() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        let mut expired = login("gone", 0);
        expired.expires_at = NOW - 1;
        get_with(&config, HOST, NOW, |_| Ok(expired)).unwrap();
        assert!(matches!(
            get_with(&config, HOST, NOW, unreachable),
            Err(Error::Unreachable { .. })
        ));
    }

    #[test]
    fn stored_credentials_serve_without_the_api_and_erase_forgets_them() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        store(&config, &format!("https://{HOST}"), "AWS", "typed", NOW).unwrap();
        assert_eq!(
            get_with(&config, HOST, NOW, unreachable)
                .unwrap()
                .secret
                .expose(),
            "typed"
        );
        assert_eq!(
            list(&config, NOW).get(HOST).map(String::as_str),
            Some("AWS")
        );
        erase(&config, HOST).unwrap();
        erase(&config, HOST).unwrap();
        assert!(list(&config, NOW).is_empty());
        assert!(get_with(&config, HOST, NOW, unreachable).is_err());
    }

    /// An ECR-shaped password: base64 of JSON saying when it expires (see `password_expiry`).
    fn ecr_password(expiration: u64) -> String {
        let json = format!(
            r#"{{"payload":"opaque","datakey":"opaque","version":"2","type":"DATA_KEY","expiration":{expiration}}}"#
        );
        aws_smithy_types::base64::encode(json)
    }

    #[test]
    fn a_password_says_when_it_expires_only_when_it_is_ecr_shaped_and_plausible() {
        assert_eq!(
            password_expiry(&ecr_password(NOW + 600), NOW),
            Some(NOW + 600)
        );
        assert_eq!(password_expiry(&ecr_password(NOW - 5), NOW), Some(NOW - 5));
        let latest = NOW + (LOGIN_LIFETIME + CLOCK_SLACK).as_secs();
        assert_eq!(password_expiry(&ecr_password(latest), NOW), Some(latest));
        // Milliseconds, or a clock gone back: not taken.
        assert_eq!(password_expiry(&ecr_password(latest + 1), NOW), None);
        assert_eq!(password_expiry(&ecr_password(NOW * 1000), NOW), None);
        for other in [
            "typed",
            "",
            "bm90IGpzb24=", // "not json"
            &aws_smithy_types::base64::encode(r#"{"expiration":"soon"}"#),
            &aws_smithy_types::base64::encode(r#"{"expiration":-1}"#),
            &aws_smithy_types::base64::encode(r#"[1]"#),
            &"QUFB".repeat(10_000),
        ] {
            assert_eq!(password_expiry(other, NOW), None, "{other:.40}");
        }
    }

    #[test]
    fn store_keeps_a_password_until_its_own_expiry() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        let stored = || cache.stored_slot(HOST).read().unwrap().expires_at;
        store(&config, HOST, "AWS", &ecr_password(NOW + 3_600), NOW).unwrap();
        assert_eq!(stored(), NOW + 3_600);
        store(&config, HOST, "AWS", "typed", NOW).unwrap();
        assert_eq!(stored(), NOW + LOGIN_LIFETIME.as_secs());
    }

    #[test]
    fn a_stored_password_that_says_it_expired_is_not_served_and_the_account_login_is() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        // Obtained 11 h before `docker login`: one hour left, whatever `store` assumed.
        let password = ecr_password(NOW + 3_600);
        store(&config, HOST, "AWS", &password, NOW).unwrap();
        let served = get_with(&config, HOST, NOW + 60, |_| panic!("fresh")).unwrap();
        assert_eq!(served.secret.expose(), password);
        let later = NOW + 3_600;
        let served = get_with(&config, HOST, later, |_| Ok(login("api", 43_200))).unwrap();
        assert_eq!(served.secret.expose(), "api");
        assert!(matches!(
            get_with(&config, HOST, later + 1, unreachable),
            Ok(login) if login.secret.expose() == "api"
        ));
    }

    #[test]
    fn a_stored_login_of_unknown_age_gives_way_to_the_account_login() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        store(&config, HOST, "AWS", "typed", NOW).unwrap();
        let calls = Cell::new(0);
        let fetch = |_: &Region| {
            calls.set(calls.get() + 1);
            Ok(login("api", 43_200))
        };
        for at in [NOW, NOW + 60] {
            assert_eq!(
                get_with(&config, HOST, at, fetch).unwrap().secret.expose(),
                "api"
            );
        }
        assert_eq!(calls.get(), 1, "then from the cache");
    }

    #[test]
    fn when_the_account_cannot_answer_a_stored_login_is_served_to_its_end() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        let own_ecr = "999999999999.dkr.ecr.us-east-1.amazonaws.com";
        let not_ours = |_: &Region| Ok(login("lightsail", 43_200));
        for (host, password) in [
            (HOST, "typed".to_string()),
            (own_ecr, ecr_password(NOW + 600)),
        ] {
            store(&config, host, "AWS", &password, NOW).unwrap();
            let expires_at = Cache::open(&tmp.path().join("cache"))
                .unwrap()
                .stored_slot(host)
                .read()
                .unwrap()
                .expires_at;
            // In its last 30 minutes (the refresh margin), and to its very last second.
            for at in [expires_at - 1_000, expires_at - 1] {
                let served = get_with(&config, host, at, unreachable).unwrap();
                assert_eq!(
                    served.secret.expose(),
                    password,
                    "{host} API failing at {at}"
                );
                if host == own_ecr {
                    let served = get_with(&config, host, at, not_ours).unwrap();
                    assert_eq!(served.secret.expose(), password, "{host} not ours at {at}");
                }
            }
            assert!(get_with(&config, host, expires_at, unreachable).is_err());
        }
    }

    #[test]
    fn a_cached_login_expiring_beyond_any_login_life_means_the_clock_went_back() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        // Written when the clock read two days later than it reads now.
        get_with(&config, HOST, NOW + 172_800, |_| {
            Ok(login("future", 172_800 + 43_200))
        })
        .unwrap();
        let served = get_with(&config, HOST, NOW, |_| Ok(login("now", 43_200))).unwrap();
        assert_eq!(served.secret.expose(), "now");
        // Stale is never served, not even when the API fails.
        get_with(&config, HOST, NOW + 172_800, |_| {
            Ok(login("future", 172_800 + 43_200))
        })
        .unwrap();
        assert!(get_with(&config, HOST, NOW, unreachable).is_err());
        // A login of exactly a lifetime plus the slack ahead is still believed.
        let longest = (LOGIN_LIFETIME + CLOCK_SLACK).as_secs();
        get_with(&config, HOST, NOW, |_| Ok(login("edge", longest))).unwrap();
        let served = get_with(&config, HOST, NOW, |_| panic!("cached")).unwrap();
        assert_eq!(served.secret.expose(), "edge");
    }

    #[test]
    fn a_miss_removes_entries_expired_for_over_a_day() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        let old_keys: Vec<IdentitySource> = (0..3)
            .map(|n| IdentitySource {
                key: format!("rotated key {n}"),
                description: String::new(),
            })
            .collect();
        let region = Region::parse("us-east-1").unwrap();
        get_with(&config, HOST, NOW, |_| Ok(login("api", 43_200))).unwrap();
        for (n, identity) in old_keys.iter().enumerate() {
            let mut old = login("old", 0);
            // Expired a day and a second ago, and (the last) just under a day ago.
            old.expires_at = NOW - KEEP_EXPIRED.as_secs() - 1 + n as u64 / 2 * 2;
            cache
                .login_slot(&region, identity)
                .lock(Duration::ZERO)
                .unwrap()
                .write(&old)
                .unwrap();
        }
        // A hit removes nothing...
        get_with(&config, HOST, NOW, |_| panic!("cached")).unwrap();
        assert_eq!(cache.entries().len(), 4);
        // ...a miss removes the two expired for over a day, lock files too.
        get_with(
            &config,
            "999999999999.dkr.ecr.us-east-1.amazonaws.com",
            NOW,
            |_| Ok(login("api", 43_200)),
        )
        .unwrap_err();
        assert_eq!(cache.entries().len(), 2);
        assert!(cache.login_slot(&region, &old_keys[2]).read().is_some());
        let names = std::fs::read_dir(tmp.path().join("cache")).unwrap().count();
        assert_eq!(names, 4, "two entries and their two lock files");
    }

    #[test]
    fn push_and_configure_wait_for_a_held_lock_and_fall_back_as_get_does() {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = config(tmp.path());
        config.lock_timeout = Duration::from_millis(50);
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        let region = Region::parse("us-east-1").unwrap();
        let slot = cache.login_slot(&region, &config.identity);
        let held = slot.lock(Duration::ZERO).unwrap();
        // Nothing cached: the lock timeout is the answer.
        let err =
            region_login(&config, Some(&cache), &region, NOW, |_| panic!("locked")).unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        // The holder saved a login in its refresh margin while this one waited: it is served.
        held.write(&login("aging", 60)).unwrap();
        let served =
            region_login(&config, Some(&cache), &region, NOW, |_| panic!("locked")).unwrap();
        assert_eq!(served.secret.expose(), "aging");
        // And when the API fails with the lock free, the unexpired login answers too.
        drop(held);
        let served = region_login(&config, Some(&cache), &region, NOW, unreachable).unwrap();
        assert_eq!(served.secret.expose(), "aging");
    }

    #[test]
    fn without_a_usable_cache_get_still_answers() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let config = config(&file);
        let served = get_with(&config, HOST, NOW, |_| Ok(login("api", 43_200))).unwrap();
        assert_eq!(served.secret.expose(), "api");
    }
}
