//! AWS credentials as the helper needs them: a bound profile's alone, the AWS files read by
//! aws-config's own parser, and credential failures named by their real cause (a missing
//! profile, no credentials anywhere, an expired SSO session), the details in the debug log.

use std::error::Error as StdError;
use std::io::Read;

use aws_config::BehaviorVersion;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::imds::client::error::ImdsError;
use aws_config::meta::ProviderChainError;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileSet};
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};
use tracing::debug;

use crate::cache::Cache;
use crate::config::{
    AWS_ACCESS_KEY_ID_VAR, AWS_CONFIG_FILE_VAR, AWS_PROFILE_VAR, AWS_SECRET_ACCESS_KEY_VAR,
    AWS_SHARED_CREDENTIALS_FILE_VAR, Config, LOG_VAR, TIMEOUT_VAR,
};
use crate::error::{Error, Result, one_line};
use crate::files;
use crate::registry::Region;

use super::{run_bounded, timeouts};

/// The credentials of AWS `profile` only, resolved as the standard chain would resolve that
/// profile (keys, SSO, assume-role, credential_process), on the same HTTP client and budget.
pub(super) fn profile_credentials(
    profile: &str,
    region: &Region,
    config: &Config,
    http: aws_sdk_lightsail::config::SharedHttpClient,
) -> ProfileFileCredentialsProvider {
    ProfileFileCredentialsProvider::builder()
        .configure(&provider_config(region, config, http))
        .profile_name(profile)
        .build()
}

/// What credential providers are built with: the region, the HTTP client and the budget.
fn provider_config(
    region: &Region,
    config: &Config,
    http: aws_sdk_lightsail::config::SharedHttpClient,
) -> ProviderConfig {
    ProviderConfig::without_region()
        .with_region(Some(aws_config::Region::new(region.to_string())))
        .with_http_client(http)
        .with_behavior_version(Some(BehaviorVersion::latest()))
        .with_timeout_config(timeouts(config.timeout))
        .with_retry_config(RetryConfig::standard().with_max_attempts(3))
}

/// The file in the cache folder that remembers when the instance metadata service last did not
/// answer (Unix seconds): off EC2, with nothing at its address, each probe costs a second.
const IMDS_SILENT_FILE: &str = "imds-unanswered";
/// How long that silence is believed: within it, the metadata service is not asked again.
const IMDS_SILENT_FOR: u64 = 60;

/// Whether the instance metadata service did not answer less than `IMDS_SILENT_FOR` ago.
pub(super) fn imds_recently_silent(config: &Config, now: u64) -> bool {
    let Some(path) = config
        .cache_dir
        .as_ref()
        .map(|dir| dir.join(IMDS_SILENT_FILE))
    else {
        return false;
    };
    let Ok(mut file) = files::open_no_follow(&path) else {
        return false;
    };
    let trusted = file
        .metadata()
        .is_ok_and(|meta| files::refusal(&meta, files::Kind::File).is_none());
    let mut text = String::new();
    if !trusted || (&mut file).take(32).read_to_string(&mut text).is_err() {
        return false;
    }
    match text.trim().parse::<u64>() {
        Ok(at) if at <= now && now < at + IMDS_SILENT_FOR => {
            debug!(
                "not asking the instance metadata service: it did not answer {} s ago",
                now - at
            );
            true
        }
        _ => false,
    }
}

/// Remembers that the instance metadata service did not answer at `now`, in the cache folder if
/// it is a safe one (nothing is written elsewhere).
pub(super) fn remember_imds_silence(config: &Config, now: u64) {
    let Some(cache) = Cache::open_or_log(config.cache_dir.as_deref()) else {
        return;
    };
    let path = cache.dir().join(IMDS_SILENT_FILE);
    match files::write_atomic(&path, format!("{now}\n").as_bytes(), None) {
        Ok(()) => debug!(
            "the instance metadata service did not answer: not asking it again for {IMDS_SILENT_FOR} s"
        ),
        Err(err) => debug!("cannot write {}: {err}", path.display()),
    }
}

/// Whether the standard chain's instance-metadata step failed for want of an answer (a timeout,
/// or nothing at the address), as opposed to an answer without credentials.
pub(super) fn imds_unanswered(err: &CredentialsError) -> bool {
    let Some(chain) = err
        .source()
        .and_then(|source| source.downcast_ref::<ProviderChainError<CredentialsError>>())
    else {
        return false;
    };
    // aws-config's error for it is private: its message is what there is to go by.
    chain.attempts().iter().any(|attempt| {
        attempt.name() == "Ec2InstanceMetadata"
            && causes(attempt.error()).contains("could not communicate with IMDS")
    })
}

/// The standard credential chain (environment, profile, web identity, container) without its
/// last step, the instance metadata service, for the minute after it did not answer. Every
/// other source is asked as always, so credentials that appear meanwhile are used at once.
pub(super) fn chain_without_imds(
    region: &Region,
    config: &Config,
    http: aws_sdk_lightsail::config::SharedHttpClient,
) -> CredentialsProviderChain {
    let conf = provider_config(region, config, http);
    CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else(
        "Profile",
        ProfileFileCredentialsProvider::builder()
            .configure(&conf)
            .build(),
    )
    .or_else(
        "WebIdentityToken",
        WebIdentityTokenCredentialsProvider::builder()
            .configure(&conf)
            .build(),
    )
    .or_else(
        "EcsContainer",
        EcsCredentialsProvider::builder().configure(&conf).build(),
    )
}

/// The profiles of the AWS config and credentials files, read by aws-config's own parser (the
/// files `config.aws` names, which are the ones aws-config reads). `None` when they cannot be
/// parsed: resolving credentials then reports that in aws-config's words.
pub(super) async fn profile_set(config: &Config) -> Option<ProfileSet> {
    // The default files, located through these two variables as aws-config locates them: a
    // missing file is an empty one.
    let (config_file, credentials_file) = (
        config.aws.config_file.to_string_lossy(),
        config.aws.credentials_file.to_string_lossy(),
    );
    let env = Env::from_slice(&[
        (AWS_CONFIG_FILE_VAR, &config_file),
        (AWS_SHARED_CREDENTIALS_FILE_VAR, &credentials_file),
    ]);
    match aws_config::profile::load(&Fs::real(), &env, &EnvConfigFiles::default(), None).await {
        Ok(profiles) => Some(profiles),
        Err(err) => {
            debug!("cannot parse the AWS config files: {err}");
            None
        }
    }
}

/// The profile whose credentials this run must find: the bound one, or the one `AWS_PROFILE`
/// names when no keys in the environment come first. `None`: the standard chain's `default`,
/// which may be missing (the chain then goes on to web identity, containers and instances).
pub(super) fn named_profile(config: &Config) -> Option<&str> {
    config.bound_profile.as_deref().or_else(|| {
        config
            .aws
            .profile
            .as_deref()
            .filter(|_| !config.aws.keys_in_env)
    })
}

/// A named profile that is in neither AWS file is an error that says so, before any attempt.
/// `region` is the one being fetched, for the rebind hint of a binding's error.
pub(super) fn check_profile(
    config: &Config,
    region: Option<&Region>,
    profiles: Option<&ProfileSet>,
) -> Result<()> {
    let (Some(profile), Some(profiles)) = (named_profile(config), profiles) else {
        return Ok(());
    };
    if profiles.get_profile(profile).is_some() {
        return Ok(());
    }
    let missing = Error::ProfileNotFound {
        profile: profile.to_string(),
        config_file: config.aws.config_file.clone(),
        credentials_file: config.aws.credentials_file.clone(),
    };
    Err(match (&config.bound_in, region) {
        (Some(bindings), Some(region)) => Error::BoundProfileNotFound {
            missing: Box::new(missing),
            bindings: bindings.clone(),
            region: region.clone(),
        },
        _ => missing,
    })
}

/// `configure --profile`: a one-line error when `profile` is in neither AWS file.
pub fn check_profile_exists(config: &Config, profile: &str) -> Result<()> {
    let bound = config.bound_to(profile, None);
    let timeout = Error::AwsCredentials(format!(
        "could not read the AWS config files within {} s ({TIMEOUT_VAR})",
        config.timeout.as_secs()
    ));
    run_bounded(config, timeout, async {
        super::check_aws_files(config)?;
        check_profile(&bound, None, profile_set(&bound).await.as_ref())
    })
}

/// "No AWS credentials found", with what to do about it for this configuration.
pub(super) fn no_credentials(config: &Config, also: &str) -> Error {
    let hint = match named_profile(config) {
        Some(profile) => format!(
            "profile '{profile}' has no keys, SSO, role or credential_process settings: run `aws configure --profile {profile}` or `aws configure sso --profile {profile}`"
        ),
        None => format!(
            "set {AWS_PROFILE_VAR}, run `aws configure` or `aws sso login`, or export {AWS_ACCESS_KEY_ID_VAR} and {AWS_SECRET_ACCESS_KEY_VAR}"
        ),
    };
    Error::NoAwsCredentials {
        identity: config.identity.description.clone(),
        hint: format!("{hint}{also}"),
    }
}

pub(super) fn credentials_error(
    err: CredentialsError,
    config: &Config,
    profiles: Option<&ProfileSet>,
) -> Error {
    let identity = &config.identity.description;
    if let Some(profile) = sso_profile(config, profiles)
        && sso_session_failed(&err)
    {
        debug!("SSO credentials failed: {}", causes(&err));
        return Error::SsoSessionExpired {
            profile: profile.to_string(),
        };
    }
    match &err {
        CredentialsError::CredentialsNotLoaded(_) => {
            debug!("no credentials: {}", causes(&err));
            no_credentials(config, "")
        }
        CredentialsError::ProviderTimedOut(_) => {
            Error::AwsCredentials(format!("timed out resolving credentials from {identity}"))
        }
        // Something answered on the instance-metadata address, but not with credentials: for
        // the user that is no credentials; what it answered is for the debug log.
        _ if caused_by::<ImdsError>(&err) => {
            debug!(
                "the instance metadata service gave no credentials: {}",
                causes(&err)
            );
            no_credentials(
                config,
                &format!(
                    " (the instance metadata service gave none; {LOG_VAR}=debug shows its answer)"
                ),
            )
        }
        _ => {
            debug!("credentials failed: {}", causes(&err));
            let cause = err.source().map(|s| s.to_string()).unwrap_or_default();
            Error::AwsCredentials(one_line(&format!("{identity}: {err}: {cause}")))
        }
    }
}

/// Every message in `err`'s chain of causes, for the debug log (Display only: `Debug` forms can
/// hold raw response bodies).
pub(super) fn causes(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(current) = cause {
        text.push_str(": ");
        text.push_str(&current.to_string());
        cause = current.source();
    }
    one_line(&text)
}

/// Whether `T` is among the causes of `err`.
pub(super) fn caused_by<T: StdError + 'static>(err: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(current) = cause {
        if current.is::<T>() {
            return true;
        }
        cause = current.source();
    }
    false
}

/// The profile whose credentials come from IAM Identity Center (SSO), if that is this run's.
pub(super) fn sso_profile<'a>(
    config: &'a Config,
    profiles: Option<&ProfileSet>,
) -> Option<&'a str> {
    let name = named_profile(config).or_else(|| (!config.aws.keys_in_env).then_some("default"))?;
    let profile = profiles?.get_profile(name)?;
    ["sso_session", "sso_start_url"]
        .iter()
        .any(|key| profile.get(key).is_some())
        .then_some(name)
}

/// Whether an SSO profile failed for want of a valid session: an expired or missing cached token
/// (aws-config's error types for it are private, so this goes by their messages, pinned by the
/// suite's SSO tests), or the SSO service refusing the token.
pub(super) fn sso_session_failed(err: &CredentialsError) -> bool {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = cause {
        let text = current.to_string();
        if ["SSO token", "/sso/cache/", "UnauthorizedException"]
            .iter()
            .any(|sign| text.contains(sign))
        {
            return true;
        }
        cause = current.source();
    }
    false
}
