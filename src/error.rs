//! The one error type. Its messages are part of the contract: Docker compares the first three
//! to exact strings, and shows every other one to the user as a single line.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{
    AWS_CA_BUNDLE_VAR, AWS_ENDPOINT_URL_LIGHTSAIL_VAR, CA_BUNDLE_KEY, CACHE_DIR_VAR,
    CONFIG_DIR_VAR, LOCK_TIMEOUT_VAR, NO_PROXY_VAR, TIMEOUT_VAR,
};
use crate::registry::Region;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// "Not mine / nothing here": Docker then goes on without credentials.
    #[error("credentials not found in native keychain")]
    NotFound,
    #[error("no credentials server URL")]
    MissingServerUrl,
    #[error("no credentials username")]
    MissingUsername,

    // ---- what a protocol action read on stdin -----------------------------------------------
    #[error("invalid input: no credentials secret")]
    MissingSecret,
    #[error("invalid input: cannot read standard input: {0}")]
    UnreadableInput(std::io::Error),
    #[error("invalid input: standard input is larger than {} KiB", .limit / 1024)]
    InputTooLarge { limit: u64 },
    #[error("invalid input: standard input is not UTF-8 text")]
    InputNotUtf8,
    /// `problem` never quotes the input: it may hold the secret.
    #[error(
        "invalid input: store expects {{\"ServerURL\",\"Username\",\"Secret\"}} JSON: {problem} (line {line}, column {column})"
    )]
    BadStoreInput {
        problem: &'static str,
        line: usize,
        column: usize,
    },
    #[error(
        "invalid input: {0} is not an Amazon Lightsail or ECR registry host; docker-credential-lightsail stores credentials only for those"
    )]
    NotARegistryHost(String),

    // ---- settings and arguments ---------------------------------------------------------------
    #[error("invalid setting {name}={value:?}: {expected}")]
    InvalidSetting {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A command-line value that breaks Lightsail's rules; `rule` says what a good one is.
    #[error("{what} {value:?} {rule}")]
    InvalidArgument {
        what: &'static str,
        value: String,
        rule: String,
    },
    #[error("{0:?} is not an AWS region name (like us-east-1)")]
    InvalidRegion(String),
    /// A region from the environment or a profile: `from` says which, so the user can fix it there.
    #[error(
        "{value:?} ({from}) is not an AWS region name (like us-east-1): correct it there, or pass --region"
    )]
    InvalidRegionFrom { value: String, from: String },
    #[error("no AWS region: pass --region, or set AWS_REGION or a region in your AWS profile")]
    NoRegion,
    #[error(
        "could not find the AWS region within {} s ({TIMEOUT_VAR}): pass --region", .after.as_secs_f32()
    )]
    RegionLookupTimeout { after: Duration },

    // ---- AWS identity ---------------------------------------------------------------------------
    /// `hint` says what to do, for the case at hand (no profile named, a profile without keys…).
    #[error("no AWS credentials found ({identity}): {hint}")]
    NoAwsCredentials { identity: String, hint: String },
    #[error("profile '{profile}' not found in {} or {}", .config_file.display(), .credentials_file.display())]
    ProfileNotFound {
        profile: String,
        config_file: PathBuf,
        credentials_file: PathBuf,
    },
    /// `missing` is the `ProfileNotFound` of the profile the configuration file names.
    #[error(
        "{missing}; {} binds this registry to it: add the profile, or rebind with `docker-credential-lightsail configure --profile NAME --region {region}`",
        .bindings.display()
    )]
    BoundProfileNotFound {
        missing: Box<Error>,
        bindings: PathBuf,
        region: Region,
    },
    #[error(
        "the AWS SSO session of profile '{profile}' has expired or was never started: run `aws sso login --profile {profile}`"
    )]
    SsoSessionExpired { profile: String },
    #[error("could not load AWS credentials: {0}")]
    AwsCredentials(String),
    #[error(
        "AWS rejected the credentials from {identity} ({code}): check the access key and secret, or refresh the session (`aws sso login`)"
    )]
    BadAwsCredentials { identity: String, code: String },

    // ---- the Lightsail API ----------------------------------------------------------------------
    #[error(
        "access denied by Lightsail in {region} ({code}: {message}): the AWS identity from {identity} needs the lightsail:{action} permission"
    )]
    AccessDenied {
        region: Region,
        code: String,
        message: String,
        identity: String,
        action: &'static str,
    },
    #[error("Lightsail in {region} refused the request ({code}): {message}")]
    Api {
        region: Region,
        code: String,
        message: String,
    },
    #[error(
        "could not reach the Lightsail endpoint for {region}: {reason} (check the network, proxy settings and {AWS_ENDPOINT_URL_LIGHTSAIL_VAR})"
    )]
    Unreachable { region: Region, reason: String },
    #[error(
        "Lightsail in {region} did not answer within {} s ({TIMEOUT_VAR})", .after.as_secs_f32()
    )]
    Timeout { region: Region, after: Duration },
    #[error("unexpected answer from Lightsail in {region}: {reason}")]
    BadResponse { region: Region, reason: String },

    // ---- push: the container engine and deployments ---------------------------------------------
    #[error(
        "{engine} is not on PATH: install it, or choose the engine with --engine docker|podman"
    )]
    EngineMissing { engine: &'static str },
    #[error(
        "{engine} is not running or cannot be reached ({detail}): start it, or check DOCKER_HOST and the current context"
    )]
    EngineNotRunning {
        engine: &'static str,
        detail: String,
    },
    #[error("{engine} {action} failed: {detail}")]
    EngineFailed {
        engine: &'static str,
        action: &'static str,
        detail: String,
    },
    #[error("{engine} has no image {image:?}: build it first, or check its name")]
    NoSuchImage { engine: &'static str, image: String },
    #[error(
        "{image} is built for {platform}, and Lightsail runs linux/amd64 images only: build one with `docker build --platform linux/amd64`"
    )]
    WrongPlatform { image: String, platform: String },
    #[error("{engine} push did not say which digest the registry received")]
    NoDigest { engine: &'static str },
    #[error(
        "container service {service} has no current deployment to update: deploy it once first (Lightsail console or `aws lightsail create-container-service-deployment`), or push without --deploy"
    )]
    NoDeployment { service: String },
    #[error(
        "the current deployment of {service} has no container named {container:?} (it has: {containers})"
    )]
    UnknownContainer {
        service: String,
        container: String,
        containers: String,
    },
    #[error(
        "a deployment of {service} is already in progress (version {version}, {state}): wait until it ends, then push again"
    )]
    DeploymentInProgress {
        service: String,
        version: i32,
        state: String,
    },
    #[error(
        "deployment {version} of {service} FAILED, and the service goes on running version {running}: see the container's logs with `aws lightsail get-container-log --service-name {service} --container-name {container}`"
    )]
    DeploymentFailed {
        service: String,
        version: i32,
        running: String,
        container: String,
    },
    #[error(
        "deployment {version} of {service} is still {state} after {} s (--wait-timeout), and the service runs version {running}; Lightsail goes on with it: follow it with `aws lightsail get-container-services --service-name {service}`", .after.as_secs()
    )]
    DeploymentTimeout {
        service: String,
        version: i32,
        state: String,
        after: Duration,
        running: String,
    },
    #[error(
        "deployment {version} of {service} was superseded by deployment {by}, made meanwhile, and the service runs version {running}: see `aws lightsail get-container-services --service-name {service}`"
    )]
    DeploymentSuperseded {
        service: String,
        version: i32,
        by: i32,
        running: String,
    },
    #[error("{engine} was stopped")]
    EngineStopped { engine: &'static str },
    /// SIGINT, SIGTERM or SIGHUP ended a command; `undone` says what it left undone.
    #[error("interrupted by {signal}: {undone}")]
    Interrupted {
        signal: &'static str,
        number: u8,
        undone: String,
    },

    // ---- proxies and certificate authorities ----------------------------------------------------
    // A proxy is named by host and port only: its URL may hold a password.
    #[error(
        "the proxy {proxy} asks for credentials (407 Proxy Authentication Required): put the right user and password in {variable} (http://user:password@{proxy})"
    )]
    ProxyAuthRequired {
        proxy: String,
        variable: &'static str,
    },
    #[error(
        "the proxy {proxy} would not connect to the Lightsail endpoint {endpoint} ({why}): check that the proxy allows it, or list the host in {NO_PROXY_VAR} to bypass the proxy"
    )]
    ProxyRefused {
        proxy: String,
        endpoint: String,
        why: String,
    },
    #[error(
        "could not reach the Lightsail endpoint {endpoint} through the proxy {proxy}: {reason} (check {variable} and {NO_PROXY_VAR})"
    )]
    ProxyUnreachable {
        proxy: String,
        endpoint: String,
        variable: &'static str,
        reason: String,
    },
    /// `shown` is the value's host and port as far as they can be told, never its password.
    #[error(
        "the proxy setting {variable}{} is not a proxy URL: set it to http://[user:password@]host:port, or unset it",
        if .shown.is_empty() { String::new() } else { format!(" ({})", .shown) }
    )]
    ProxyInvalid {
        variable: &'static str,
        shown: String,
    },
    #[error(
        "the proxy {proxy} of {variable} answered in plain HTTP, not TLS: write its URL as http://{proxy}"
    )]
    ProxyNotTls {
        proxy: String,
        variable: &'static str,
    },
    #[error(
        "the TLS certificate of the Lightsail endpoint {endpoint} is not trusted ({reason}): if a private CA or a TLS-inspecting proxy signs it, name its PEM file in {AWS_CA_BUNDLE_VAR} or in {CA_BUNDLE_KEY} of your AWS profile"
    )]
    UntrustedCertificate { endpoint: String, reason: String },
    // The path may come from a profile, which nothing checks: shown without control characters.
    #[error("cannot read the CA bundle {} ({from}): {source}", one_line(&.path.to_string_lossy()))]
    CaBundleUnreadable {
        path: PathBuf,
        from: CaBundleFrom,
        source: std::io::Error,
    },
    #[error(
        "the CA bundle {} ({from}) holds no PEM certificate (-----BEGIN CERTIFICATE-----)", one_line(&.path.to_string_lossy())
    )]
    CaBundleEmpty { path: PathBuf, from: CaBundleFrom },
    #[error("the CA bundle {} ({from}) cannot be used: {reason}", one_line(&.path.to_string_lossy()))]
    CaBundleInvalid {
        path: PathBuf,
        from: CaBundleFrom,
        reason: String,
    },

    // ---- files ----------------------------------------------------------------------------------
    #[error("no cache directory to store credentials in: set HOME or {CACHE_DIR_VAR}")]
    NoCacheDir,
    #[error("cannot use the cache directory {}: {reason}", .dir.display())]
    CacheRefused { dir: PathBuf, reason: String },
    #[error(
        "gave up after {} s waiting for another docker-credential-lightsail process holding {} ({LOCK_TIMEOUT_VAR})", .after.as_secs_f32(), .path.display()
    )]
    LockTimeout { path: PathBuf, after: Duration },
    #[error("{context} {}: {source}", .path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    DockerConfig(String),
    #[error("no folder for the helper's configuration file: set HOME or {CONFIG_DIR_VAR}")]
    NoConfigDir,
    /// The helper's configuration file (or its folder) is not safe to trust or to write.
    #[error("cannot use {}: {reason}", .path.display())]
    ConfigFileRefused { path: PathBuf, reason: String },
    #[error("cannot use {}: {reason}; fix it or remove it", .path.display())]
    ConfigFileInvalid { path: PathBuf, reason: String },

    // ---- the clock --------------------------------------------------------------------------------
    #[error(
        "the system clock reads a date before 1970: set the date and time (or enable NTP), then try again"
    )]
    ClockBeforeEpoch,
}

/// Which setting named a CA bundle, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaBundleFrom {
    /// `AWS_CA_BUNDLE`.
    Env,
    /// `ca_bundle` in this profile of the AWS config file.
    Profile(String),
}

impl std::fmt::Display for CaBundleFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaBundleFrom::Env => f.write_str(AWS_CA_BUNDLE_VAR),
            CaBundleFrom::Profile(name) => write!(f, "{CA_BUNDLE_KEY} in AWS profile '{name}'"),
        }
    }
}

impl Error {
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// The exit code: 128 plus the signal's number for an interrupted command (as a shell
    /// reports one killed by it), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Interrupted { number, .. } => 128 + number,
            _ => 1,
        }
    }

    /// A failed write to standard output.
    pub fn stdout(source: std::io::Error) -> Self {
        Error::io("cannot write to", "standard output", source)
    }
}

/// Make a message from outside (an AWS error message) safe to show: one line, bounded length.
pub fn one_line(text: &str) -> String {
    const MAX: usize = 300;
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX)
        .collect();
    if text.chars().count() > MAX {
        line.push('…');
    }
    line.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_contract_strings_are_exact() {
        assert_eq!(
            Error::NotFound.to_string(),
            "credentials not found in native keychain"
        );
        assert_eq!(
            Error::MissingServerUrl.to_string(),
            "no credentials server URL"
        );
        assert_eq!(
            Error::MissingUsername.to_string(),
            "no credentials username"
        );
    }

    #[test]
    fn messages_name_variables_through_their_constants() {
        let timeout = Error::Timeout {
            region: Region::parse("us-east-1").unwrap(),
            after: Duration::from_secs(3),
        };
        assert_eq!(
            timeout.to_string(),
            "Lightsail in us-east-1 did not answer within 3 s (DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT)"
        );
        assert!(Error::NoCacheDir.to_string().ends_with(CACHE_DIR_VAR));
    }

    #[test]
    fn outside_text_is_one_bounded_line() {
        assert_eq!(one_line("a\nb\r\tc\u{1b}[31m\u{85}d "), "a b  c [31m d");
        let long = "x".repeat(1000);
        assert_eq!(one_line(&long).chars().count(), 301);
    }
}
