//! `configure`: points Docker at this helper for the user's Lightsail registries.

use crate::actions::region_login;
use crate::cache::Cache;
use crate::cli::ConfigureArgs;
use crate::config::{Config, DOCKER_CONFIG_VAR};
use crate::docker_config::DockerConfig;
use crate::error::{Error, Result};
use crate::lightsail::{fetch_login, resolve_region};
use crate::output::Output;

/// The suffix Docker appends to `docker-credential-` to find this binary.
const HELPER_NAME: &str = "lightsail";

pub fn configure(
    config: &Config,
    args: &ConfigureArgs,
    now: u64,
    output: &mut Output,
) -> Result<()> {
    let regions = if args.regions.is_empty() {
        vec![resolve_region(config, None)?]
    } else {
        args.regions.clone()
    };
    // Fetching the login both finds the registry host and warms the cache for the first push.
    let cache = match config.cache_dir.as_deref().map(Cache::open) {
        Some(Ok(cache)) => Some(cache),
        Some(Err(err)) => {
            output.note(format_args!("Note: not caching logins: {err}"));
            None
        }
        None => None,
    };
    let mut hosts = Vec::new();
    for region in &regions {
        let login = region_login(config, cache.as_ref(), region, now, |r| {
            fetch_login(config, r)
        })?;
        hosts.push((region, login.registry));
    }

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

    let mut text = String::new();
    let path = docker.path().display();
    if added.is_empty() {
        let all: Vec<&str> = hosts.iter().map(|(_, host)| host.as_str()).collect();
        text.push_str(&format!(
            "{path} already uses docker-credential-{HELPER_NAME} for {}: nothing to change.\n",
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
        if args.dry_run {
            text.push_str("Dry run: nothing written.\n");
        } else {
            docker.save()?;
        }
    }
    if !on_path(config) {
        text.push_str(&format!(
            "\nNote: docker-credential-{HELPER_NAME} is not on your PATH; Docker will not find it until it is.\n"
        ));
    }
    for (region, host) in &hosts {
        text.push_str(&format!(
            "\nTo push an image to your Lightsail container service in {region}:\n  \
             docker tag IMAGE {host}/sr:TAG\n  \
             docker push {host}/sr:TAG\n  \
             docker-credential-{HELPER_NAME} register --region {region} --service SERVICE --label LABEL --digest <digest that docker push printed>\n"
        ));
    }
    output.result(text.trim_end())
}

fn on_path(config: &Config) -> bool {
    let name = format!("docker-credential-{HELPER_NAME}");
    config
        .search_path
        .iter()
        .any(|dir| dir.join(&name).is_file())
}
