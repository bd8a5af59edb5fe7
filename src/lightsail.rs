//! The AWS SDK and its async runtime, and nothing else does async: the rest of the crate calls
//! the synchronous functions at the top (`fetch_login`, `register_image`, `resolve_region`),
//! each one bounded API round trip on a runtime made only for it.
//!
//! Every failure becomes a one-line `Error` built from error codes and modelled messages only:
//! the SDK's own `Debug` and error-context output carry raw response bodies, and the login
//! response holds the password.
//!
//! The HTTP client is built here too: rustls on ring, names resolved in Rust, the proxy of
//! `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` (read by hyper-util's matcher, as the
//! SDK's default client does), and the CA bundle of `AWS_CA_BUNDLE` or the profile's `ca_bundle`
//! trusted beside the system's roots (the AWS CLI's settings; the Rust SDK reads neither).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::path::PathBuf;
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
use aws_sdk_lightsail::types::{
    Container, ContainerServiceDeployment, ContainerServiceEndpoint, EndpointRequest,
};
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_types::os_shim_internal::{Env, Fs};
use hickory_resolver::TokioResolver;
use hyper_util::client::proxy::matcher::Matcher;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Serialize;
use tracing::debug;

use crate::cache::Login;
use crate::config::{
    AWS_ACCESS_KEY_ID_VAR, AWS_CONFIG_FILE_VAR, AWS_PROFILE_VAR, AWS_SECRET_ACCESS_KEY_VAR,
    AWS_SHARED_CREDENTIALS_FILE_VAR, CA_BUNDLE_KEY, Config, HTTP_PROXY_VAR, HTTPS_PROXY_VAR,
    LOG_VAR, TIMEOUT_VAR,
};
use crate::error::{CaBundleFrom, Error, Result, one_line};
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
        let profiles = profile_set(config).await;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client(config, profiles.as_ref())?);
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
    route: Route,
}

impl Lightsail {
    /// Loads the standard AWS configuration (profiles, SSO, assume-role, environment, IMDS) and
    /// resolves credentials once, so that a missing or broken identity is reported as such.
    async fn connect(region: &Region, config: &Config) -> Result<Lightsail> {
        // One budget for the whole fetch: resolving credentials, then the call and its retries.
        let deadline = tokio::time::Instant::now() + config.timeout;
        let route = Route::new(config, region);
        match &route.proxy {
            Some(proxy) => debug!(
                "Lightsail endpoint {} through the proxy {proxy}",
                route.endpoint
            ),
            None => debug!("Lightsail endpoint {}, no proxy", route.endpoint),
        }
        let profiles = profile_set(config).await;
        check_profile(config, Some(region), profiles.as_ref())?;
        let http = https_client(config, profiles.as_ref())?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http.clone())
            .region(aws_config::Region::new(region.to_string()))
            .timeout_config(timeouts(config.timeout))
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some(profile) = &config.bound_profile {
            // The bound profile and nothing else: not the default chain, in which keys in the
            // environment come before any profile.
            loader = loader
                .profile_name(profile)
                .credentials_provider(profile_credentials(profile, region, config, http));
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
            route,
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
            .map_err(|err| self.service_error(err, "RegisterContainerImage", service))?;
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
/// calls (`push`): credentials are resolved once, and each call is bounded by the timeout.
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
    /// ACTIVATING, ACTIVE, INACTIVE or FAILED.
    pub state: String,
    containers: HashMap<String, Container>,
    public_endpoint: Option<ContainerServiceEndpoint>,
}

impl Deployment {
    /// Its containers' names, sorted.
    pub fn container_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.containers.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
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
            tokio::time::timeout(timeout, Lightsail::connect(region, config))
                .await
                .unwrap_or(Err(api_timeout(region, config)))
        })?;
        Ok(Session { runtime, lightsail })
    }

    pub fn region(&self) -> &Region {
        &self.lightsail.region
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
                    .map(|state| state.as_str().to_string())
                    .unwrap_or_default(),
                containers: deployment.containers().cloned().unwrap_or_default(),
                public_endpoint: deployment.public_endpoint().cloned(),
            })
        };
        Ok(Service {
            name: name.to_string(),
            state: service
                .state()
                .map(|state| state.as_str().to_string())
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
                .map(|state| state.as_str().to_string())
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

/// Where API calls go, and through which proxy: what messages about the network name. Hosts are
/// shown with their port and never with userinfo (a proxy URL may hold a password).
#[derive(Debug)]
struct Route {
    /// `host:port` of the endpoint.
    endpoint: String,
    /// Whether the endpoint is `http://`: a proxy then answers requests itself (absolute URI)
    /// instead of opening a tunnel with `CONNECT`.
    plain_http: bool,
    /// `host:port` of the proxy that carries the calls, if one does.
    proxy: Option<String>,
    /// The variable that names that proxy.
    proxy_var: &'static str,
}

impl Route {
    /// The endpoint of `AWS_ENDPOINT_URL_LIGHTSAIL` / `AWS_ENDPOINT_URL`, else the regional one,
    /// and the proxy that the connector's matcher (the same `Matcher::from_env`) picks for it.
    fn new(config: &Config, region: &Region) -> Route {
        let url = config
            .network
            .endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://lightsail.{region}.amazonaws.com"));
        let uri = url.parse::<http::Uri>().ok();
        let plain_http = uri.as_ref().and_then(http::Uri::scheme_str) == Some("http");
        let proxy = uri
            .as_ref()
            .and_then(|uri| Matcher::from_env().intercept(uri))
            .map(|intercept| host_port(intercept.uri()));
        let proxy_var = if plain_http {
            config.network.http_proxy_var.unwrap_or(HTTP_PROXY_VAR)
        } else {
            config.network.https_proxy_var.unwrap_or(HTTPS_PROXY_VAR)
        };
        Route {
            endpoint: uri.as_ref().map_or_else(|| one_line(&url), host_port),
            plain_http,
            proxy,
            proxy_var,
        }
    }

    /// A proxy's own answer to a request sent through it in absolute form: 407, or a gateway
    /// error without the request id every AWS answer carries. `None` for anything else.
    fn proxy_answer(&self, response: &HttpResponse) -> Option<Error> {
        let proxy = self.proxy.clone().filter(|_| self.plain_http)?;
        let status = response.status().as_u16();
        let from_aws = response.headers().get("x-amzn-requestid").is_some();
        match status {
            407 => Some(Error::ProxyAuthRequired {
                proxy,
                variable: self.proxy_var,
            }),
            502..=504 if !from_aws => Some(Error::ProxyRefused {
                proxy,
                endpoint: self.endpoint.clone(),
                why: format!("it answered {}", status_text(status)),
            }),
            _ => None,
        }
    }

    /// A request that could not be sent: an untrusted certificate, the proxy's refusal or
    /// absence, or the endpoint out of reach.
    fn dispatch_error(&self, err: &(dyn StdError + 'static), region: Region) -> Error {
        let chain = error_chain(err);
        let certificate =
            chain
                .iter()
                .find_map(|cause| match cause.downcast_ref::<rustls::Error>() {
                    Some(rustls::Error::InvalidCertificate(_)) => Some(cause.to_string()),
                    _ => None,
                });
        if let Some(reason) = certificate {
            return Error::UntrustedCertificate {
                endpoint: self.endpoint.clone(),
                reason: one_line(&reason),
            };
        }
        let Some(proxy) = self.proxy.clone() else {
            return Error::Unreachable {
                region,
                reason: innermost_cause(err),
            };
        };
        // hyper-util's tunnel error type is private: its messages are all there is to go by.
        let said = |text: &str| chain.iter().any(|cause| cause.to_string() == text);
        if said("tunnel error: proxy authorization required") {
            Error::ProxyAuthRequired {
                proxy,
                variable: self.proxy_var,
            }
        } else if said("tunnel error: unsuccessful") {
            Error::ProxyRefused {
                proxy,
                endpoint: self.endpoint.clone(),
                why: "it refused to open a tunnel (CONNECT)".to_string(),
            }
        } else {
            Error::ProxyUnreachable {
                proxy,
                endpoint: self.endpoint.clone(),
                variable: self.proxy_var,
                reason: innermost_cause(err),
            }
        }
    }
}

/// `host:port` of a URI, the port filled in from the scheme; never the userinfo.
fn host_port(uri: &http::Uri) -> String {
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("http") => 80,
        _ => 443,
    });
    format!("{}:{port}", uri.host().unwrap_or("?"))
}

/// "502 Bad Gateway".
fn status_text(status: u16) -> String {
    http::StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string())
}

/// `err` and its causes, with the payload of each `io::Error` (whose `source` skips it: that is
/// where rustls's error sits).
fn error_chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut chain = Vec::new();
    let mut next = Some(err);
    while let Some(cause) = next.filter(|_| chain.len() < 64) {
        chain.push(cause);
        next = match cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(payload) => Some(payload as &(dyn StdError + 'static)),
            None => cause.source(),
        };
    }
    chain
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
    http: aws_sdk_lightsail::config::SharedHttpClient,
) -> ProfileFileCredentialsProvider {
    let provider_config = ProviderConfig::without_region()
        .with_region(Some(aws_config::Region::new(region.to_string())))
        .with_http_client(http)
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
/// resolving names in Rust, through the proxy of the environment (`ProxyConfig::from_env`, as
/// the SDK's own default client: with a proxy, the endpoint's name is resolved by the proxy),
/// trusting the CA bundle's certificates beside the system's roots.
fn https_client(
    config: &Config,
    profiles: Option<&ProfileSet>,
) -> Result<aws_sdk_lightsail::config::SharedHttpClient> {
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig};
    let tls_context = match ca_bundle(config, profiles) {
        Some(bundle) => Some(bundle.tls_context()?),
        None => None,
    };
    Ok(
        Builder::new().build_with_connector_fn(move |settings, components| {
            let mut connector =
                ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
            if let Some(context) = &tls_context {
                connector.set_tls_context(context.clone());
            }
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build_with_resolver(SystemDns)
        }),
    )
}

/// A PEM file of certificate authorities to trust, and the setting that named it.
struct CaBundle {
    path: PathBuf,
    from: CaBundleFrom,
}

/// `AWS_CA_BUNDLE`, else `ca_bundle` in the active profile of `profiles` (the AWS config files,
/// read by aws-config's own parser), as the AWS CLI takes them.
fn ca_bundle(config: &Config, profiles: Option<&ProfileSet>) -> Option<CaBundle> {
    if let Some(path) = &config.network.ca_bundle {
        return Some(CaBundle {
            path: path.clone(),
            from: CaBundleFrom::Env,
        });
    }
    let profile = config.profile_name();
    let path = profiles?.get_profile(profile)?.get(CA_BUNDLE_KEY)?.trim();
    (!path.is_empty()).then(|| CaBundle {
        path: PathBuf::from(path),
        from: CaBundleFrom::Profile(profile.to_string()),
    })
}

impl CaBundle {
    /// The TLS settings that trust this bundle's certificates beside the system's roots.
    fn tls_context(self) -> Result<TlsContext> {
        let pem = std::fs::read(&self.path).map_err(|source| Error::CaBundleUnreadable {
            path: self.path.clone(),
            from: self.from.clone(),
            source,
        })?;
        let invalid = |reason: String| Error::CaBundleInvalid {
            path: self.path.clone(),
            from: self.from.clone(),
            reason,
        };
        match check_bundle(&pem) {
            Ok(count) => debug!(
                "trusting {count} certificate(s) of {} ({}) beside the system's roots",
                self.path.display(),
                self.from
            ),
            Err(BundleProblem::NoCertificate) => {
                return Err(Error::CaBundleEmpty {
                    path: self.path,
                    from: self.from,
                });
            }
            Err(BundleProblem::Invalid(reason)) => return Err(invalid(reason)),
        }
        TlsContext::builder()
            .with_trust_store(TrustStore::default().with_pem_certificate(pem))
            .build()
            .map_err(|err| invalid(one_line(&err.to_string())))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum BundleProblem {
    NoCertificate,
    Invalid(String),
}

/// The number of certificates in a PEM bundle, each checked the way the TLS layer will load it
/// (the SDK's loader panics on a block it cannot use, so nothing unchecked may reach it).
fn check_bundle(pem: &[u8]) -> Result<usize, BundleProblem> {
    let mut roots = rustls::RootCertStore::empty();
    for (index, certificate) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let certificate = certificate
            .map_err(|err| BundleProblem::Invalid(one_line(&format!("not valid PEM: {err}"))))?;
        roots.add(certificate).map_err(|err| {
            BundleProblem::Invalid(one_line(&format!(
                "certificate {} is not a usable CA certificate: {err}",
                index + 1
            )))
        })?;
    }
    match roots.len() {
        0 => Err(BundleProblem::NoCertificate),
        count => Ok(count),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_named_with_their_port_and_never_their_userinfo() {
        let name = |url: &str| host_port(&url.parse().unwrap());
        assert_eq!(
            name("http://user:secret@proxy.corp:3128"),
            "proxy.corp:3128"
        );
        assert_eq!(name("http://proxy.corp"), "proxy.corp:80");
        assert_eq!(
            name("https://lightsail.us-east-1.amazonaws.com"),
            "lightsail.us-east-1.amazonaws.com:443"
        );
    }

    #[test]
    fn bundles_are_checked_as_the_tls_layer_loads_them() {
        assert_eq!(check_bundle(b""), Err(BundleProblem::NoCertificate));
        assert_eq!(
            check_bundle(b"just text\n"),
            Err(BundleProblem::NoCertificate)
        );
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            check_bundle(garbage),
            Err(BundleProblem::Invalid(_))
        ));
        let unterminated = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(matches!(
            check_bundle(unterminated),
            Err(BundleProblem::Invalid(_))
        ));
    }
}
