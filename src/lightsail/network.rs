//! The network under the SDK: the HTTPS client (rustls on ring, names resolved as [`SystemDns`]
//! says, the proxy of `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` as hyper-util's matcher reads
//! them, the CA bundle of `AWS_CA_BUNDLE` or the profile's `ca_bundle` beside the system's roots),
//! and the one-line errors that name the endpoint and the proxy, never a proxy's password.

use std::error::Error as StdError;
use std::path::PathBuf;

use aws_config::profile::ProfileSet;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use hyper_util::client::proxy::matcher::Matcher;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tracing::debug;

use crate::config::{CA_BUNDLE_KEY, Config, HTTP_PROXY_VAR, HTTPS_PROXY_VAR};
use crate::error::{CaBundleFrom, Error, Result, one_line};
use crate::registry::Region;

/// Where API calls go, and through which proxy: what messages about the network name. Hosts are
/// shown with their port and never with userinfo (a proxy URL may hold a password).
#[derive(Debug)]
pub(super) struct Route {
    /// `host:port` of the endpoint.
    pub(super) endpoint: String,
    /// Whether the endpoint is `http://`: a proxy then answers requests itself (absolute URI)
    /// instead of opening a tunnel with `CONNECT`.
    plain_http: bool,
    /// `host:port` of the proxy that carries the calls, if one does.
    pub(super) proxy: Option<String>,
    /// Whether that proxy is named with `https://` (TLS to the proxy itself).
    proxy_tls: bool,
    /// The variable that names that proxy.
    pub(super) proxy_var: &'static str,
}

impl Route {
    /// The endpoint of `AWS_ENDPOINT_URL_LIGHTSAIL` / `AWS_ENDPOINT_URL`, else the regional one,
    /// and the proxy that the connector's matcher (the same `Matcher::from_env`) picks for it.
    pub(super) fn new(config: &Config, region: &Region) -> Route {
        let url = config
            .network
            .endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://lightsail.{region}.amazonaws.com"));
        let uri = url.parse::<http::Uri>().ok();
        let plain_http = uri.as_ref().and_then(http::Uri::scheme_str) == Some("http");
        let intercept = uri
            .as_ref()
            .and_then(|uri| Matcher::from_env().intercept(uri));
        let proxy_tls = intercept
            .as_ref()
            .is_some_and(|intercept| intercept.uri().scheme_str() == Some("https"));
        let proxy = intercept.map(|intercept| host_port(intercept.uri()));
        let proxy_var = if plain_http {
            config.network.http_proxy_var.unwrap_or(HTTP_PROXY_VAR)
        } else {
            config.network.https_proxy_var.unwrap_or(HTTPS_PROXY_VAR)
        };
        Route {
            endpoint: uri.as_ref().map_or_else(|| one_line(&url), host_port),
            plain_http,
            proxy,
            proxy_tls,
            proxy_var,
        }
    }

    /// The proxy variable for this endpoint's scheme, when its value is one the HTTP client
    /// cannot use: hyper-util's matcher would skip it without a word, and the calls would go
    /// direct (or through `ALL_PROXY`), which behind a proxy-only network means a timeout.
    pub(super) fn check_setting(&self, config: &Config) -> Result<()> {
        let value = if self.plain_http {
            &config.network.http_proxy_value
        } else {
            &config.network.https_proxy_value
        };
        match value {
            Some(value) if !usable_proxy_url(value.expose()) => Err(Error::ProxyInvalid {
                variable: self.proxy_var,
                shown: proxy_host_port(value.expose()),
            }),
            _ => Ok(()),
        }
    }

    /// A proxy's own answer to a request sent through it in absolute form: 407, or a gateway
    /// error without the request id every AWS answer carries. `None` for anything else.
    pub(super) fn proxy_answer(&self, response: &HttpResponse) -> Option<Error> {
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
    pub(super) fn dispatch_error(&self, err: &(dyn StdError + 'static), region: Region) -> Error {
        let chain = error_chain(err);
        if let Some(reason) = untrusted_certificate(&chain) {
            return Error::UntrustedCertificate {
                endpoint: self.endpoint.clone(),
                reason,
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
        // TLS to an `https://` proxy failed before any tunnel: the proxy did not speak TLS (a
        // plain HTTP proxy answers the TLS greeting with an HTTP error, or hangs up).
        let tls_broken = chain.iter().any(|cause| {
            cause.downcast_ref::<rustls::Error>().is_some()
                || cause.to_string() == "tls handshake eof"
        });
        if self.proxy_tls
            && said("tunnel error: failed to create underlying connection")
            && tls_broken
        {
            return Error::ProxyNotTls {
                proxy,
                variable: self.proxy_var,
            };
        }
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
pub(super) fn host_port(uri: &http::Uri) -> String {
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("http") => 80,
        _ => 443,
    });
    format!("{}:{port}", uri.host().unwrap_or("?"))
}

/// Whether hyper-util's matcher can use `value` as a proxy: a URI with no scheme (taken as
/// `http`), `http` or `https`, and a host (after any `user:password@`).
fn usable_proxy_url(value: &str) -> bool {
    let Ok(uri) = value.trim().parse::<http::Uri>() else {
        return false;
    };
    if !matches!(uri.scheme_str(), None | Some("http" | "https")) {
        return false;
    }
    let Some(authority) = uri.authority() else {
        return false;
    };
    let host_port = authority
        .as_str()
        .split_once('@')
        .map_or(authority.as_str(), |(_, host_port)| host_port);
    !host_port.is_empty()
        && http::Uri::builder()
            .scheme("http")
            .authority(host_port)
            .path_and_query("/")
            .build()
            .is_ok()
}

/// The `host:port` part of a proxy setting as written, whatever else is wrong with it: after the
/// last `@` (so never a user or password), before any path.
fn proxy_host_port(value: &str) -> String {
    let rest = value.split_once("://").map_or(value, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    one_line(rest.split('/').next().unwrap_or_default())
}

/// "502 Bad Gateway".
pub(super) fn status_text(status: u16) -> String {
    http::StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string())
}

/// `err` and its causes, with the payload of each `io::Error` (whose `source` skips it: that is
/// where rustls's error sits).
pub(super) fn error_chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> Vec<&'a (dyn StdError + 'static)> {
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

/// Why the server's certificate was refused, when that is what stopped the request.
pub(super) fn untrusted_certificate(chain: &[&(dyn StdError + 'static)]) -> Option<String> {
    chain
        .iter()
        .find_map(|cause| match cause.downcast_ref::<rustls::Error>() {
            Some(rustls::Error::InvalidCertificate(_)) => Some(one_line(&cause.to_string())),
            _ => None,
        })
}

/// The deepest cause's message: for connection failures, the OS's own words
/// ("Connection refused (os error 111)"). It never holds a request or response body.
pub(super) fn innermost_cause(err: &(dyn StdError + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    one_line(&cause.to_string())
}

/// HTTPS with rustls on ring (the SDK's default, aws-lc, costs megabytes and start-up time),
/// resolving names with [`SystemDns`], through the proxy of the environment
/// (`ProxyConfig::from_env`, as the SDK's own default client: with a proxy, the endpoint's name
/// is resolved by the proxy), trusting the CA bundle's certificates beside the system's roots.
pub(super) fn https_client(
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

/// A connection maker for requests outside the SDK (a registry's `/v2/`): rustls on ring, names
/// resolved with [`SystemDns`], the proxy of the environment, the system's roots only.
pub(super) fn system_connector() -> aws_smithy_http_client::Connector {
    use aws_smithy_http_client::{ConnectorBuilder, proxy::ProxyConfig};
    ConnectorBuilder::default()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .proxy_config(ProxyConfig::from_env())
        .build_with_resolver(SystemDns)
}

/// A PEM file of certificate authorities to trust, and the setting that named it.
pub(super) struct CaBundle {
    pub(super) path: PathBuf,
    pub(super) from: CaBundleFrom,
}

/// `AWS_CA_BUNDLE`, else `ca_bundle` in the active profile of `profiles` (the AWS config files,
/// read by aws-config's own parser), as the AWS CLI takes them.
pub(super) fn ca_bundle(config: &Config, profiles: Option<&ProfileSet>) -> Option<CaBundle> {
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
        if let Some(source) = super::not_a_readable_file(&self.path) {
            return Err(Error::CaBundleUnreadable {
                path: self.path,
                from: self.from,
                source,
            });
        }
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
pub(super) enum BundleProblem {
    NoCertificate,
    Invalid(String),
}

/// The number of certificates in a PEM bundle, each checked the way the TLS layer will load it
/// (the SDK's loader panics on a block it cannot use, so nothing unchecked may reach it).
pub(super) fn check_bundle(pem: &[u8]) -> Result<usize, BundleProblem> {
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

/// Name resolution as the OS does it: `getaddrinfo` (through aws-smithy-runtime's resolver) on
/// macOS (scoped and per-VPN resolvers, `/etc/resolver/*`), Windows, and musl, whose resolver
/// reads `/etc/hosts` and `/etc/resolv.conf` itself and needs no NSS module. On glibc, in Rust
/// from those same two files: the release binary there is linked statically, and a static
/// glibc's `getaddrinfo` would load NSS modules built for another glibc.
#[derive(Debug, Clone, Copy)]
pub(super) struct SystemDns;

impl ResolveDns for SystemDns {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        DnsFuture::new(async move {
            lookup(name)
                .await
                .map_err(|why| ResolveDnsError::new(format!("cannot resolve {name}: {why}")))
        })
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
async fn lookup(name: &str) -> std::result::Result<Vec<std::net::IpAddr>, String> {
    let resolver = hickory_resolver::TokioResolver::builder_tokio()
        .and_then(|builder| builder.build())
        .map_err(|err| err.to_string())?;
    let found = resolver.lookup_ip(name).await.map_err(|err| {
        if err.is_no_records_found() || err.is_nx_domain() {
            "no such host, or no DNS server answered".to_string()
        } else {
            err.to_string()
        }
    })?;
    Ok(found.iter().collect())
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
async fn lookup(name: &str) -> std::result::Result<Vec<std::net::IpAddr>, String> {
    aws_smithy_runtime::client::dns::TokioDnsResolver::new()
        .resolve_dns(name)
        .await
        .map_err(|err| innermost_cause(&err))
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
    fn proxy_settings_are_checked_as_the_matcher_reads_them() {
        for good in [
            "http://proxy.corp:3128",
            "https://user:pa%40ss@proxy.corp:443",
            "proxy.corp:3128",
            "http://[::1]:3128/",
        ] {
            assert!(usable_proxy_url(good), "{good}");
        }
        for bad in [
            "",
            "http://",
            "http://proxy corp:3128",
            "ftp://proxy.corp:21",
            "socks5://proxy.corp:1080",
            "http://user:pw@",
        ] {
            assert!(!usable_proxy_url(bad), "{bad}");
        }
        for (value, shown) in [
            ("http://user:pa/ss@proxy corp:3128/x", "proxy corp:3128"),
            ("user:p@ss@proxy:1", "proxy:1"),
            ("http://", ""),
            ("proxy\ncorp", "proxy corp"),
        ] {
            assert_eq!(proxy_host_port(value), shown, "{value}");
        }
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
