//! The checks of each registry: which AWS identity and region, its credentials, the Lightsail
//! endpoint and the route to it, the login and its host, the registry's `/v2/` without and
//! with the login, the cached entry; then the clock against Lightsail's, and two identities
//! whose logins name the same host.

use std::time::{Duration, Instant};

use super::local::{DockerFacts, HELPER_NAME, creds_store};
use super::{Budget, Check, Report, Status, helper_command};
use crate::actions;
use crate::bindings::{self, Bindings};
use crate::cache::{Cache, Freshness, Login};
use crate::cli::DoctorArgs;
use crate::config::{AWS_CA_BUNDLE_VAR, Config, NO_PROXY_VAR};
use crate::error::{CaBundleFrom, Error, one_line};
use crate::lightsail::{
    ProbeFailure, Session, check_profile_exists, probe_registry, region_source, registry_proxy,
    resolve_region,
};
use crate::registry::{Region, Registry};

/// The clock may be this far from Lightsail's before `doctor` warns, and fails.
const CLOCK_WARN: u64 = 60;
const CLOCK_FAIL: u64 = 5 * 60;

/// One identity in one region, and the `credHelpers` hosts that Docker sends to it.
struct Target {
    config: Config,
    region: Region,
    hosts: Vec<String>,
    /// Why it is checked: "credHelpers", "bound in FILE", "--region"…
    why: String,
    /// The profile to name in fixes.
    profile: Option<String>,
}

impl Target {
    fn subject(&self) -> String {
        self.hosts
            .first()
            .cloned()
            .unwrap_or_else(|| self.region.to_string())
    }

    fn configure(&self) -> String {
        helper_command(
            "configure",
            Some(self.region.as_str()),
            self.profile.as_deref(),
        )
    }
}

/// What a target's login found, for the shared-host check.
struct Found {
    host: String,
    identity_key: String,
    identity: String,
    /// Whether Docker sends the host to this identity (a `credHelpers` entry led here).
    serves: bool,
    profile: Option<String>,
    region: Region,
}

pub(super) fn check(
    config: &Config,
    args: &DoctorArgs,
    docker: &DockerFacts,
    now: u64,
    started: Instant,
    budget: &Budget,
    report: &mut Report,
) {
    let targets = targets(config, args, docker, budget, report);
    let mut found = Vec::new();
    let mut clock_checked = false;
    let mut missing_entries = Vec::new();
    for target in &targets {
        let Some((login, server_clock)) =
            check_target(config, target, docker, (now, started), budget, report)
        else {
            continue;
        };
        if !clock_checked && let Some((local, server)) = server_clock {
            clock_checked = true;
            report.push(clock(local, server));
        }
        if !docker.helper_hosts.contains(&login.registry) {
            missing_entries.push(login.registry.clone());
        }
        found.push(Found {
            host: login.registry.clone(),
            identity_key: target.config.identity.key.clone(),
            identity: target.config.identity.description.clone(),
            serves: target.hosts.contains(&login.registry),
            profile: target.profile.clone(),
            region: target.region.clone(),
        });
    }
    shared_hosts(&found, report);
    creds_store(docker, &missing_entries, report);
}

/// The identities and regions to check: each `credHelpers` host with the identity `get` uses
/// for it, each host bound in the helper's configuration file, and `--region` / `--profile`.
fn targets(
    config: &Config,
    args: &DoctorArgs,
    docker: &DockerFacts,
    budget: &Budget,
    report: &mut Report,
) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    let file = bindings::path(config);
    for host in &docker.helper_hosts {
        let Some(registry) = Registry::parse(host) else {
            continue;
        };
        match bindings::config_for(config, host) {
            Ok(bound) => {
                let profile = bound.as_ref().and_then(|c| c.bound_profile.clone());
                let why = match (&profile, &file) {
                    (Some(profile), Some(file)) => format!(
                        "credHelpers entry, bound to profile '{profile}' in {}",
                        file.display()
                    ),
                    _ => "credHelpers entry".to_string(),
                };
                add(
                    &mut targets,
                    Target {
                        config: bound.unwrap_or_else(|| config.clone()),
                        region: registry.region,
                        hosts: vec![host.clone()],
                        why,
                        profile,
                    },
                );
            }
            Err(err) => report.push(config_file_failure(&err).about(host.clone())),
        }
    }
    // Hosts bound in the helper's file but missing from config.json are checked too: the
    // missing entry shows up as theirs.
    if let Some(path) = &file
        && let Ok(Some(bindings)) = Bindings::read(path)
    {
        for (host, profile) in bindings.hosts() {
            let Some(registry) = Registry::parse(&host) else {
                continue;
            };
            if docker.helper_hosts.contains(&host) {
                continue;
            }
            add(
                &mut targets,
                Target {
                    config: config.bound_to(&profile, Some(path)),
                    region: registry.region,
                    hosts: vec![host.clone()],
                    why: format!("bound to profile '{profile}' in {}", path.display()),
                    profile: Some(profile),
                },
            );
        }
    }
    let asked = args.region.is_some() || args.profile.is_some();
    if asked || targets.is_empty() {
        let identity = match &args.profile {
            Some(profile) => {
                if let Err(err) = check_profile_exists(config, profile) {
                    let check = failure(
                        &err,
                        args.region.as_ref().map(Region::as_str),
                        args.profile.as_deref(),
                    );
                    report.push(check.about(format!("profile '{profile}'")));
                    return targets;
                }
                config.bound_to(profile, None)
            }
            None => config.clone(),
        };
        let region = match &args.region {
            Some(region) => Ok(region.clone()),
            None => match budget.config(&identity) {
                Some(bounded) => resolve_region(&bounded, None),
                None => Err(Error::RegionLookupTimeout {
                    after: budget.per_check,
                }),
            },
        };
        match region {
            Ok(region) => add(
                &mut targets,
                Target {
                    why: if args.region.is_some() {
                        "--region".to_string()
                    } else {
                        region_source(&identity, region.as_str())
                    },
                    config: identity,
                    region,
                    hosts: Vec::new(),
                    profile: args.profile.clone(),
                },
            ),
            Err(err) => report.push(failure(&err, None, args.profile.as_deref())),
        }
    }
    targets
}

/// Adds `target`, merged into a known one of the same identity and region.
fn add(targets: &mut Vec<Target>, target: Target) {
    match targets.iter_mut().find(|known| {
        known.region == target.region && known.config.identity == target.config.identity
    }) {
        Some(known) => {
            for host in target.hosts {
                if !known.hosts.contains(&host) {
                    known.hosts.push(host);
                }
            }
        }
        None => targets.push(target),
    }
}

/// The checks of one target. When the login worked: the login, and this machine's clock and
/// the `Date` of Lightsail's answer (Unix seconds) when it came. `clock` is the run's `now` and
/// the moment it was read.
fn check_target(
    config: &Config,
    target: &Target,
    docker: &DockerFacts,
    clock: (u64, Instant),
    budget: &Budget,
    report: &mut Report,
) -> Option<(Login, Option<(u64, i64)>)> {
    let (now, started) = clock;
    let subject = target.subject();
    let identity = &target.config.identity.description;
    report.push(
        Check::ok(
            "registry.identity",
            format!(
                "AWS identity {identity}, region {} ({})",
                target.region, target.why
            ),
        )
        .about(&subject),
    );
    let region = Some(target.region.as_str());
    let profile = target.profile.as_deref();
    let call_failed = |report: &mut Report, err: &Error| {
        report.cut_short |= matches!(err, Error::Timeout { .. });
        report.push(failure(err, region, profile).about(&subject));
    };
    let Some(bounded) = budget.config(&target.config) else {
        return skipped(report, &subject);
    };
    let session = match Session::connect(&bounded, &target.region) {
        Ok(session) => session,
        Err(err) => {
            call_failed(report, &err);
            return None;
        }
    };
    let source = session
        .credential_source()
        .map(|source| format!(" ({source})"))
        .unwrap_or_default();
    report.push(
        Check::ok(
            "registry.credentials",
            format!("AWS credentials resolved from {identity}{source}"),
        )
        .about(&subject),
    );
    let login = match session.registry_login() {
        Ok(login) => login,
        Err(err) => {
            call_failed(report, &err);
            return None;
        }
    };
    let server_clock = session
        .server_date()
        .map(|server| (now + started.elapsed().as_secs(), server));
    let path = session.network_path();
    let route = match &path.proxy {
        Some((proxy, variable)) => format!("through the proxy {proxy} ({variable})"),
        None => "directly".to_string(),
    };
    let trust = match &path.ca_bundle {
        Some(bundle) => format!("the system's roots and {bundle}"),
        None => "the system's roots".to_string(),
    };
    report.push(
        Check::ok(
            "registry.endpoint",
            format!(
                "Lightsail at {} answered, {route}, trusting {trust}",
                path.endpoint
            ),
        )
        .about(&subject),
    );
    let host = login.registry.clone();
    report.push(
        Check::ok(
            "registry.login",
            format!(
                "CreateContainerServiceRegistryLogin works: registry {host}, valid {}",
                duration_text(login.expires_at.saturating_sub(now))
            ),
        )
        .about(&subject),
    );
    for other in target.hosts.iter().filter(|other| **other != host) {
        report.push(
            Check::fail(
                "registry.entry",
                format!(
                    "the credHelpers entry {other} is not the registry of {identity} in {}: its login names {host}",
                    target.region
                ),
                target.configure(),
            )
            .about(other.clone()),
        );
    }
    if docker.helper_hosts.contains(&host) {
        report.push(
            Check::ok(
                "registry.entry",
                format!("config.json sends it to docker-credential-{HELPER_NAME}"),
            )
            .about(&host),
        );
    } else if !docker.helper_hosts.is_empty() || !target.hosts.is_empty() {
        report.push(
            Check::fail(
                "registry.entry",
                format!("config.json has no credHelpers entry for {host}: Docker never asks the helper for it"),
                target.configure(),
            )
            .about(&host),
        );
    }
    report.push(cached(config, target, &login, now).about(&host));

    // What Docker gets for the host: what `get` serves (a cached or stored login), else the
    // login just fetched.
    let served = docker
        .helper_hosts
        .contains(&host)
        .then(|| budget.config(config))
        .flatten()
        .and_then(|bounded| actions::get(&bounded, &host, now).ok())
        .unwrap_or_else(|| login.clone());
    registry_v2(&host, &served, &login, budget, report);
    Some((login, server_clock))
}

/// The registry's `/v2/`: its 401 challenge without credentials, then 200 with the login the
/// helper serves; when that is refused, the login Lightsail just gave (`fresh`) tells a stale
/// login from a registry that is not the account's.
fn registry_v2(host: &str, served: &Login, fresh: &Login, budget: &Budget, report: &mut Report) {
    let route = match registry_proxy(host) {
        Some(proxy) => format!("through the proxy {proxy}"),
        None => "directly".to_string(),
    };
    let Some(timeout) = budget.next() else {
        skipped::<()>(report, host);
        return;
    };
    match probe_registry(host, None, timeout) {
        Ok(answer) if answer.status == 401 && answer.challenge.is_some() => report.push(
            Check::ok(
                "registry.v2",
                format!(
                    "/v2/ answers 401 with its challenge ({}), {route}",
                    answer.challenge.unwrap_or_default()
                ),
            )
            .about(host),
        ),
        Ok(answer) => report.push(
            Check::warn(
                "registry.v2",
                format!(
                    "/v2/ answers {} without a challenge, {route}: something other than the registry answers for it",
                    answer.status
                ),
            )
            .about(host),
        ),
        Err(failure) => {
            report.cut_short |= matches!(failure, ProbeFailure::Timeout(_));
            report.push(probe_failure(host, &failure).about(host));
            return;
        }
    }
    let Some(timeout) = budget.next() else {
        skipped::<()>(report, host);
        return;
    };
    match probe_registry(host, Some(served), timeout) {
        Ok(answer) if answer.status == 200 => report.push(
            Check::ok(
                "registry.v2_login",
                format!(
                    "/v2/ accepts the login the helper serves (user {})",
                    served.username
                ),
            )
            .about(host),
        ),
        Ok(answer) if matches!(answer.status, 401 | 403) => {
            let stale = served.secret.expose() != fresh.secret.expose()
                && budget
                    .next()
                    .and_then(|timeout| probe_registry(host, Some(fresh), timeout).ok())
                    .is_some_and(|answer| answer.status == 200);
            report.push(
                if stale {
                    Check::fail(
                        "registry.v2_login",
                        format!(
                            "/v2/ refuses the login the helper serves ({}) and accepts the one Lightsail just gave: the helper serves a stale login (from its cache, or from `docker login`)",
                            answer.status
                        ),
                        format!("echo {host} | docker-credential-lightsail erase"),
                    )
                } else {
                    Check::fail(
                        "registry.v2_login",
                        format!(
                            "/v2/ refuses even the login Lightsail just gave ({}): something other than this account's registry answers for {host} (a hosts file, DNS or a proxy)",
                            answer.status
                        ),
                        format!("nslookup {host}"),
                    )
                }
                .about(host),
            );
        }
        Ok(answer) => report.push(
            Check::warn(
                "registry.v2_login",
                format!("/v2/ answers {} to the login", answer.status),
            )
            .about(host),
        ),
        Err(failure) => {
            report.cut_short |= matches!(failure, ProbeFailure::Timeout(_));
            report.push(probe_failure(host, &failure).about(host));
        }
    }
}

fn probe_failure(host: &str, failure: &ProbeFailure) -> Check {
    let url = format!("https://{host}/v2/");
    match failure {
        ProbeFailure::Untrusted(reason) => Check::fail(
            "registry.v2",
            format!(
                "the TLS certificate of {host} is not trusted by the system's roots ({reason}); Docker will refuse it too"
            ),
            "sudo cp CA.pem /usr/local/share/ca-certificates/CA.crt && sudo update-ca-certificates",
        ),
        ProbeFailure::Proxy { proxy, reason } => Check::fail(
            "registry.v2",
            format!("could not reach {url} through the proxy {proxy}: {reason}"),
            format!("export {NO_PROXY_VAR}={host}"),
        ),
        ProbeFailure::Unreachable(reason) => Check::fail(
            "registry.v2",
            format!("could not reach {url}: {reason}"),
            format!("curl -sS -o /dev/null -w '%{{http_code}}\\n' {url}"),
        ),
        ProbeFailure::Timeout(after) => Check::fail(
            "registry.v2",
            format!("{url} did not answer within {} s", after.as_secs()),
            format!("curl -sS -o /dev/null -w '%{{http_code}}\\n' {url}"),
        ),
    }
}

/// The cached login of this identity and region, read without creating anything.
fn cached(config: &Config, target: &Target, login: &Login, now: u64) -> Check {
    let id = "registry.cache";
    let Some(dir) = config.cache_dir.as_deref().filter(|dir| dir.is_dir()) else {
        return Check::ok(id, "no cached login yet: the next pull or push fetches one");
    };
    let Ok(cache) = Cache::open(dir) else {
        return Check::warn(id, "the cache folder is refused (see cache.folder)");
    };
    let Some(entry) = cache
        .login_slot(&target.region, &target.config.identity)
        .read_entry()
    else {
        return Check::ok(id, "no cached login yet: the next pull or push fetches one");
    };
    let other = if entry.login.registry == login.registry {
        String::new()
    } else {
        format!(" (for {}: replaced at the next use)", entry.login.registry)
    };
    let left = entry.login.expires_at.saturating_sub(now);
    match entry.login.freshness(now, config.refresh_margin) {
        Freshness::Fresh => Check::ok(
            id,
            format!("cached login{other}, {} left", duration_text(left)),
        ),
        Freshness::Aging => Check::ok(
            id,
            format!(
                "cached login{other}, {} left: the next use refreshes it",
                duration_text(left)
            ),
        ),
        Freshness::Expired => Check::ok(
            id,
            format!("cached login{other} expired: the next use fetches a new one"),
        ),
    }
}

/// The local clock against the `Date` of Lightsail's answer.
fn clock(local: u64, server: i64) -> Check {
    let server = u64::try_from(server).unwrap_or(0);
    let off = local.abs_diff(server);
    let direction = if local >= server {
        "ahead of"
    } else {
        "behind"
    };
    let text = format!("this machine's clock is {off} s {direction} Lightsail's");
    let fix = if cfg!(windows) {
        "w32tm /resync"
    } else if cfg!(target_os = "macos") {
        "sudo sntp -sS time.apple.com"
    } else {
        "sudo timedatectl set-ntp true"
    };
    if off > CLOCK_FAIL {
        Check::fail(
            "clock",
            format!(
                "{text}: AWS refuses requests signed 15 minutes off, and login expiry is judged wrong"
            ),
            fix,
        )
    } else if off > CLOCK_WARN {
        Check::warn("clock", format!("{text}: more than a minute")).with_fix(fix)
    } else {
        Check::ok("clock", text)
    }
}

/// Two identities whose logins name the same host: Docker asks the helper by host, so only
/// one serves it.
fn shared_hosts(found: &[Found], report: &mut Report) {
    for (index, first) in found.iter().enumerate() {
        if found[..index]
            .iter()
            .any(|earlier| earlier.host == first.host)
        {
            continue;
        }
        let same: Vec<&Found> = found
            .iter()
            .filter(|other| other.host == first.host)
            .collect();
        let identities: Vec<&str> = same.iter().map(|f| f.identity_key.as_str()).collect();
        if identities.iter().all(|key| *key == identities[0]) {
            continue;
        }
        let server = same.iter().find(|f| f.serves).unwrap_or(&same[0]);
        for other in same
            .iter()
            .filter(|f| f.identity_key != server.identity_key)
        {
            let profile = other.profile.as_deref().unwrap_or("PROFILE");
            report.push(
                Check::warn(
                    "registry.shared_host",
                    format!(
                        "{} and {} both log in to {}: Docker asks the helper by host, so {} serves it; use the other with a Docker config of its own",
                        server.identity, other.identity, first.host, server.identity
                    ),
                )
                .with_fix(format!(
                    "DOCKER_CONFIG=\"$HOME/.docker-{profile}\" docker-credential-lightsail configure --profile {profile} --region {}",
                    other.region
                ))
                .about(&first.host),
            );
        }
    }
}

/// The checks left undone when the network budget is spent.
fn skipped<T>(report: &mut Report, subject: &str) -> Option<T> {
    report.cut_short = true;
    report.push(
        Check::warn(
            "registry.skipped",
            "not checked: the network checks' time was spent",
        )
        .about(subject),
    );
    None
}

/// The helper's configuration file cannot be used.
fn config_file_failure(err: &Error) -> Check {
    let fix = match err {
        Error::ConfigFileRefused { path, reason } if reason.contains("writable") => {
            format!("chmod 600 {}", path.display())
        }
        Error::ConfigFileRefused { path, .. } | Error::ConfigFileInvalid { path, .. } => {
            format!("python3 -m json.tool {}", path.display())
        }
        _ => "docker-credential-lightsail configure".to_string(),
    };
    Check::fail("registry.identity", one_line(&err.to_string()), fix)
}

/// A failure of the credentials, the endpoint or the login, with its check and fix.
fn failure(err: &Error, region: Option<&str>, profile: Option<&str>) -> Check {
    let message = one_line(&err.to_string());
    let aws_configure = match profile {
        Some(profile) => format!("aws configure --profile {profile}"),
        None => "aws configure".to_string(),
    };
    let region_name = region.unwrap_or("REGION");
    let (id, fix) = match err {
        Error::ProfileNotFound { profile, .. } => (
            "registry.credentials",
            format!("aws configure --profile {profile}"),
        ),
        Error::BoundProfileNotFound { missing, .. } => match missing.as_ref() {
            Error::ProfileNotFound { profile, .. } => (
                "registry.credentials",
                format!("aws configure --profile {profile}"),
            ),
            _ => ("registry.credentials", aws_configure),
        },
        Error::SsoSessionExpired { profile } => (
            "registry.credentials",
            format!("aws sso login --profile {profile}"),
        ),
        Error::NoAwsCredentials { .. }
        | Error::AwsCredentials(_)
        | Error::BadAwsCredentials { .. } => ("registry.credentials", aws_configure),
        Error::ConfigFileRefused { .. } | Error::ConfigFileInvalid { .. } => {
            return config_file_failure(err);
        }
        Error::UntrustedCertificate { .. } => (
            "registry.endpoint",
            format!("export {AWS_CA_BUNDLE_VAR}=/path/to/the-ca.pem"),
        ),
        Error::CaBundleUnreadable { from, .. }
        | Error::CaBundleEmpty { from, .. }
        | Error::CaBundleInvalid { from, .. } => (
            "registry.endpoint",
            match from {
                CaBundleFrom::Env => format!("unset {AWS_CA_BUNDLE_VAR}"),
                CaBundleFrom::Profile(profile) => {
                    format!("aws configure set ca_bundle /path/to/the-ca.pem --profile {profile}")
                }
            },
        ),
        Error::ProxyUnreachable { variable, .. } => {
            ("registry.endpoint", format!("unset {variable}"))
        }
        Error::ProxyAuthRequired { proxy, variable } => (
            "registry.endpoint",
            format!("export {variable}=http://USER:PASSWORD@{proxy}"),
        ),
        Error::ProxyRefused { endpoint, .. } => {
            let host = endpoint
                .rsplit_once(':')
                .map_or(endpoint.as_str(), |(host, _)| host);
            ("registry.endpoint", format!("export {NO_PROXY_VAR}={host}"))
        }
        Error::Unreachable { region, .. } | Error::Timeout { region, .. } => (
            "registry.endpoint",
            format!("curl -sS -o /dev/null https://lightsail.{region}.amazonaws.com/"),
        ),
        // `from` is the variable (which wins over any profile) or the profile that gave it.
        Error::InvalidRegionFrom { from, .. } if from.starts_with("AWS_") => {
            ("registry.region", format!("unset {from}"))
        }
        Error::NoRegion
        | Error::InvalidRegion(_)
        | Error::InvalidRegionFrom { .. }
        | Error::RegionLookupTimeout { .. } => (
            "registry.region",
            match profile {
                Some(profile) => format!("aws configure set region us-east-1 --profile {profile}"),
                None => "aws configure set region us-east-1".to_string(),
            },
        ),
        Error::AccessDenied { action, .. } => (
            "registry.login",
            format!(
                "aws iam put-user-policy --user-name USER --policy-name lightsail-registry --policy-document '{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":\"lightsail:{action}\",\"Resource\":\"*\"}}]}}'"
            ),
        ),
        _ => (
            "registry.login",
            format!("aws lightsail create-container-service-registry-login --region {region_name}"),
        ),
    };
    Check {
        id,
        status: Status::Fail,
        subject: None,
        message,
        fix: Some(fix),
    }
}

/// "11 h 58 min", "3 min", "40 s".
fn duration_text(seconds: u64) -> String {
    let duration = Duration::from_secs(seconds);
    let (hours, minutes) = (duration.as_secs() / 3600, duration.as_secs() / 60 % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds} s"),
        (0, minutes) => format!("{minutes} min"),
        (hours, minutes) => format!("{hours} h {minutes} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_warns_beyond_a_minute_and_fails_beyond_five() {
        let at = 1_800_000_000;
        assert_eq!(clock(at, at as i64 + 60).status, Status::Ok);
        assert_eq!(clock(at, at as i64 - 61).status, Status::Warn);
        assert_eq!(clock(at, at as i64 + 300).status, Status::Warn);
        let off = clock(at, at as i64 + 600);
        assert_eq!(off.status, Status::Fail);
        assert!(
            off.message
                .starts_with("this machine's clock is 600 s behind Lightsail's")
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_text(43_080), "11 h 58 min");
        assert_eq!(duration_text(180), "3 min");
        assert_eq!(duration_text(40), "40 s");
    }
}
