//! What `doctor` asks of the network beyond the API calls: the `Date` of Lightsail's answers
//! (to compare clocks), the route the calls take, and a registry's `GET /v2/`, once without
//! credentials (its 401 challenge) and once with a login. Never a password in a result.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::credential_feature::AwsCredentialFeature;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::date_time::{DateTime, Format};
use hyper_util::client::proxy::matcher::Matcher;

use crate::cache::Login;
use crate::error::one_line;

use super::network::{error_chain, host_port, innermost_cause, system_connector};

/// What gave `credentials`, from the features the SDK's providers mark them with: the most
/// specific one (an SSO profile is also a profile).
pub(super) fn credential_source(credentials: &Credentials) -> Option<&'static str> {
    use AwsCredentialFeature as F;
    let features = credentials.get_property::<Vec<AwsCredentialFeature>>()?;
    [
        (F::CredentialsSso, "SSO"),
        (F::CredentialsProfileSso, "SSO"),
        (F::CredentialsLogin, "aws login"),
        (F::CredentialsProfileLogin, "aws login"),
        (F::CredentialsProcess, "credential_process"),
        (F::CredentialsProfileProcess, "credential_process"),
        (F::CredentialsStsAssumeRoleWebId, "web identity"),
        (F::CredentialsEnvVarsStsWebIdToken, "web identity"),
        (F::CredentialsProfileStsWebIdToken, "web identity"),
        (F::CredentialsStsAssumeRole, "an assumed role"),
        (
            F::CredentialsImds,
            "the instance role (EC2 instance metadata)",
        ),
        (F::CredentialsHttp, "container credentials"),
        (F::CredentialsEnvVars, "environment variables"),
        (F::CredentialsProfile, "keys in the profile"),
    ]
    .into_iter()
    .find(|(feature, _)| features.contains(feature))
    .map(|(_, source)| source)
}

/// Keeps the `Date` header of the last answer from Lightsail, as Unix seconds.
#[derive(Debug, Clone, Default)]
pub(super) struct DateRecorder(pub(super) Arc<Mutex<Option<i64>>>);

impl Intercept for DateRecorder {
    fn name(&self) -> &'static str {
        "DateRecorder"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let date = context
            .response()
            .headers()
            .get("date")
            .and_then(|value| DateTime::from_str(value, Format::HttpDate).ok())
            .map(|date| date.secs());
        if let (Some(date), Ok(mut last)) = (date, self.0.lock()) {
            *last = Some(date);
        }
        Ok(())
    }
}

/// How API calls reach Lightsail: for `doctor` to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPath {
    /// `host:port` of the endpoint.
    pub endpoint: String,
    /// `host:port` of the proxy that carries the calls, and the variable that names it.
    pub proxy: Option<(String, &'static str)>,
    /// The CA bundle trusted beside the system's roots, and the setting that names it.
    pub ca_bundle: Option<String>,
}

/// A registry's answer to `GET https://HOST/v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAnswer {
    pub status: u16,
    /// Its `WWW-Authenticate` header, one line.
    pub challenge: Option<String>,
}

/// Why a registry's `/v2/` could not be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// Its certificate is not trusted by the system's roots.
    Untrusted(String),
    /// The proxy (`host:port`) did not carry the request.
    Proxy {
        proxy: String,
        reason: String,
    },
    Unreachable(String),
    Timeout(Duration),
}

/// Where a registry request goes: the proxy that the environment names for `https://host`.
pub fn registry_proxy(host: &str) -> Option<String> {
    let uri = format!("https://{host}/v2/").parse::<http::Uri>().ok()?;
    Matcher::from_env()
        .intercept(&uri)
        .map(|intercept| host_port(intercept.uri()))
}

/// `GET https://HOST/v2/`, with `login` as Basic credentials if given, through the proxy of the
/// environment and trusting the system's roots only (as Docker's engine does), within `timeout`.
pub fn probe_registry(
    host: &str,
    login: Option<&Login>,
    timeout: Duration,
) -> Result<RegistryAnswer, ProbeFailure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| ProbeFailure::Unreachable(one_line(&err.to_string())))?;
    let mut request = HttpRequest::new(SdkBody::empty());
    request
        .set_uri(format!("https://{host}/v2/"))
        .map_err(|_| ProbeFailure::Unreachable(format!("{host:?} is not a host name")))?;
    if let Some(login) = login {
        let token = aws_smithy_types::base64::encode(format!(
            "{}:{}",
            login.username,
            login.secret.expose()
        ));
        request
            .headers_mut()
            .insert("authorization", format!("Basic {token}"));
    }
    let proxy = registry_proxy(host);
    runtime.block_on(async {
        let connector = system_connector();
        let answer = tokio::time::timeout(timeout, connector.call(request)).await;
        let response = match answer {
            Err(_) => return Err(ProbeFailure::Timeout(timeout)),
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                let chain = error_chain(&err);
                let certificate =
                    chain
                        .iter()
                        .find_map(|cause| match cause.downcast_ref::<rustls::Error>() {
                            Some(rustls::Error::InvalidCertificate(_)) => Some(cause.to_string()),
                            _ => None,
                        });
                if let Some(reason) = certificate {
                    return Err(ProbeFailure::Untrusted(one_line(&reason)));
                }
                if err.is_timeout() {
                    return Err(ProbeFailure::Timeout(timeout));
                }
                let reason = innermost_cause(&err);
                return Err(match proxy {
                    Some(proxy) => ProbeFailure::Proxy { proxy, reason },
                    None => ProbeFailure::Unreachable(reason),
                });
            }
        };
        Ok(RegistryAnswer {
            status: response.status().as_u16(),
            challenge: response.headers().get("www-authenticate").map(one_line),
        })
    })
}
