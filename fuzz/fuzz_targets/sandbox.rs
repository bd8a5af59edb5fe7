//! Shared by the fuzz targets: a cache directory holding fresh logins for two regions and one
//! stored login, so that `get` for those hosts is answered without the network, and the
//! checks every answer must pass. The same rules as tests/suite/properties.rs.

#![allow(dead_code)]

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use docker_credential_lightsail::cache::{Cache, Login};
use docker_credential_lightsail::config::Config;
use docker_credential_lightsail::protocol::{self, Action};
use docker_credential_lightsail::registry::{Region, Registry};
use docker_credential_lightsail::secret::Secret;

pub const REGIONS: &[&str] = &["us-east-1", "eu-west-3"];
pub const STORED_HOST: &str = "210987654321.dkr.ecr.ap-south-1.amazonaws.com";
pub const CACHED_SECRET: &str = "CACHED-SECRET-7f3a9c1e55";
pub const STORED_SECRET: &str = "STORED-SECRET-0b8d2e4f66";

pub fn host_of(region: &str) -> String {
    format!("123456789012.dkr.ecr.{region}.amazonaws.com")
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        // Kept for the life of the fuzzing process.
        let dir: PathBuf = tempfile::tempdir().unwrap().keep().join("cache");
        let config = Config::isolated(dir);
        refill(&config);
        config
    })
}

/// Puts the sandbox's logins back (an `erase` or a `store` may have changed them).
pub fn refill(config: &Config) {
    let cache = cache(config);
    let login = |registry: &str, secret: &str| Login {
        registry: registry.to_string(),
        username: "AWS".into(),
        secret: Secret::new(secret.to_string()),
        expires_at: now() + 3600,
    };
    for region in REGIONS {
        let region = Region::parse(region).unwrap();
        let slot = cache.login_slot(&region, &config.identity);
        let locked = slot.lock(Duration::from_secs(1)).unwrap();
        locked
            .write(&login(&host_of(region.as_str()), CACHED_SECRET))
            .unwrap();
    }
    let slot = cache.stored_slot(STORED_HOST);
    let locked = slot.lock(Duration::from_secs(1)).unwrap();
    locked.write(&login(STORED_HOST, STORED_SECRET)).unwrap();
}

pub fn cache(config: &Config) -> Cache {
    Cache::open(config.cache_dir.as_deref().unwrap()).unwrap()
}

/// Whether `get` for this input is answered from the sandbox alone (no API call).
pub fn answers_offline(input: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(input) else {
        return true;
    };
    match Registry::parse(text) {
        None => true,
        Some(r) => REGIONS.contains(&r.region.as_str()) || r.host == STORED_HOST,
    }
}

pub fn handle(action: Action, input: &[u8]) -> (Result<(), String>, Vec<u8>) {
    let mut out = Vec::new();
    let result = protocol::handle(action, config(), now(), Cursor::new(input), &mut out)
        .map_err(|err| err.to_string());
    (result, out)
}

/// An error Docker can show: one line, not empty.
pub fn assert_one_line(message: &str) {
    assert!(!message.trim().is_empty(), "empty error message");
    assert!(
        !message.contains(['\n', '\r']),
        "multi-line error: {message:?}"
    );
}
