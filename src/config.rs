//! Every environment variable the helper reads, read once into a plain struct, and the only
//! module allowed to read one (`clippy.toml` forbids `std::env::var*` elsewhere). aws-config
//! reads the standard AWS variables itself when an API call is made.

use std::env;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

pub const CACHE_DIR_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR";
pub const LOG_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_LOG";
pub const REFRESH_MARGIN_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_REFRESH_MARGIN";
pub const TIMEOUT_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT";
pub const LOCK_TIMEOUT_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_LOCK_TIMEOUT";
pub const DOCKER_CONFIG_VAR: &str = "DOCKER_CONFIG";
const PATH_VAR: &str = "PATH";
pub const AWS_PROFILE_VAR: &str = "AWS_PROFILE";
pub const AWS_ENDPOINT_URL_LIGHTSAIL_VAR: &str = "AWS_ENDPOINT_URL_LIGHTSAIL";
pub const AWS_ENDPOINT_URL_VAR: &str = "AWS_ENDPOINT_URL";
pub const AWS_ACCESS_KEY_ID_VAR: &str = "AWS_ACCESS_KEY_ID";
pub const AWS_SECRET_ACCESS_KEY_VAR: &str = "AWS_SECRET_ACCESS_KEY";

/// Reuse a login until this long before it expires (logins last 12 hours).
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(30 * 60);
/// Bound on one fetch: credential resolution plus the API call with its retries.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Lock waiters wait for the holder's whole fetch, plus this.
const LOCK_GRACE: Duration = Duration::from_secs(10);
const MAX_SECONDS: u64 = 24 * 60 * 60;

#[derive(Debug, Clone)]
pub struct Config {
    /// `None` when there is no home directory to put a cache in: every `get` then asks the API.
    pub cache_dir: Option<PathBuf>,
    pub log_level: Option<tracing::Level>,
    pub refresh_margin: Duration,
    pub timeout: Duration,
    pub lock_timeout: Duration,
    pub identity: IdentitySource,
    pub docker_config_dir: Option<PathBuf>,
    /// The folders of `PATH`, to tell the user when Docker will not find this helper.
    pub search_path: Vec<PathBuf>,
}

/// Where the AWS identity will come from, known without resolving any credentials. It keys the
/// cache, so that switching profile or keys never serves another account's login, while SSO and
/// assume-role profiles (whose resolved keys change every session) still hit the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySource {
    /// Stable, unique text for the cache key.
    pub key: String,
    /// For messages: "profile 'dev'", "AWS_ACCESS_KEY_ID AKIA…".
    pub description: String,
}

impl Config {
    /// Defaults with a cache in a new folder under `dir`, for unit tests.
    #[cfg(test)]
    pub fn for_tests(dir: &std::path::Path) -> Config {
        Config {
            cache_dir: Some(dir.join("cache")),
            log_level: None,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(5),
            identity: IdentitySource {
                key: "test".into(),
                description: "test".into(),
            },
            docker_config_dir: None,
            search_path: Vec::new(),
        }
    }

    pub fn from_env() -> Result<Config> {
        let timeout = seconds(TIMEOUT_VAR, DEFAULT_TIMEOUT, 1)?;
        Ok(Config {
            cache_dir: cache_dir(),
            log_level: log_level()?,
            refresh_margin: seconds(REFRESH_MARGIN_VAR, DEFAULT_REFRESH_MARGIN, 0)?,
            timeout,
            lock_timeout: seconds(LOCK_TIMEOUT_VAR, timeout + LOCK_GRACE, 1)?,
            identity: IdentitySource::from_env(),
            docker_config_dir: docker_config_dir(),
            search_path: var_os(PATH_VAR)
                .map(|paths| env::split_paths(&paths).collect())
                .unwrap_or_default(),
        })
    }
}

#[allow(clippy::disallowed_methods)] // The one place that reads the environment.
fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|value| !value.trim().is_empty())
}

#[allow(clippy::disallowed_methods)] // The one place that reads the environment.
fn var_os(name: &str) -> Option<OsString> {
    env::var_os(name).filter(|value| !value.is_empty())
}

fn cache_dir() -> Option<PathBuf> {
    var_os(CACHE_DIR_VAR).map(PathBuf::from).or_else(|| {
        directories::ProjectDirs::from("", "", env!("CARGO_PKG_NAME"))
            .map(|dirs| dirs.cache_dir().to_path_buf())
    })
}

fn docker_config_dir() -> Option<PathBuf> {
    var_os(DOCKER_CONFIG_VAR)
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|dirs| dirs.home_dir().join(".docker")))
}

fn log_level() -> Result<Option<tracing::Level>> {
    let Some(value) = var(LOG_VAR) else {
        return Ok(None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "off" | "0" | "false" => Ok(None),
        "1" | "true" => Ok(Some(tracing::Level::DEBUG)),
        level => level.parse().map(Some).map_err(|_| Error::InvalidSetting {
            name: LOG_VAR,
            value,
            expected: "one of off, error, warn, info, debug, trace",
        }),
    }
}

fn seconds(name: &'static str, default: Duration, min: u64) -> Result<Duration> {
    let Some(value) = var(name) else {
        return Ok(default);
    };
    match value.trim().parse::<u64>() {
        Ok(secs) if (min..=MAX_SECONDS).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(Error::InvalidSetting {
            name,
            value,
            expected: if min == 0 {
                "a whole number of seconds from 0 to 86400"
            } else {
                "a whole number of seconds from 1 to 86400"
            },
        }),
    }
}

impl IdentitySource {
    /// Mirrors the order of the AWS default credential chain: keys in the environment win over
    /// a profile; otherwise the profile (default: `default`), with whatever else the chain could
    /// fall back to (web identity, container or instance credentials) folded into the key.
    fn from_env() -> IdentitySource {
        let endpoint = var(AWS_ENDPOINT_URL_LIGHTSAIL_VAR)
            .or_else(|| var(AWS_ENDPOINT_URL_VAR))
            .unwrap_or_default();
        if let (Some(key_id), Some(_)) =
            (var(AWS_ACCESS_KEY_ID_VAR), var(AWS_SECRET_ACCESS_KEY_VAR))
        {
            return IdentitySource {
                key: format!("env\n{key_id}\n{endpoint}"),
                description: format!("{AWS_ACCESS_KEY_ID_VAR} {key_id}"),
            };
        }
        let profile = var(AWS_PROFILE_VAR);
        let description = match &profile {
            Some(name) => format!("profile '{name}'"),
            None => "the default AWS profile".to_string(),
        };
        let parts = [
            profile.unwrap_or_else(|| "default".into()),
            var("AWS_CONFIG_FILE").unwrap_or_default(),
            var("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_default(),
            var("AWS_ROLE_ARN").unwrap_or_default(),
            var("AWS_WEB_IDENTITY_TOKEN_FILE").unwrap_or_default(),
            var("AWS_CONTAINER_CREDENTIALS_FULL_URI").unwrap_or_default(),
            var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").unwrap_or_default(),
            endpoint,
        ];
        IdentitySource {
            key: format!("profile\n{}", parts.join("\n")),
            description,
        }
    }
}

/// The environment the helper honours, for `--help` and the man page.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        CACHE_DIR_VAR,
        "Cache directory (default: $XDG_CACHE_HOME/docker-credential-lightsail, i.e. ~/.cache/docker-credential-lightsail).",
    ),
    (
        LOG_VAR,
        "Debug logs on stderr: off (default), error, warn, info, debug or trace. Never shows a secret.",
    ),
    (
        REFRESH_MARGIN_VAR,
        "Seconds before a login expires at which it is refreshed (default 1800: 30 minutes).",
    ),
    (
        TIMEOUT_VAR,
        "Seconds one API fetch may take, credential resolution and retries included (default 30).",
    ),
    (
        LOCK_TIMEOUT_VAR,
        "Seconds to wait for another process that is fetching the same login (default: timeout + 10).",
    ),
    (
        DOCKER_CONFIG_VAR,
        "Folder of the config.json that `configure` edits (default ~/.docker).",
    ),
    (
        AWS_PROFILE_VAR,
        "AWS profile to use; also AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, as the AWS CLI reads them.",
    ),
    (
        AWS_ENDPOINT_URL_LIGHTSAIL_VAR,
        "Send Lightsail API calls to this endpoint instead (also AWS_ENDPOINT_URL).",
    ),
];
