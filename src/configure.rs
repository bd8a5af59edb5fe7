//! `configure`: points Docker at this helper for the user's Lightsail registries.

use std::io::Write;

use crate::cache::Cache;
use crate::cli::ConfigureArgs;
use crate::config::Config;
use crate::docker_config::DockerConfig;
use crate::error::{Error, Result};
use crate::helper::{fetch_login, region_login};
use crate::register::resolve_region;

/// The suffix Docker appends to `docker-credential-` to find this binary.
const HELPER_NAME: &str = "lightsail";

pub fn configure(config: &Config, args: &ConfigureArgs, output: &mut impl Write) -> Result<()> {
    let regions = if args.regions.is_empty() {
        vec![resolve_region(config, None)?]
    } else {
        args.regions
            .iter()
            .map(|region| resolve_region(config, Some(region)))
            .collect::<Result<_>>()?
    };
    // Fetching the login both finds the registry host and warms the cache for the first push.
    let cache = config.cache_dir.as_deref().and_then(Cache::open);
    let mut hosts = Vec::new();
    for region in &regions {
        let login = region_login(config, cache.as_ref(), region, |r| fetch_login(config, r))?;
        hosts.push((region.clone(), login.registry));
    }

    let dir = config.docker_config_dir.as_deref().ok_or_else(|| {
        Error::DockerConfig("no Docker config folder: set DOCKER_CONFIG or HOME".into())
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
        text.push_str(&format!(
            "{path} already uses docker-credential-{HELPER_NAME} for "
        ));
        text.push_str(
            &hosts
                .iter()
                .map(|(_, h)| h.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        );
        text.push_str(": nothing to change.\n");
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
    if !on_path() {
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
    output
        .write_all(text.as_bytes())
        .map_err(|err| Error::io("cannot write to", "standard output", err))
}

fn on_path() -> bool {
    let name = format!("docker-credential-{HELPER_NAME}");
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(&name).is_file()))
        .unwrap_or(false)
}
