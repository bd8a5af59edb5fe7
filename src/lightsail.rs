//! The AWS SDK and its async runtime, and nothing else does async: the rest of the crate calls
//! the synchronous functions at the top (`fetch_login`, `register_image`, `resolve_region`),
//! each one bounded API round trip on a runtime made only for it.
//!
//! Every failure becomes a one-line `Error` built from error codes and modelled messages only:
//! the SDK's own `Debug` and error-context output carry raw response bodies, and the login
//! response holds the password.
//!
//! The HTTP client and the network's errors are in `network`, credentials in `credentials`.

mod credentials;
mod network;
mod probe;

use std::collections::HashMap;
use std::error::Error as StdError;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_lightsail::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lightsail::types::{
    Container, ContainerServiceDeployment, ContainerServiceEndpoint, EndpointRequest,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use serde::Serialize;
use tracing::debug;

use crate::cache::Login;
use crate::config::{Config, TIMEOUT_VAR};
use crate::error::{Error, Result, one_line};
use crate::registry::{Region, Registry};
use crate::secret::Secret;

pub use credentials::check_profile_exists;
use credentials::*;
use network::*;
pub use probe::{NetworkPath, ProbeFailure, RegistryAnswer, probe_registry, registry_proxy};

/// `CreateContainerServiceRegistryLogin` in `region`: the account's registry login.
pub fn fetch_login(config: &Config, region: &Region) -> Result<Login> {
    run_bounded(config, api_timeout(region, config), async {
        debug!("asking Lightsail for a registry login in {region}");
        Lightsail::connect(region, config, Budget::Shared)
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
        Lightsail::connect(region, config, Budget::Shared)
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
        check_aws_files(config)?;
        let profiles = profile_set(config).await;
        Ok(sdk_loader(config, https_client(config, profiles.as_ref())?)
            .load()
            .await
            .region()
            .map(|region| region.to_string()))
    })?;
    let found = found.ok_or(Error::NoRegion)?;
    Region::parse(&found).map_err(|_| Error::InvalidRegionFrom {
        value: crate::error::one_line(&found),
        from: region_source(config, &found),
    })
}

/// Which setting gave aws-config `region`: the variable, if it holds that value, else the
/// profile (aws-config reads the variables first).
pub fn region_source(config: &Config, region: &str) -> String {
    match &config.aws.region_var {
        Some((name, value)) if value.trim() == region.trim() => (*name).to_string(),
        _ => format!(
            "region of AWS profile '{}' in {}",
            config.profile_name(),
            config.aws.config_file.display()
        ),
    }
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

/// aws-config's loader as every API call of the helper starts from: its HTTPS client, the bound
/// profile if there is one, and the retries the helper chooses (left to aws-config, an invalid
/// `AWS_MAX_ATTEMPTS` or `AWS_RETRY_MODE`, or `max_attempts` or `retry_mode` in the profile,
/// would make it panic).
fn sdk_loader(
    config: &Config,
    http: aws_sdk_lightsail::config::SharedHttpClient,
) -> aws_config::ConfigLoader {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    match &config.bound_profile {
        Some(profile) => loader.profile_name(profile),
        None => loader,
    }
}

/// The most an AWS config file or CA bundle may hold: real ones hold kilobytes.
const MAX_AWS_FILE_BYTES: u64 = 16 << 20;

/// Why `path` cannot be read whole, and quickly, if it cannot. aws-config and the TLS setup read
/// these files whole and synchronously, past any timeout: a FIFO would block for ever, and a
/// device such as `/dev/zero` would fill memory. A missing file or a folder is for its reader
/// to report, in the system's words.
fn not_a_readable_file(path: &std::path::Path) -> Option<std::io::Error> {
    let metadata = std::fs::metadata(path).ok().filter(|m| !m.is_dir())?;
    if !metadata.is_file() {
        Some(std::io::Error::other(
            "it is not a regular file (a FIFO or a device would block or never end)",
        ))
    } else if metadata.len() > MAX_AWS_FILE_BYTES {
        Some(std::io::Error::other("it is larger than 16 MiB"))
    } else {
        None
    }
}

/// The AWS config and shared credentials files, before aws-config reads them.
fn check_aws_files(config: &Config) -> Result<()> {
    for (path, context) in [
        (&config.aws.config_file, "cannot read the AWS config file"),
        (
            &config.aws.credentials_file,
            "cannot read the AWS shared credentials file",
        ),
    ] {
        if let Some(why) = not_a_readable_file(path) {
            return Err(Error::io(context, path.clone(), why));
        }
    }
    Ok(())
}

/// Where Lightsail calls go: the endpoint of the environment as `config` read (and checked) it,
/// else what aws-config found in the AWS profile (its `services` section or `endpoint_url`),
/// set explicitly either way. A blank one is none, as a blank variable is: the SDK would panic
/// on it. `None`: the regional endpoint.
fn lightsail_endpoint(config: &Config, sdk_config: &aws_config::SdkConfig) -> Option<String> {
    if let Some(url) = &config.network.endpoint_url {
        return Some(url.clone());
    }
    // The key the Lightsail client's own `From<&SdkConfig>` looks up.
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("Lightsail")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk_config
        .service_config()
        .and_then(|service_config| service_config.load_config(key))
        .or_else(|| sdk_config.endpoint_url().map(str::to_string))
        .filter(|url| !url.trim().is_empty())
}

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

/// How the configured timeout bounds a client's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Budget {
    /// One budget for resolving credentials and the one call after it (a protocol action).
    Shared,
    /// Each call its own, whenever it is made (the calls of a long `push`).
    PerCall,
}

/// The credentials resolved when connecting, handed out once; then the provider's own, which
/// refreshes what expires (SSO, assume-role, `credential_process`) where a snapshot would not.
/// The client's identity cache sits in front of it and asks only when it needs to.
#[derive(Debug)]
struct FirstThenProvider {
    first: std::sync::Mutex<Option<aws_credential_types::Credentials>>,
    provider: aws_credential_types::provider::SharedCredentialsProvider,
}

impl ProvideCredentials for FirstThenProvider {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let first = self
            .first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let credentials = match first {
                Some(credentials) => credentials,
                None => self.provider.provide_credentials().await?,
            };
            match unsignable(&credentials) {
                None => Ok(credentials),
                Some(field) => Err(CredentialsError::invalid_configuration(format!(
                    "the {field} holds a character no HTTP header can carry"
                ))),
            }
        })
    }
}

/// The keys of the profile this run uses, and of the profiles it takes its credentials from
/// (`source_profile`), must fit in a header too: aws-config signs its own calls (STS for a role)
/// with them before the helper sees any credentials.
fn check_profile_keys(
    config: &Config,
    profiles: Option<&aws_config::profile::ProfileSet>,
) -> Result<()> {
    let (Some(profiles), Some(mut name)) = (
        profiles,
        named_profile(config).or_else(|| (!config.aws.keys_in_env).then_some("default")),
    ) else {
        return Ok(());
    };
    // A chain of roles is short; a loop of `source_profile`s is aws-config's to report.
    for _ in 0..8 {
        let Some(profile) = profiles.get_profile(name) else {
            break;
        };
        for key in ["aws_access_key_id", "aws_session_token"] {
            if profile
                .get(key)
                .is_some_and(|value| http::HeaderValue::from_str(value).is_err())
            {
                return Err(Error::AwsCredentials(format!(
                    "{key} of AWS profile '{}' ({} or {}) holds a character no HTTP header can carry (a control character): check the file",
                    one_line(name),
                    config.aws.config_file.display(),
                    config.aws.credentials_file.display()
                )));
            }
        }
        match profile.get("source_profile") {
            Some(source) if source != name => name = source,
            _ => break,
        }
    }
    Ok(())
}

/// Which part of `credentials`, if any, cannot go into a request's headers (the access key id
/// goes into `Authorization`, the session token into its own): the SDK's signer panics on one
/// that holds a control character.
fn unsignable(credentials: &aws_credential_types::Credentials) -> Option<&'static str> {
    let fits = |value: &str| http::HeaderValue::from_str(value).is_ok();
    if !fits(credentials.access_key_id()) {
        Some("access key id")
    } else if !credentials.session_token().is_none_or(fits) {
        Some("session token")
    } else {
        None
    }
}

/// A Lightsail client for one region, with its credentials already resolved.
struct Lightsail {
    client: aws_sdk_lightsail::Client,
    region: Region,
    identity: String,
    timeout: Duration,
    route: Route,
    /// The CA bundle trusted beside the system's roots, and the setting that named it.
    ca_bundle: Option<String>,
    /// The `Date` of the last answer, for `doctor`'s clock check.
    server_date: probe::DateRecorder,
    /// What gave the credentials ("environment variables", "SSO", "instance role"…).
    credential_source: Option<&'static str>,
}

impl Lightsail {
    /// Loads the standard AWS configuration (profiles, SSO, assume-role, environment, IMDS) and
    /// resolves credentials once, so that a missing or broken identity is reported as such.
    async fn connect(region: &Region, config: &Config, budget: Budget) -> Result<Lightsail> {
        // One budget for the whole fetch: resolving credentials, then the call and its retries.
        let deadline = tokio::time::Instant::now() + config.timeout;
        let route = Route::new(config, region);
        route.check_setting(config)?;
        match &route.proxy {
            Some(proxy) => debug!(
                "Lightsail endpoint {} through the proxy {proxy}",
                route.endpoint
            ),
            None => debug!("Lightsail endpoint {}, no proxy", route.endpoint),
        }
        check_aws_files(config)?;
        let profiles = profile_set(config).await;
        check_profile(config, Some(region), profiles.as_ref())?;
        check_profile_keys(config, profiles.as_ref())?;
        let http = https_client(config, profiles.as_ref())?;
        let mut loader = sdk_loader(config, http.clone())
            .region(aws_config::Region::new(region.to_string()))
            .timeout_config(timeouts(config.timeout));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let mut imds_asked = false;
        if let Some(profile) = &config.bound_profile {
            // The bound profile and nothing else: not the default chain, in which keys in the
            // environment come before any profile.
            loader =
                loader.credentials_provider(profile_credentials(profile, region, config, http));
        } else if imds_recently_silent(config, now) {
            loader = loader.credentials_provider(chain_without_imds(region, config, http));
        } else {
            imds_asked = true;
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
            .map_err(|err| {
                if imds_asked && imds_unanswered(&err) {
                    remember_imds_silence(config, now);
                }
                credentials_error(err, config, profiles.as_ref())
            })?;
        if let Some(field) = unsignable(&credentials) {
            return Err(Error::AwsCredentials(format!(
                "{identity}: the {field} holds a character no HTTP header can carry (a control character): check where it is set"
            )));
        }
        debug!(
            "resolved AWS credentials {} from {identity}",
            credentials.access_key_id()
        );
        let credential_source = probe::credential_source(&credentials);
        let server_date = probe::DateRecorder::default();
        let call_budget = match budget {
            Budget::Shared => deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .max(Duration::from_millis(100)),
            Budget::PerCall => config.timeout,
        };
        let credentials = FirstThenProvider {
            first: std::sync::Mutex::new(Some(credentials)),
            provider: provider.clone(),
        };
        let mut client_config = aws_sdk_lightsail::config::Builder::from(&sdk_config)
            .credentials_provider(credentials)
            .timeout_config(timeouts(call_budget))
            .interceptor(server_date.clone());
        client_config.set_endpoint_url(lightsail_endpoint(config, &sdk_config));
        let client_config = client_config.build();
        Ok(Lightsail {
            client: aws_sdk_lightsail::Client::from_conf(client_config),
            region: region.clone(),
            identity,
            timeout: config.timeout,
            route,
            ca_bundle: ca_bundle(config, profiles.as_ref())
                .map(|bundle| format!("{} ({})", bundle.path.display(), bundle.from)),
            server_date,
            credential_source,
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
        // The host decides where Docker sends this password and what lands in config.json: it
        // must be a registry host of the region asked for, or nothing is written or pushed.
        let answered = field(login.registry(), "registry")?;
        let registry = Registry::parse(&answered)
            .filter(|registry| registry.region == self.region)
            .ok_or_else(|| {
                self.bad_response(&format!(
                    "the login names the registry {:?}, which is not a registry host of {}; refusing it",
                    one_line(&answered),
                    self.region
                ))
            })?;
        Ok(Login {
            registry: registry.host,
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
            .map_err(|err| self.service_error(err, "RegisterContainerImage", service))?;
        let image = output
            .container_image()
            .ok_or_else(|| self.bad_response("no containerImage in the answer"))?;
        Ok(ContainerImage {
            image: image
                .image()
                .map(one_line)
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

    fn api_error<E>(&self, err: SdkError<E, HttpResponse>, action: &'static str) -> Error
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        let region = self.region.clone();
        if let Some(refusal) = err.raw_response().and_then(|r| self.route.proxy_answer(r)) {
            return refusal;
        }
        match &err {
            SdkError::ServiceError(service) => {
                let code = one_line(service.err().code().unwrap_or("UnknownError"));
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
            SdkError::DispatchFailure(_) => self.route.dispatch_error(&err, region),
            SdkError::ResponseError(_) => self.bad_response("the answer could not be read"),
            _ => self.bad_response("the request could not be made"),
        }
    }
}

/// A Lightsail client for one region on a runtime of its own, for a command that makes several
/// calls (`push`): credentials are resolved when connecting and refreshed as they expire, and
/// each call is bounded by the whole timeout. Every text it returns is one safe line.
pub struct Session {
    runtime: tokio::runtime::Runtime,
    lightsail: Lightsail,
}

/// A container service as `push` needs it: its state and deployments.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub state: String,
    pub current: Option<Deployment>,
    pub next: Option<Deployment>,
}

/// One deployment of a container service.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub version: i32,
    /// ACTIVATING, ACTIVE, INACTIVE or FAILED (or what else Lightsail says, as one line).
    pub state: String,
    containers: HashMap<String, Container>,
    public_endpoint: Option<ContainerServiceEndpoint>,
}

impl Deployment {
    /// Its containers' names, sorted, each as one safe line.
    pub fn container_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.containers.keys().map(|name| one_line(name)).collect();
        names.sort_unstable();
        names
    }

    pub fn has_container(&self, name: &str) -> bool {
        self.containers.contains_key(name)
    }
}

impl Session {
    pub fn connect(config: &Config, region: &Region) -> Result<Session> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| Error::io("cannot start the async runtime", "", err))?;
        let timeout = config.timeout + Duration::from_secs(1);
        let lightsail = runtime.block_on(async {
            tokio::time::timeout(timeout, Lightsail::connect(region, config, Budget::PerCall))
                .await
                .unwrap_or(Err(api_timeout(region, config)))
        })?;
        Ok(Session { runtime, lightsail })
    }

    pub fn region(&self) -> &Region {
        &self.lightsail.region
    }

    /// The endpoint, proxy and CA bundle the calls use.
    pub fn network_path(&self) -> NetworkPath {
        let route = &self.lightsail.route;
        NetworkPath {
            endpoint: route.endpoint.clone(),
            proxy: route.proxy.clone().map(|proxy| (proxy, route.proxy_var)),
            ca_bundle: self.lightsail.ca_bundle.clone(),
        }
    }

    /// What gave the credentials: "environment variables", "SSO", "instance role"…
    pub fn credential_source(&self) -> Option<&'static str> {
        self.lightsail.credential_source
    }

    /// The `Date` of Lightsail's last answer, in Unix seconds.
    pub fn server_date(&self) -> Option<i64> {
        *self.lightsail.server_date.0.lock().ok()?
    }

    pub fn registry_login(&self) -> Result<Login> {
        self.call(self.lightsail.registry_login())
    }

    pub fn register_image(
        &self,
        service: &str,
        label: &str,
        digest: &str,
    ) -> Result<ContainerImage> {
        self.call(self.lightsail.register_image(service, label, digest))
    }

    /// `GetContainerServices` for one service.
    pub fn service(&self, name: &str) -> Result<Service> {
        self.call(self.lightsail.service(name))
    }

    /// `CreateContainerServiceDeployment`: the service's current deployment, every container,
    /// its command, environment and ports, and the public endpoint with its health check, with
    /// only `container`'s image changed to `image`. Returns the new deployment.
    pub fn deploy(&self, service: &Service, container: &str, image: &str) -> Result<Deployment> {
        self.call(self.lightsail.deploy(service, container, image))
    }

    fn call<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let lightsail = &self.lightsail;
        self.runtime.block_on(async {
            tokio::time::timeout(lightsail.timeout + Duration::from_secs(1), work)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::Timeout {
                        region: lightsail.region.clone(),
                        after: lightsail.timeout,
                    })
                })
        })
    }
}

impl Lightsail {
    async fn service(&self, name: &str) -> Result<Service> {
        let output = self
            .client
            .get_container_services()
            .service_name(name)
            .send()
            .await
            .map_err(|err| self.service_error(err, "GetContainerServices", name))?;
        let service = output
            .container_services()
            .iter()
            .find(|service| service.container_service_name() == Some(name))
            .ok_or_else(|| self.bad_response("the answer does not describe the service"))?;
        let deployment = |deployment: Option<&ContainerServiceDeployment>| {
            deployment.map(|deployment| Deployment {
                version: deployment.version().unwrap_or(0),
                state: deployment
                    .state()
                    .map(|state| one_line(state.as_str()))
                    .unwrap_or_default(),
                containers: deployment.containers().cloned().unwrap_or_default(),
                public_endpoint: deployment.public_endpoint().cloned(),
            })
        };
        Ok(Service {
            name: name.to_string(),
            state: service
                .state()
                .map(|state| one_line(state.as_str()))
                .unwrap_or_default(),
            current: deployment(service.current_deployment()),
            next: deployment(service.next_deployment()),
        })
    }

    async fn deploy(&self, service: &Service, container: &str, image: &str) -> Result<Deployment> {
        let current = service
            .current
            .as_ref()
            .ok_or_else(|| self.bad_response("the service has no current deployment"))?;
        let mut containers = current.containers.clone();
        let target = containers
            .get_mut(container)
            .ok_or_else(|| self.bad_response("the container is not in the deployment"))?;
        target.image = Some(image.to_string());
        let public_endpoint = match &current.public_endpoint {
            Some(endpoint) => Some(
                EndpointRequest::builder()
                    .set_container_name(endpoint.container_name.clone())
                    .set_container_port(endpoint.container_port)
                    .set_health_check(endpoint.health_check.clone())
                    .build()
                    .map_err(|_| self.bad_response("the public endpoint is incomplete"))?,
            ),
            None => None,
        };
        let output = self
            .client
            .create_container_service_deployment()
            .service_name(&service.name)
            .set_containers(Some(containers.clone()))
            .set_public_endpoint(public_endpoint)
            .send()
            .await
            .map_err(|err| {
                self.service_error(err, "CreateContainerServiceDeployment", &service.name)
            })?;
        let next = output
            .container_service()
            .and_then(|service| service.next_deployment())
            .ok_or_else(|| self.bad_response("the answer has no nextDeployment"))?;
        Ok(Deployment {
            version: next.version().unwrap_or(0),
            state: next
                .state()
                .map(|state| one_line(state.as_str()))
                .unwrap_or_default(),
            containers,
            public_endpoint: current.public_endpoint.clone(),
        })
    }

    /// `api_error`, naming the service when Lightsail says it does not exist.
    fn service_error<E>(
        &self,
        err: SdkError<E, HttpResponse>,
        action: &'static str,
        service: &str,
    ) -> Error
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        match self.api_error(err, action) {
            Error::Api { code, .. } if code == "NotFoundException" => Error::Api {
                region: self.region.clone(),
                code,
                message: format!(
                    "no container service named '{service}' in {}: check the name, or pass --region",
                    self.region
                ),
            },
            other => other,
        }
    }
}
