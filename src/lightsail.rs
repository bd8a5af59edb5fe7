//! The AWS SDK and its async runtime, and nothing else does async: the rest of the crate calls
//! the synchronous functions at the top (`fetch_login`, `register_image`, `resolve_region`),
//! each one bounded API round trip on a runtime made only for it.
//!
//! Every failure becomes a one-line `Error` built from error codes and modelled messages only:
//! the SDK's own `Debug` and error-context output carry raw response bodies, and the login
//! response holds the password.

use std::error::Error as StdError;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::imds::client::error::ImdsError;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileSet};
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_sdk_lightsail::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use aws_types::os_shim_internal::{Env, Fs};
use hickory_resolver::TokioResolver;
use serde::Serialize;
use tracing::debug;

use crate::cache::Login;
use crate::config::{
    AWS_ACCESS_KEY_ID_VAR, AWS_CONFIG_FILE_VAR, AWS_PROFILE_VAR, AWS_SECRET_ACCESS_KEY_VAR,
    AWS_SHARED_CREDENTIALS_FILE_VAR, Config, LOG_VAR, TIMEOUT_VAR,
};
use crate::error::{Error, Result, one_line};
use crate::registry::Region;
use crate::secret::Secret;

/// `CreateContainerServiceRegistryLogin` in `region`: the account's registry login.
pub fn fetch_login(config: &Config, region: &Region) -> Result<Login> {
    run_bounded(config, api_timeout(region, config), async {
        debug!("asking Lightsail for a registry login in {region}");
        Lightsail::connect(region, config)
            .await?
            .registry_login()
            .await
    })
}

/// `RegisterContainerImage`: registers a pushed image with a container service in `region`.
pub fn register_image(
    config: &Config,
    region: &Region,
    service: &str,
    label: &str,
    digest: &str,
) -> Result<ContainerImage> {
    run_bounded(config, api_timeout(region, config), async {
        Lightsail::connect(region, config)
            .await?
            .register_image(service, label, digest)
            .await
    })
}

/// `given` if there is one, else the region of the current AWS profile or environment
/// (`AWS_REGION`, the profile's `region`…); of the bound profile, for `configure --profile`.
pub fn resolve_region(config: &Config, given: Option<&Region>) -> Result<Region> {
    if let Some(region) = given {
        return Ok(region.clone());
    }
    let timeout = Error::RegionLookupTimeout {
        after: config.timeout,
    };
    let found = run_bounded(config, timeout, async {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
        if let Some(profile) = &config.bound_profile {
            loader = loader.profile_name(profile);
        }
        Ok(loader
            .load()
            .await
            .region()
            .map(|region| region.to_string()))
    })?;
    Region::parse(&found.ok_or(Error::NoRegion)?)
}

fn api_timeout(region: &Region, config: &Config) -> Error {
    Error::Timeout {
        region: region.clone(),
        after: config.timeout,
    }
}

/// Runs `work` on a fresh single-threaded runtime; `timeout` is the error when it takes longer
/// than the configured timeout.
fn run_bounded<T>(
    config: &Config,
    timeout: Error,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Error::io("cannot start the async runtime", "", err))?;
    // A backstop: the work keeps to `config.timeout` itself, and says what it was waiting for.
    runtime.block_on(async {
        tokio::time::timeout(config.timeout + Duration::from_secs(1), work)
            .await
            .unwrap_or(Err(timeout))
    })
}

/// Error codes that mean "these AWS credentials are wrong, unknown or expired".
const BAD_CREDENTIAL_CODES: &[&str] = &[
    "UnauthenticatedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "InvalidClientTokenId",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "ExpiredTokenException",
];

/// Timeouts within `budget`, with room for the standard three attempts.
fn timeouts(budget: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(budget.min(Duration::from_secs(5)))
        .operation_attempt_timeout(budget / 3)
        .operation_timeout(budget)
        .build()
}

/// An image registered with a container service, as `register --json` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerImage {
    pub image: String,
    pub digest: String,
    pub created_at: Option<i64>,
}

/// A Lightsail client for one region, with its credentials already resolved.
struct Lightsail {
    client: aws_sdk_lightsail::Client,
    region: Region,
    identity: String,
    timeout: Duration,
}

impl Lightsail {
    /// Loads the standard AWS configuration (profiles, SSO, assume-role, environment, IMDS) and
    /// resolves credentials once, so that a missing or broken identity is reported as such.
    async fn connect(region: &Region, config: &Config) -> Result<Lightsail> {
        // One budget for the whole fetch: resolving credentials, then the call and its retries.
        let deadline = tokio::time::Instant::now() + config.timeout;
        let profiles = profile_set(config).await;
        check_profile(config, Some(region), profiles.as_ref())?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .region(aws_config::Region::new(region.to_string()))
            .timeout_config(timeouts(config.timeout))
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some(profile) = &config.bound_profile {
            // The bound profile and nothing else: not the default chain, in which keys in the
            // environment come before any profile.
            loader = loader
                .profile_name(profile)
                .credentials_provider(profile_credentials(profile, region, config));
        }
        let sdk_config = loader.load().await;
        let identity = config.identity.description.clone();
        let provider = sdk_config
            .credentials_provider()
            .ok_or_else(|| no_credentials(config, ""))?;
        let credentials = tokio::time::timeout_at(deadline, provider.provide_credentials())
            .await
            .map_err(|_| {
                Error::AwsCredentials(format!(
                    "no credentials from {identity} within {} s ({TIMEOUT_VAR}): check the profile's credential_process, SSO or role settings",
                    config.timeout.as_secs()
                ))
            })?
            .map_err(|err| credentials_error(err, config, profiles.as_ref()))?;
        debug!(
            "resolved AWS credentials {} from {identity}",
            credentials.access_key_id()
        );
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let client_config = aws_sdk_lightsail::config::Builder::from(&sdk_config)
            .credentials_provider(credentials)
            .timeout_config(timeouts(left.max(Duration::from_millis(100))))
            .build();
        Ok(Lightsail {
            client: aws_sdk_lightsail::Client::from_conf(client_config),
            region: region.clone(),
            identity,
            timeout: config.timeout,
        })
    }

    /// `CreateContainerServiceRegistryLogin`: the registry login of this account and region.
    async fn registry_login(&self) -> Result<Login> {
        let output = self
            .client
            .create_container_service_registry_login()
            .send()
            .await
            .map_err(|err| self.api_error(err, "CreateContainerServiceRegistryLogin"))?;
        let login = output
            .registry_login()
            .ok_or_else(|| self.bad_response("no registryLogin in the answer"))?;
        let field = |value: Option<&str>, name: &str| {
            value
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .ok_or_else(|| self.bad_response(&format!("the login has no {name}")))
        };
        let expires_at = login
            .expires_at()
            .ok_or_else(|| self.bad_response("the login has no expiresAt"))?
            .secs();
        Ok(Login {
            registry: field(login.registry(), "registry")?.to_ascii_lowercase(),
            username: field(login.username(), "username")?,
            secret: Secret::new(field(login.password(), "password")?),
            expires_at: u64::try_from(expires_at).unwrap_or(0),
        })
    }

    async fn register_image(
        &self,
        service: &str,
        label: &str,
        digest: &str,
    ) -> Result<ContainerImage> {
        let output = self
            .client
            .register_container_image()
            .service_name(service)
            .label(label)
            .digest(digest)
            .send()
            .await
            .map_err(|err| match self.api_error(err, "RegisterContainerImage") {
                Error::Api { code, .. } if code == "NotFoundException" => Error::Api {
                    region: self.region.clone(),
                    code,
                    message: format!(
                        "no container service named '{service}' in {}: check the name, or pass --region",
                        self.region
                    ),
                },
                other => other,
            })?;
        let image = output
            .container_image()
            .ok_or_else(|| self.bad_response("no containerImage in the answer"))?;
        Ok(ContainerImage {
            image: image
                .image()
                .map(str::to_string)
                .ok_or_else(|| self.bad_response("the image has no name"))?,
            digest: image.digest().unwrap_or(digest).to_string(),
            created_at: image.created_at().map(|t| t.secs()),
        })
    }

    fn bad_response(&self, reason: &str) -> Error {
        Error::BadResponse {
            region: self.region.clone(),
            reason: reason.to_string(),
        }
    }

    fn api_error<E, R>(&self, err: SdkError<E, R>, action: &'static str) -> Error
    where
        E: ProvideErrorMetadata + StdError + 'static,
        R: std::fmt::Debug + 'static,
    {
        let region = self.region.clone();
        match &err {
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("UnknownError").to_string();
                let message = one_line(service.err().message().unwrap_or("no message"));
                if code == "AccessDeniedException" {
                    Error::AccessDenied {
                        region,
                        code,
                        message,
                        identity: self.identity.clone(),
                        action,
                    }
                } else if BAD_CREDENTIAL_CODES.contains(&code.as_str()) {
                    Error::BadAwsCredentials {
                        identity: self.identity.clone(),
                        code: format!("{code}: {message}"),
                    }
                } else {
                    Error::Api {
                        region,
                        code,
                        message,
                    }
                }
            }
            SdkError::TimeoutError(_) => Error::Timeout {
                region,
                after: self.timeout,
            },
            SdkError::DispatchFailure(failure) if failure.is_timeout() => Error::Timeout {
                region,
                after: self.timeout,
            },
            SdkError::DispatchFailure(_) => Error::Unreachable {
                region,
                reason: innermost_cause(&err),
            },
            SdkError::ResponseError(_) => self.bad_response("the answer could not be read"),
            _ => self.bad_response("the request could not be made"),
        }
    }
}

/// The deepest cause's message: for connection failures, the OS's own words
/// ("Connection refused (os error 111)"). It never holds a request or response body.
fn innermost_cause(err: &(dyn StdError + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    one_line(&cause.to_string())
}

/// The credentials of AWS `profile` only, resolved as the standard chain would resolve that
/// profile (keys, SSO, assume-role, credential_process), on the same HTTP client and budget.
fn profile_credentials(
    profile: &str,
    region: &Region,
    config: &Config,
) -> ProfileFileCredentialsProvider {
    let provider_config = ProviderConfig::without_region()
        .with_region(Some(aws_config::Region::new(region.to_string())))
        .with_http_client(https_client())
        .with_behavior_version(Some(BehaviorVersion::latest()))
        .with_timeout_config(timeouts(config.timeout))
        .with_retry_config(RetryConfig::standard().with_max_attempts(3));
    ProfileFileCredentialsProvider::builder()
        .configure(&provider_config)
        .profile_name(profile)
        .build()
}

/// The profiles of the AWS config and credentials files, read by aws-config's own parser (the
/// files `config.aws` names, which are the ones aws-config reads). `None` when they cannot be
/// parsed: resolving credentials then reports that in aws-config's words.
async fn profile_set(config: &Config) -> Option<ProfileSet> {
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
fn named_profile(config: &Config) -> Option<&str> {
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
fn check_profile(
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
    let (profile, config_file, credentials_file) = (
        profile.to_string(),
        config.aws.config_file.clone(),
        config.aws.credentials_file.clone(),
    );
    Err(match (&config.bound_in, region) {
        (Some(bindings), Some(region)) => Error::BoundProfileNotFound {
            profile,
            config_file,
            credentials_file,
            bindings: bindings.clone(),
            region: region.clone(),
        },
        _ => Error::ProfileNotFound {
            profile,
            config_file,
            credentials_file,
        },
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
        check_profile(&bound, None, profile_set(&bound).await.as_ref())
    })
}

/// "No AWS credentials found", with what to do about it for this configuration.
fn no_credentials(config: &Config, also: &str) -> Error {
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

fn credentials_error(
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
fn causes(err: &(dyn StdError + 'static)) -> String {
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
fn caused_by<T: StdError + 'static>(err: &(dyn StdError + 'static)) -> bool {
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
fn sso_profile<'a>(config: &'a Config, profiles: Option<&ProfileSet>) -> Option<&'a str> {
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
fn sso_session_failed(err: &CredentialsError) -> bool {
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

/// HTTPS with rustls on ring (the SDK's default, aws-lc, costs megabytes and start-up time),
/// resolving names in Rust.
fn https_client() -> aws_sdk_lightsail::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_with_resolver(SystemDns)
}

/// Name resolution from `/etc/hosts` and the servers in `/etc/resolv.conf`, in Rust: the release
/// binary is linked statically (it starts as fast as a process can), and a static glibc's
/// `getaddrinfo` would load NSS modules built for another glibc.
#[derive(Debug, Clone, Copy)]
struct SystemDns;

impl ResolveDns for SystemDns {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        DnsFuture::new(async move {
            let resolver = TokioResolver::builder_tokio()
                .and_then(|builder| builder.build())
                .map_err(ResolveDnsError::new)?;
            let found = resolver.lookup_ip(name).await.map_err(|err| {
                let why = if err.is_no_records_found() || err.is_nx_domain() {
                    "no such host, or no DNS server answered".to_string()
                } else {
                    err.to_string()
                };
                ResolveDnsError::new(format!("cannot resolve {name}: {why}"))
            })?;
            Ok(found.iter().collect())
        })
    }
}
