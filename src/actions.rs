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
use crate::cache::{Cache, Freshness, Login};
use crate::config::Config;
use crate::error::{Error, Result, one_line};
use crate::lightsail::fetch_login;
use crate::registry::{Region, Registry};
use crate::secret::Secret;

/// How long a Lightsail registry login lasts; what `store` assumes for what `docker login` gave it.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

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
        .filter(|login| login.registry == registry.host);
    let stored_freshness = stored
        .as_ref()
        .map(|login| login.freshness(now, config.refresh_margin));
    if stored_freshness == Some(Freshness::Fresh) {
        debug!("serving credentials stored by `docker login`");
        return stored.ok_or(Error::NotFound);
    }
    match region_login(config, cache.as_ref(), &registry.region, now, fetch) {
        Ok(login) => ours(login, &registry),
        Err(err) if stored_freshness == Some(Freshness::Aging) => {
            debug!("refresh failed ({err}); serving the unexpired stored credentials");
            stored.ok_or(err)
        }
        Err(err) => Err(err),
    }
}

/// The account's registry login for `region`: from the cache while fresh, else fetched by
/// exactly one process under the entry's lock and saved for the others. When the fetch fails, a
/// cached login that is inside the refresh margin but not expired is still good.
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
    let margin = config.refresh_margin;
    let slot = cache.login_slot(region, &config.identity);
    let cached = slot.read();
    if let Some(login) = cached
        .as_ref()
        .filter(|l| l.freshness(now, margin) == Freshness::Fresh)
    {
        debug!("cache hit for {region}");
        return Ok(login.clone());
    }
    let fallback = |err: Error| match slot.read().or(cached.clone()) {
        Some(login) if login.freshness(now, margin) == Freshness::Aging => {
            debug!("refresh failed ({err}); serving the unexpired cached login");
            Ok(login)
        }
        _ => Err(err),
    };
    let locked = match slot.lock(config.lock_timeout) {
        Ok(locked) => Some(locked),
        Err(err @ Error::LockTimeout { .. }) => return fallback(err),
        Err(err) => {
            debug!("going on without the cache lock: {err}");
            None
        }
    };
    if let Some(login) = locked
        .as_ref()
        .and_then(|locked| locked.read())
        .filter(|l| l.freshness(now, margin) == Freshness::Fresh)
    {
        debug!("another process fetched the login while this one waited");
        return Ok(login);
    }
    match fetch(region) {
        Ok(login) => {
            if let Some(locked) = &locked
                && let Err(err) = locked.write(&login)
            {
                debug!(
                    "could not save the login in {}: {err}",
                    cache.dir().display()
                );
            }
            Ok(login)
        }
        Err(err) => fallback(err),
    }
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

/// `store` at `now`: keeps what `docker login` was given for a Lightsail/ECR host, for a
/// login's lifetime.
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
    let login = Login {
        registry: registry.host,
        username: username.to_string(),
        secret: Secret::new(secret.to_string()),
        expires_at: now + LOGIN_LIFETIME.as_secs(),
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
    for (slot, login) in cache.entries() {
        if login.registry == registry.host {
            let locked = slot.lock(config.lock_timeout)?;
            locked
                .remove()
                .map_err(|err| Error::io("cannot remove credentials from", cache.dir(), err))?;
        }
    }
    Ok(())
}

/// `list` at `now`: the registries held and unexpired, with their usernames. No API call, no
/// secret.
pub fn list(config: &Config, now: u64) -> BTreeMap<String, String> {
    Cache::open_or_log(config.cache_dir.as_deref())
        .map(|cache| cache.entries())
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, login)| login.freshness(now, Duration::ZERO) != Freshness::Expired)
        .map(|(_, login)| (login.registry, login.username))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn one_fetch_then_hits_and_other_ecr_hosts_are_not_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path());
        let calls = Cell::new(0);
        let fetch = |region: &Region| {
            assert_eq!(region.as_str(), "us-east-1");
            calls.set(calls.get() + 1);
            Ok(login("one", 43_200))
        };
        assert_eq!(
            get_with(&config, HOST, NOW, fetch).unwrap().secret.expose(),
            "one"
        );
        assert_eq!(
            get_with(&config, HOST, NOW, fetch).unwrap().secret.expose(),
            "one"
        );
        let own_ecr = "999999999999.dkr.ecr.us-east-1.amazonaws.com";
        assert!(matches!(
            get_with(&config, own_ecr, NOW, fetch),
            Err(Error::NotFound)
        ));
        assert_eq!(calls.get(), 1);
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
