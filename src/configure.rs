//! `configure`: points Docker at this helper for the user's Lightsail registries.

use std::path::Path;

use sha2::{Digest, Sha256};
use tracing::debug;

use crate::actions::region_login;
use crate::bindings::{self, Bindings};
use crate::cache::{Cache, Freshness, Login};
use crate::cli::ConfigureArgs;
use crate::config::{Config, DOCKER_CONFIG_VAR};
use crate::docker_config::{Change, DockerConfig};
use crate::error::{Error, Result};
use crate::files::{self, FileLock};
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
    let dir = config.docker_config_dir.as_deref().ok_or_else(|| {
        Error::DockerConfig(format!(
            "no Docker config folder: set {DOCKER_CONFIG_VAR} or HOME"
        ))
    })?;
    let bindings_path = match (&args.profile, bindings::path(config)) {
        (Some(_), None) => return Err(Error::NoConfigDir),
        (_, path) => path,
    };
    // Read (and checked) before any API call or write: a refused file changes nothing. A dry run
    // shows what would change in them.
    let mut docker = DockerConfig::load(dir)?;
    let mut bindings = read_bindings(args, bindings_path.as_deref())?;

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

    let plan = if args.dry_run {
        plan(&mut docker, bindings.as_mut(), &hosts, args)?
    } else {
        // Each file is read again, changed and written under its lock, so that another
        // `configure` running at the same time (another profile, another region) cannot write
        // its older copy over this one's change, nor this one over its.
        let _locks = lock(config, args, &docker)?;
        docker = DockerConfig::load(dir)?;
        bindings = read_bindings(args, bindings_path.as_deref())?;
        let plan = plan(&mut docker, bindings.as_mut(), &hosts, args)?;
        // The binding first: a credHelpers entry without it would let `get` use another identity.
        if let Some(bindings) = bindings.as_ref().filter(|_| plan.bindings_changed) {
            bindings.save()?;
        }
        if !plan.added.is_empty() {
            docker.save()?;
        }
        plan
    };

    let mut text = String::new();
    let path = docker.path().display();
    if plan.added.is_empty() {
        let all: Vec<&str> = hosts.iter().map(|(_, host)| host.as_str()).collect();
        let nothing = if plan.bindings_changed {
            ""
        } else {
            ": nothing to change"
        };
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
        for host in &plan.added {
            text.push_str(&format!(
                "  \"credHelpers\": {{ \"{host}\": \"{HELPER_NAME}\" }}\n"
            ));
        }
        for (host, old) in &plan.replaced {
            let verb = if args.dry_run {
                "would replace"
            } else {
                "replaced"
            };
            text.push_str(&format!(
                "Note: {verb} {old} with {HELPER_NAME} for {host}.\n"
            ));
        }
    }
    for line in &plan.binding_lines {
        text.push_str(&format!("{line}\n"));
    }
    if args.dry_run && (!plan.added.is_empty() || plan.bindings_changed) {
        text.push_str("Dry run: nothing written.\n");
    }
    if !on_path(config) {
        text.push_str(&format!(
            "\nNote: docker-credential-{HELPER_NAME} is not on your PATH; Docker will not find it until it is.\n"
        ));
    }
    text.push_str(&next_steps(args, &hosts));
    output.result(text.trim_end())
}

/// The bindings file as `configure` needs it: with `--profile`, the file or none yet (it may be
/// created); without, the file if there is one (to say which hosts stay bound).
fn read_bindings(args: &ConfigureArgs, path: Option<&Path>) -> Result<Option<Bindings>> {
    match (&args.profile, path) {
        (Some(_), Some(path)) => Bindings::load_or_empty(path).map(Some),
        (_, Some(path)) => Bindings::read(path),
        (_, None) => Ok(None),
    }
}

/// Logs in (with `--profile`'s profile, if given) in each region: that finds the registry
/// hosts, and warms the cache for the first push. A dry run writes nothing, so it only reads a
/// fresh login from an existing cache, and otherwise asks the API.
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
    let cache = match config.cache_dir.as_deref() {
        Some(dir) if args.dry_run && !dir.exists() => None,
        Some(dir) => match Cache::open(dir) {
            Ok(cache) => Some(cache),
            Err(err) => {
                output.note(format_args!("Note: not caching logins: {err}"));
                None
            }
        },
        None => None,
    };
    let mut hosts = Vec::new();
    for region in regions {
        let fetch = |r: &Region| fetch_login(config, r);
        let login = match &cache {
            Some(cache) if args.dry_run => {
                let fresh =
                    |login: &Login| login.freshness(now, config.refresh_margin) == Freshness::Fresh;
                match cache.login_slot(&region, &config.identity).read() {
                    Some(login) if fresh(&login) => login,
                    _ => fetch(&region)?,
                }
            }
            cache => region_login(config, cache.as_ref(), &region, now, fetch)?,
        };
        hosts.push((region, login.registry));
    }
    Ok(hosts)
}

/// The lock files of what `configure` rewrites, taken in this order by every run: the bindings
/// file's (with `--profile`), beside it in the helper's config folder, then the one of this
/// Docker `config.json`, in the cache folder (which `configure` uses anyway), named after a hash
/// of the file's real path: never beside the user's `config.json`, and one lock for every name
/// of that file. Without a usable cache folder, Docker's file is written without a lock.
fn lock(config: &Config, args: &ConfigureArgs, docker: &DockerConfig) -> Result<Vec<FileLock>> {
    let mut locks = Vec::new();
    if let (Some(_), Some(dir)) = (&args.profile, &config.config_dir) {
        bindings::own_dir(dir)?;
        let name = format!("{}.lock", bindings::FILE_NAME);
        locks.push(files::lock(&dir.join(name), config.lock_timeout)?);
    }
    let Some(cache) = Cache::open_or_log(config.cache_dir.as_deref()) else {
        debug!(
            "no cache folder for the lock of {}",
            docker.path().display()
        );
        return Ok(locks);
    };
    let target = files::canonical(docker.target());
    let hash = Sha256::digest(target.as_os_str().as_encoded_bytes());
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("docker-config-{hex}.lock");
    locks.push(files::lock(&cache.dir().join(name), config.lock_timeout)?);
    Ok(locks)
}

/// What `configure` changes in the two files, and the lines that say so.
struct Plan {
    /// Hosts given a `credHelpers` entry for this helper.
    added: Vec<String>,
    /// Hosts whose entry named another helper before, with that helper.
    replaced: Vec<(String, String)>,
    binding_lines: Vec<String>,
    bindings_changed: bool,
}

/// Makes the changes in the loaded documents (writing is the caller's), and says what they are.
fn plan(
    docker: &mut DockerConfig,
    bindings: Option<&mut Bindings>,
    hosts: &[(Region, String)],
    args: &ConfigureArgs,
) -> Result<Plan> {
    let mut plan = Plan {
        added: Vec::new(),
        replaced: Vec::new(),
        binding_lines: Vec::new(),
        bindings_changed: false,
    };
    for (_, host) in hosts {
        match docker.set_cred_helper(host, HELPER_NAME)? {
            Change::Unchanged => continue,
            Change::Added => {}
            Change::Replaced(old) => plan.replaced.push((host.clone(), old)),
        }
        plan.added.push(host.clone());
    }
    let Some(bindings) = bindings else {
        return Ok(plan);
    };
    let file = bindings.path().display().to_string();
    for (_, host) in hosts {
        let line = match (&args.profile, bindings.profile(host).map(str::to_string)) {
            (Some(profile), Some(old)) if old == *profile => {
                format!("{host} already uses AWS profile '{profile}' ({file}).")
            }
            (Some(profile), old) => {
                plan.bindings_changed = true;
                bindings.bind(host, profile);
                match (old, args.dry_run) {
                    (Some(old), true) => format!(
                        "Would rebind {host} from AWS profile '{old}' to '{profile}' in {file}."
                    ),
                    (Some(old), false) => {
                        format!("Rebound {host} from AWS profile '{old}' to '{profile}' in {file}.")
                    }
                    (None, true) => {
                        format!("Would bind {host} to AWS profile '{profile}' in {file}.")
                    }
                    (None, false) => format!("Bound {host} to AWS profile '{profile}' in {file}."),
                }
            }
            (None, Some(old)) => format!(
                "{host} stays bound to AWS profile '{old}' ({file}): `get` uses that profile for it."
            ),
            (None, None) => continue,
        };
        plan.binding_lines.push(line);
    }
    Ok(plan)
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
