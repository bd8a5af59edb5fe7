//! `configure`: points Docker at this helper for the user's Lightsail registries.

use crate::actions::region_login;
use crate::bindings::{self, Bindings};
use crate::cache::Cache;
use crate::cli::ConfigureArgs;
use crate::config::{Config, DOCKER_CONFIG_VAR};
use crate::docker_config::DockerConfig;
use crate::error::{Error, Result};
use crate::lightsail::{check_profile_exists, fetch_login, resolve_region};
use crate::output::Output;
use crate::registry::{Region, Registry};

/// The suffix Docker appends to `docker-credential-` to find this binary.
const HELPER_NAME: &str = "lightsail";

pub fn configure(
    config: &Config,
    args: &ConfigureArgs,
    now: u64,
    output: &mut Output,
) -> Result<()> {
    // `--profile`: that profile, and only it, logs in (and so tells the registry hosts).
    let bound;
    let config = match &args.profile {
        Some(profile) => {
            check_profile_exists(config, profile)?;
            bound = config.bound_to(profile, None);
            &bound
        }
        None => config,
    };
    let hosts = if args.registries.is_empty() {
        login_hosts(config, args, now, output)?
    } else {
        // `--registry HOST`: the entry alone, no API call (cli.rs checked the host's shape).
        args.registries
            .iter()
            .filter_map(|host| {
                Registry::parse(host).map(|registry| (registry.region, host.clone()))
            })
            .collect()
    };

    let dir = config.docker_config_dir.as_deref().ok_or_else(|| {
        Error::DockerConfig(format!(
            "no Docker config folder: set {DOCKER_CONFIG_VAR} or HOME"
        ))
    })?;
    let mut docker = DockerConfig::load(dir)?;
    let mut added = Vec::new();
    for (_, host) in &hosts {
        if docker.set_cred_helper(host, HELPER_NAME)? {
            added.push(host.as_str());
        }
    }

    // Read (and checked) before anything is written: a refused file changes nothing.
    let mut bindings = match (&args.profile, bindings::path(config)) {
        (Some(_), None) => return Err(Error::NoConfigDir),
        (Some(_), Some(path)) => Some(Bindings::load_or_empty(&path)?),
        (None, Some(path)) => Bindings::read(&path)?,
        (None, None) => None,
    };
    let mut binding_lines = Vec::new();
    let mut changed = false;
    if let Some(bindings) = &mut bindings {
        let file = bindings.path().display().to_string();
        for (_, host) in &hosts {
            let line = match (&args.profile, bindings.profile(host).map(str::to_string)) {
                (Some(profile), Some(old)) if old == *profile => {
                    format!("{host} already uses AWS profile '{profile}' ({file}).")
                }
                (Some(profile), old) => {
                    changed = true;
                    bindings.bind(host, profile);
                    match (old, args.dry_run) {
                        (Some(old), true) => format!(
                            "Would rebind {host} from AWS profile '{old}' to '{profile}' in {file}."
                        ),
                        (Some(old), false) => format!(
                            "Rebound {host} from AWS profile '{old}' to '{profile}' in {file}."
                        ),
                        (None, true) => {
                            format!("Would bind {host} to AWS profile '{profile}' in {file}.")
                        }
                        (None, false) => {
                            format!("Bound {host} to AWS profile '{profile}' in {file}.")
                        }
                    }
                }
                (None, Some(old)) => format!(
                    "{host} stays bound to AWS profile '{old}' ({file}): `get` uses that profile for it."
                ),
                (None, None) => continue,
            };
            binding_lines.push(line);
        }
    }

    let mut text = String::new();
    let path = docker.path().display();
    if added.is_empty() {
        let all: Vec<&str> = hosts.iter().map(|(_, host)| host.as_str()).collect();
        let nothing = if changed { "" } else { ": nothing to change" };
        text.push_str(&format!(
            "{path} already uses docker-credential-{HELPER_NAME} for {}{nothing}.\n",
            all.join(", ")
        ));
    } else {
        let verb = if args.dry_run {
            "Would add to"
        } else {
            "Added to"
        };
        text.push_str(&format!("{verb} {path}:\n"));
        for host in &added {
            text.push_str(&format!(
                "  \"credHelpers\": {{ \"{host}\": \"{HELPER_NAME}\" }}\n"
            ));
        }
    }
    for line in &binding_lines {
        text.push_str(&format!("{line}\n"));
    }
    if args.dry_run && (!added.is_empty() || changed) {
        text.push_str("Dry run: nothing written.\n");
    } else if !args.dry_run {
        // The binding first: a credHelpers entry without it would let `get` use another identity.
        if let Some(bindings) = bindings.as_ref().filter(|_| changed) {
            bindings.save()?;
        }
        if !added.is_empty() {
            docker.save()?;
        }
    }
    if !on_path(config) {
        text.push_str(&format!(
            "\nNote: docker-credential-{HELPER_NAME} is not on your PATH; Docker will not find it until it is.\n"
        ));
    }
    text.push_str(&next_steps(args, &hosts));
    output.result(text.trim_end())
}

/// Logs in (with `--profile`'s profile, if given) in each region: that finds the registry
/// hosts, and warms the cache for the first push.
fn login_hosts(
    config: &Config,
    args: &ConfigureArgs,
    now: u64,
    output: &mut Output,
) -> Result<Vec<(Region, String)>> {
    let regions = if args.regions.is_empty() {
        vec![resolve_region(config, None)?]
    } else {
        args.regions.clone()
    };
    let cache = match config.cache_dir.as_deref().map(Cache::open) {
        Some(Ok(cache)) => Some(cache),
        Some(Err(err)) => {
            output.note(format_args!("Note: not caching logins: {err}"));
            None
        }
        None => None,
    };
    let mut hosts = Vec::new();
    for region in regions {
        let login = region_login(config, cache.as_ref(), &region, now, |r| {
            fetch_login(config, r)
        })?;
        hosts.push((region, login.registry));
    }
    Ok(hosts)
}

/// What to run next: the README's `push` (with the same `--profile`), or for `--registry`,
/// where there may be no AWS credentials, the `docker login` the helper keeps.
fn next_steps(args: &ConfigureArgs, hosts: &[(Region, String)]) -> String {
    let mut text = String::new();
    if !args.registries.is_empty() {
        for (region, host) in hosts {
            text.push_str(&format!(
                "\nTo log in to {host} (the helper keeps the login for its 12 hours):\n  \
                 aws lightsail create-container-service-registry-login --region {region} --query registryLogin.password --output text | docker login -u AWS --password-stdin {host}\n"
            ));
        }
        return text;
    }
    let profile = args
        .profile
        .as_ref()
        .map(|profile| format!(" --profile {profile}"))
        .unwrap_or_default();
    for (region, _) in hosts {
        text.push_str(&format!(
            "\nTo push an image to your Lightsail container service in {region}:\n  \
             docker-credential-{HELPER_NAME} push --region {region}{profile} --service SERVICE --label LABEL IMAGE\n"
        ));
    }
    text
}

fn on_path(config: &Config) -> bool {
    let name = format!("docker-credential-{HELPER_NAME}");
    config
        .search_path
        .iter()
        .any(|dir| dir.join(&name).is_file())
}
