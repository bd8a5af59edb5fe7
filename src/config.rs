//! Every environment variable the helper reads, read once into a plain struct, and the only
//! module allowed to read one (`clippy.toml` forbids `std::env::var*` elsewhere). aws-config
//! reads the standard AWS variables itself when an API call is made.

use std::env;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::{Error, Result, one_line};
use crate::secret::Secret;

pub const CACHE_DIR_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR";
pub const CONFIG_DIR_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_CONFIG_DIR";
pub const LOG_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_LOG";
pub const REFRESH_MARGIN_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_REFRESH_MARGIN";
pub const TIMEOUT_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT";
pub const LOCK_TIMEOUT_VAR: &str = "DOCKER_CREDENTIAL_LIGHTSAIL_LOCK_TIMEOUT";
pub const DOCKER_CONFIG_VAR: &str = "DOCKER_CONFIG";
/// Docker's own: credentials in the environment, which take precedence over `credHelpers`.
pub const DOCKER_AUTH_CONFIG_VAR: &str = "DOCKER_AUTH_CONFIG";
const PATH_VAR: &str = "PATH";
pub const AWS_PROFILE_VAR: &str = "AWS_PROFILE";
pub const AWS_ENDPOINT_URL_LIGHTSAIL_VAR: &str = "AWS_ENDPOINT_URL_LIGHTSAIL";
pub const AWS_ENDPOINT_URL_VAR: &str = "AWS_ENDPOINT_URL";
pub const AWS_ACCESS_KEY_ID_VAR: &str = "AWS_ACCESS_KEY_ID";
pub const AWS_SECRET_ACCESS_KEY_VAR: &str = "AWS_SECRET_ACCESS_KEY";
const AWS_SESSION_TOKEN_VAR: &str = "AWS_SESSION_TOKEN";
pub const AWS_CA_BUNDLE_VAR: &str = "AWS_CA_BUNDLE";
/// The key of a profile in `~/.aws/config` that names a CA bundle, as the AWS CLI reads it.
pub const CA_BUNDLE_KEY: &str = "ca_bundle";
/// The profile used when `AWS_PROFILE` is not set.
pub const DEFAULT_PROFILE: &str = "default";
pub const HTTPS_PROXY_VAR: &str = "HTTPS_PROXY";
pub const HTTP_PROXY_VAR: &str = "HTTP_PROXY";
pub const ALL_PROXY_VAR: &str = "ALL_PROXY";
pub const NO_PROXY_VAR: &str = "NO_PROXY";
/// The proxy variables for `https://` endpoints, in the order hyper-util's matcher (which the
/// SDK's connector uses, and which reads them itself) takes the first one set.
const HTTPS_PROXY_VARS: [&str; 4] = [HTTPS_PROXY_VAR, "https_proxy", ALL_PROXY_VAR, "all_proxy"];
/// The same for `http://` endpoints.
const HTTP_PROXY_VARS: [&str; 4] = [HTTP_PROXY_VAR, "http_proxy", ALL_PROXY_VAR, "all_proxy"];
pub const AWS_CONFIG_FILE_VAR: &str = "AWS_CONFIG_FILE";
pub const AWS_SHARED_CREDENTIALS_FILE_VAR: &str = "AWS_SHARED_CREDENTIALS_FILE";

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
    /// The AWS profile this run must use, and nothing else: set for a registry host bound to a
    /// profile in the helper's configuration file (`Config::bound_to`), `None` for the standard
    /// credential chain.
    pub bound_profile: Option<String>,
    /// The configuration file that bound it, for messages (`None` for `configure --profile`).
    pub bound_in: Option<PathBuf>,
    /// What the standard AWS settings say, for choosing and describing identities.
    pub aws: AwsSettings,
    /// Folder of the helper's own configuration file (`bindings.rs`); `None` without a home.
    pub config_dir: Option<PathBuf>,
    pub docker_config_dir: Option<PathBuf>,
    /// Whether `DOCKER_AUTH_CONFIG` is set (never its value: it holds credentials), for `doctor`.
    pub docker_auth_config: bool,
    /// Whether `DOCKER_CONFIG` chose `docker_config_dir`, for `doctor`.
    pub docker_config_from_env: bool,
    /// The folders of `PATH`, to tell the user when Docker will not find this helper.
    pub search_path: Vec<PathBuf>,
    pub network: Network,
}

/// How API calls reach AWS, beyond what the SDK reads itself.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// `AWS_ENDPOINT_URL_LIGHTSAIL`, else `AWS_ENDPOINT_URL`: where API calls go instead of AWS.
    pub endpoint_url: Option<String>,
    /// `AWS_CA_BUNDLE`: PEM certificates to trust beside the system's roots; wins over the
    /// profile's `ca_bundle`.
    pub ca_bundle: Option<PathBuf>,
    /// The name of the proxy variable in effect for `https://` and for `http://` endpoints
    /// (never its value: it may hold a password), for messages about a proxy. The HTTP client
    /// reads the proxy variables themselves through hyper-util's matcher.
    pub https_proxy_var: Option<&'static str>,
    pub http_proxy_var: Option<&'static str>,
    /// The values of those two variables, checked before a call (`lightsail::network`): a
    /// value the HTTP client cannot use is an error, not a silent direct connection. They may
    /// hold a proxy password.
    pub https_proxy_value: Option<Secret>,
    pub http_proxy_value: Option<Secret>,
}

/// The standard AWS settings the helper itself looks at (aws-config reads them again, and the
/// rest, when it makes a call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_PROFILE`.
    pub profile: Option<String>,
    /// Whether `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are both set.
    pub keys_in_env: bool,
    /// The shared config file: `AWS_CONFIG_FILE`, else `~/.aws/config`.
    pub config_file: PathBuf,
    /// The shared credentials file: `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
    pub credentials_file: PathBuf,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION` (as aws-config reads them), by name and value: to
    /// say where a bad region came from.
    pub region_var: Option<(&'static str, String)>,
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
        Config::isolated(dir.join("cache"))
    }

    /// A configuration that reads nothing from the environment, with its cache in `cache_dir`:
    /// for property tests and fuzzing, which call the library directly.
    pub fn isolated(cache_dir: PathBuf) -> Config {
        Config {
            cache_dir: Some(cache_dir),
            log_level: None,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(5),
            identity: IdentitySource {
                key: "isolated".into(),
                description: "isolated".into(),
            },
            bound_profile: None,
            bound_in: None,
            aws: AwsSettings::default(),
            config_dir: None,
            docker_config_dir: None,
            docker_auth_config: false,
            docker_config_from_env: false,
            search_path: Vec::new(),
            network: Network::default(),
        }
    }

    pub fn from_env() -> Result<Config> {
        let read;
        let env = match SNAPSHOT.get() {
            Some(snapshot) => snapshot,
            None => {
                read = Environment::read();
                &read
            }
        };
        check_paths(env)?;
        check_header_values(env)?;
        let timeout = seconds(env, TIMEOUT_VAR, DEFAULT_TIMEOUT, 1)?;
        let https_proxy_var = env.first_set(HTTPS_PROXY_VARS);
        let http_proxy_var = env.first_set(HTTP_PROXY_VARS);
        Ok(Config {
            cache_dir: cache_dir(env),
            log_level: log_level(env)?,
            refresh_margin: seconds(env, REFRESH_MARGIN_VAR, DEFAULT_REFRESH_MARGIN, 0)?,
            timeout,
            lock_timeout: seconds(env, LOCK_TIMEOUT_VAR, timeout + LOCK_GRACE, 1)?,
            identity: IdentitySource::from_env(env),
            bound_profile: None,
            bound_in: None,
            aws: AwsSettings::from_env(env),
            config_dir: config_dir(env),
            docker_config_dir: docker_config_dir(env),
            docker_auth_config: env.var_os(DOCKER_AUTH_CONFIG_VAR).is_some(),
            docker_config_from_env: env.var_os(DOCKER_CONFIG_VAR).is_some(),
            search_path: env
                .var_os(PATH_VAR)
                .map(|paths| env::split_paths(paths).collect())
                .unwrap_or_default(),
            network: Network {
                endpoint_url: checked_endpoint_url(env)?,
                ca_bundle: env.var_os(AWS_CA_BUNDLE_VAR).map(PathBuf::from),
                https_proxy_var,
                http_proxy_var,
                https_proxy_value: https_proxy_var.and_then(|name| env.secret_value(name)),
                http_proxy_value: http_proxy_var.and_then(|name| env.secret_value(name)),
            },
        })
    }

    /// The profile whose settings (such as `ca_bundle`) apply: the registry's bound profile,
    /// else `AWS_PROFILE`, else `default`.
    pub fn profile_name(&self) -> &str {
        self.bound_profile
            .as_deref()
            .or(self.aws.profile.as_deref())
            .unwrap_or(DEFAULT_PROFILE)
    }
}

/// The variables that name a file or folder, the helper's and those its crates read for it.
const PATH_VARS: [&str; 9] = [
    CACHE_DIR_VAR,
    CONFIG_DIR_VAR,
    DOCKER_CONFIG_VAR,
    AWS_CA_BUNDLE_VAR,
    AWS_CONFIG_FILE_VAR,
    AWS_SHARED_CREDENTIALS_FILE_VAR,
    "HOME",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
];
/// Linux's `PATH_MAX` (macOS's is smaller): no longer path can be opened.
const MAX_PATH_BYTES: usize = 4096;

/// A path longer than any that can be opened, or with a control character in it, is a short
/// error here, not a message that repeats it whole (and raw, to a terminal) when opening it fails.
fn check_paths(env: &Environment) -> Result<()> {
    for name in PATH_VARS {
        let Some(path) = env.var_os(name) else {
            continue;
        };
        let text = path.to_string_lossy();
        let expected = if path.len() > MAX_PATH_BYTES {
            "a path of at most 4096 bytes"
        } else if text.chars().any(char::is_control) {
            "a path without control characters"
        } else {
            continue;
        };
        return Err(Error::InvalidSetting {
            name,
            value: shown(&text),
            expected,
        });
    }
    Ok(())
}

/// Keys in the environment go into request headers, whichever profile or role uses them (a
/// role's `credential_source = Environment` too, signed inside aws-config), and the SDK's signer
/// panics on a header value with a control character: refused here, the token unshown.
fn check_header_values(env: &Environment) -> Result<()> {
    let unfit = |value: &str| value.chars().any(|c| c.is_ascii_control() && c != '\t');
    if let Some(key_id) = env.var(AWS_ACCESS_KEY_ID_VAR).filter(|v| unfit(v)) {
        return Err(Error::InvalidSetting {
            name: AWS_ACCESS_KEY_ID_VAR,
            value: shown(&key_id),
            expected: "an access key id without control characters",
        });
    }
    if env.var(AWS_SESSION_TOKEN_VAR).is_some_and(|v| unfit(&v)) {
        return Err(Error::InvalidSetting {
            name: AWS_SESSION_TOKEN_VAR,
            value: "…".into(),
            expected: "a session token without control characters",
        });
    }
    Ok(())
}

fn endpoint_url(env: &Environment) -> Option<String> {
    env.var(AWS_ENDPOINT_URL_LIGHTSAIL_VAR)
        .or_else(|| env.var(AWS_ENDPOINT_URL_VAR))
}

/// `endpoint_url`, if it is an absolute `http://` or `https://` URL with a host: anything else
/// is a one-line error that names the variable (the SDK would report it as an unreachable
/// endpoint, or panic).
fn checked_endpoint_url(env: &Environment) -> Result<Option<String>> {
    let Some(url) = endpoint_url(env) else {
        return Ok(None);
    };
    let uri = url.trim().parse::<http::Uri>().ok();
    let scheme = uri.as_ref().and_then(http::Uri::scheme_str);
    let host = uri.as_ref().and_then(http::Uri::host).unwrap_or_default();
    if matches!(scheme, Some("http" | "https")) && !host.is_empty() {
        return Ok(Some(url.trim().to_string()));
    }
    let name = if env.var(AWS_ENDPOINT_URL_LIGHTSAIL_VAR).is_some() {
        AWS_ENDPOINT_URL_LIGHTSAIL_VAR
    } else {
        AWS_ENDPOINT_URL_VAR
    };
    Err(Error::InvalidSetting {
        name,
        value: shown(&without_userinfo(&url)),
        expected: "an http:// or https:// URL with a host, such as https://lightsail.us-east-1.amazonaws.com",
    })
}

/// `url` with whatever precedes an `@` in its authority (a user name and password) replaced.
fn without_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (&url[..scheme.len() + 3], rest),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}…{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// A setting's value as an error message shows it: at most 100 characters.
fn shown(value: &str) -> String {
    const MAX: usize = 100;
    let mut text: String = value.chars().take(MAX).collect();
    if value.chars().count() > MAX {
        text.push('…');
    }
    text
}

/// Removes every `AWS_*` variable whose value is blank from this process's environment, so
/// that aws-config, which reads the environment itself, sees what [`Config`] sees: a variable
/// set to nothing is unset, as the AWS CLI takes it (aws-config would take `AWS_ENDPOINT_URL=`
/// as an endpoint and panic, and `AWS_MAX_ATTEMPTS=` as an invalid number).
///
/// # Safety
///
/// No other thread may exist yet: `main` calls it first.
///
/// The same pass keeps what remains for [`Config::from_env`]: reading the environment is a
/// large part of what a cache hit costs.
#[allow(clippy::disallowed_methods)] // The one place that reads the environment.
pub unsafe fn unset_blank_aws_variables() {
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for (name, value) in env::vars_os() {
        // Blank as `var` has it; the name first, the cheaper test.
        let aws = name.as_encoded_bytes().starts_with(b"AWS_") && name.to_str().is_some();
        if aws && value.to_str().is_some_and(|value| value.trim().is_empty()) {
            // SAFETY: single-threaded, as the caller promises.
            unsafe { env::remove_var(&name) };
            removed.push(name);
        } else if !removed.contains(&name) {
            // (`remove_var` removed a repeated name's later copies too.)
            kept.push((name, value));
        }
    }
    // Set once, by `main`: a second call keeps the first snapshot, which is as good.
    let _ = SNAPSHOT.set(Environment(kept));
}

/// The environment as [`unset_blank_aws_variables`] left it.
static SNAPSHOT: OnceLock<Environment> = OnceLock::new();

impl Config {
    /// This configuration for a registry host bound to AWS `profile`: that profile, exclusively
    /// (keys in the environment and `AWS_PROFILE` do not count), keys the cache and signs the call.
    /// `file` is the configuration file that binds it, if one does.
    pub fn bound_to(&self, profile: &str, file: Option<&Path>) -> Config {
        Config {
            identity: IdentitySource::for_profile(profile, &self.aws, &self.network),
            bound_profile: Some(profile.to_string()),
            bound_in: file.map(Path::to_path_buf),
            ..self.clone()
        }
    }
}

/// The process's environment, read in one pass: `getenv` scans the whole environment (under a
/// lock, with an allocation) on every call, and a cache hit must cost little more than starting.
/// A list, not a map: building a map costs more than the few dozen lookups save.
struct Environment(Vec<(OsString, OsString)>);

impl Environment {
    #[allow(clippy::disallowed_methods)] // The one place that reads the environment.
    fn read() -> Environment {
        Environment(env::vars_os().collect())
    }

    /// Variable `name` as text; blank or not UTF-8 counts as unset.
    fn var(&self, name: &str) -> Option<String> {
        self.var_os(name)
            .and_then(OsStr::to_str)
            .filter(|value| !value.trim().is_empty())
            .map(str::to_string)
    }

    /// Variable `name` as it is; empty counts as unset.
    fn var_os(&self, name: &str) -> Option<&OsStr> {
        // The first of a repeated name, as `getenv` has it.
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_os_str())
            .filter(|value| !value.is_empty())
    }

    /// The first of `names` that is set, by name.
    fn first_set(&self, names: [&'static str; 4]) -> Option<&'static str> {
        names.into_iter().find(|name| self.var_os(name).is_some())
    }

    /// The value of variable `name`, which may hold a password.
    fn secret_value(&self, name: &str) -> Option<Secret> {
        self.var_os(name)
            .map(|value| Secret::new(value.to_string_lossy().into_owned()))
    }
}

fn cache_dir(env: &Environment) -> Option<PathBuf> {
    env.var_os(CACHE_DIR_VAR).map(PathBuf::from).or_else(|| {
        directories::ProjectDirs::from("", "", env!("CARGO_PKG_NAME"))
            .map(|dirs| dirs.cache_dir().to_path_buf())
    })
}

fn config_dir(env: &Environment) -> Option<PathBuf> {
    env.var_os(CONFIG_DIR_VAR).map(PathBuf::from).or_else(|| {
        directories::ProjectDirs::from("", "", env!("CARGO_PKG_NAME"))
            .map(|dirs| dirs.config_dir().to_path_buf())
    })
}

fn home_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|dirs| dirs.home_dir().to_path_buf())
}

impl AwsSettings {
    fn from_env(env: &Environment) -> AwsSettings {
        let home = home_dir().unwrap_or_default();
        // As aws-config does: a leading `~/` in either variable is the home folder.
        let file = |name: &str, default: &str| match env.var(name) {
            Some(path) => match path.strip_prefix("~/") {
                Some(rest) => home.join(rest),
                None => PathBuf::from(path),
            },
            None => home.join(".aws").join(default),
        };
        AwsSettings {
            profile: env.var(AWS_PROFILE_VAR),
            keys_in_env: env.var(AWS_ACCESS_KEY_ID_VAR).is_some()
                && env.var(AWS_SECRET_ACCESS_KEY_VAR).is_some(),
            config_file: file(AWS_CONFIG_FILE_VAR, "config"),
            credentials_file: file(AWS_SHARED_CREDENTIALS_FILE_VAR, "credentials"),
            region_var: ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .into_iter()
                .find_map(|name| env.var(name).map(|value| (name, value))),
        }
    }
}

fn docker_config_dir(env: &Environment) -> Option<PathBuf> {
    env.var_os(DOCKER_CONFIG_VAR)
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|dirs| dirs.home_dir().join(".docker")))
}

fn log_level(env: &Environment) -> Result<Option<tracing::Level>> {
    let Some(value) = env.var(LOG_VAR) else {
        return Ok(None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "off" | "0" | "false" => Ok(None),
        "1" | "true" => Ok(Some(tracing::Level::DEBUG)),
        level => level.parse().map(Some).map_err(|_| Error::InvalidSetting {
            name: LOG_VAR,
            value: shown(&value),
            expected: "one of off, error, warn, info, debug, trace",
        }),
    }
}

fn seconds(env: &Environment, name: &'static str, default: Duration, min: u64) -> Result<Duration> {
    let Some(value) = env.var(name) else {
        return Ok(default);
    };
    match value.trim().parse::<u64>() {
        Ok(secs) if (min..=MAX_SECONDS).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(Error::InvalidSetting {
            name,
            value: shown(&value),
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
    fn from_env(env: &Environment) -> IdentitySource {
        let endpoint = endpoint_url(env).unwrap_or_default();
        if let (Some(key_id), Some(_)) = (
            env.var(AWS_ACCESS_KEY_ID_VAR),
            env.var(AWS_SECRET_ACCESS_KEY_VAR),
        ) {
            return IdentitySource {
                key: format!("env\n{key_id}\n{endpoint}"),
                description: format!("{AWS_ACCESS_KEY_ID_VAR} {}", one_line(&key_id)),
            };
        }
        let profile = env.var(AWS_PROFILE_VAR);
        let description = match &profile {
            Some(name) => format!("profile '{}'", one_line(name)),
            None => "the default AWS profile".to_string(),
        };
        let parts = [
            profile.unwrap_or_else(|| DEFAULT_PROFILE.into()),
            env.var(AWS_CONFIG_FILE_VAR).unwrap_or_default(),
            env.var(AWS_SHARED_CREDENTIALS_FILE_VAR).unwrap_or_default(),
            env.var("AWS_ROLE_ARN").unwrap_or_default(),
            env.var("AWS_WEB_IDENTITY_TOKEN_FILE").unwrap_or_default(),
            env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                .unwrap_or_default(),
            env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                .unwrap_or_default(),
            endpoint,
        ];
        IdentitySource {
            key: format!("profile\n{}", parts.join("\n")),
            description,
        }
    }
}

impl IdentitySource {
    /// AWS `profile` and nothing else, as a binding has it: the environment's keys and
    /// `AWS_PROFILE` play no part, so they are not in the key.
    fn for_profile(profile: &str, aws: &AwsSettings, network: &Network) -> IdentitySource {
        let parts = [
            profile,
            &aws.config_file.to_string_lossy(),
            &aws.credentials_file.to_string_lossy(),
            network.endpoint_url.as_deref().unwrap_or_default(),
        ];
        IdentitySource {
            key: format!("bound-profile\n{}", parts.join("\n")),
            description: format!("profile '{}'", one_line(profile)),
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
        CONFIG_DIR_VAR,
        "Folder of the helper's configuration file, config.json, which binds registry hosts to AWS profiles (default: $XDG_CONFIG_HOME/docker-credential-lightsail, i.e. ~/.config/docker-credential-lightsail).",
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
        "AWS profile to use for registry hosts that `configure --profile` did not bind to one; also AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, as the AWS CLI reads them.",
    ),
    (
        AWS_ENDPOINT_URL_LIGHTSAIL_VAR,
        "Send Lightsail API calls to this endpoint instead (also AWS_ENDPOINT_URL).",
    ),
    (
        HTTPS_PROXY_VAR,
        "Proxy for https:// endpoints (the AWS API), as http://[user:password@]host:port; also https_proxy, and ALL_PROXY / all_proxy for every scheme. The endpoint's name is resolved by the proxy.",
    ),
    (
        HTTP_PROXY_VAR,
        "Proxy for http:// endpoints (only a custom AWS_ENDPOINT_URL_LIGHTSAIL); also http_proxy.",
    ),
    (
        NO_PROXY_VAR,
        "Hosts reached directly, comma-separated: names (matching subdomains too), .suffixes, IP addresses or CIDR ranges, or * for all; also no_proxy.",
    ),
    (
        AWS_CA_BUNDLE_VAR,
        "PEM file of certificate authorities to trust besides the system's (a private CA, TLS inspection); wins over ca_bundle in the AWS profile.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_user_and_password() {
        assert_eq!(
            without_userinfo("http://user:pw@host:1/p@th"),
            "http://…@host:1/p@th"
        );
        assert_eq!(without_userinfo("https://host/a@b"), "https://host/a@b");
        assert_eq!(without_userinfo("user:pw@host"), "…@host");
        assert_eq!(without_userinfo("not a url"), "not a url");
    }

    #[test]
    #[cfg(unix)] // Non-UTF-8 values are built from bytes here.
    fn blank_and_non_utf8_values_read_as_getenv_had_them() {
        use std::os::unix::ffi::OsStringExt;
        let env = Environment(vec![
            ("BLANK".into(), " ".into()),
            ("EMPTY".into(), "".into()),
            ("BYTES".into(), OsString::from_vec(vec![0xff])),
            ("SET".into(), " x ".into()),
            ("SET".into(), "second".into()),
        ]);
        assert_eq!(env.var("BLANK"), None);
        assert_eq!(env.var_os("BLANK"), Some(OsStr::new(" ")));
        assert_eq!(env.var_os("EMPTY"), None);
        assert_eq!(env.var("BYTES"), None);
        assert!(env.var_os("BYTES").is_some());
        assert_eq!(env.var("SET").as_deref(), Some(" x "));
        assert_eq!(env.var("UNSET"), None);
        assert_eq!(
            env.first_set(["UNSET", "EMPTY", "BLANK", "SET"]),
            Some("BLANK")
        );
    }

    #[test]
    fn a_value_is_shown_shortened() {
        assert_eq!(shown("abc"), "abc");
        let long = "é".repeat(150);
        assert_eq!(shown(&long), format!("{}…", "é".repeat(100)));
    }
}
