//! The checks that need no network: Docker's `config.json`, the helper Docker will run, the
//! cache folder, and the container engine for `push`.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Check, Report, helper_command};
use crate::cache::{Cache, Freshness};
use crate::cli::DoctorArgs;
use crate::config::{CACHE_DIR_VAR, Config, DOCKER_AUTH_CONFIG_VAR, DOCKER_CONFIG_VAR};
use crate::docker_config::DockerConfig;
use crate::engine::{Engine, EngineKind, PLATFORM};
use crate::error::{Error, one_line};
use crate::files::{self, Kind};
use crate::registry::Registry;

/// The value of a `credHelpers` entry that sends a host to this helper.
pub(super) const HELPER_NAME: &str = "lightsail";
const HELPER_PROGRAM: &str = "docker-credential-lightsail";
/// How long an older copy found on `PATH` may take to say its version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the container engine may take to say its API version.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

/// What `config.json` says, for the registry checks.
#[derive(Debug, Default)]
pub(super) struct DockerFacts {
    /// Bare registry hosts whose `credHelpers` entry is `lightsail`: the ones Docker asks about.
    pub helper_hosts: Vec<String>,
    /// `credsStore`, if set.
    pub creds_store: Option<String>,
}

pub(super) fn docker_config(
    config: &Config,
    args: &DoctorArgs,
    report: &mut Report,
) -> DockerFacts {
    let mut facts = DockerFacts::default();
    let configure = helper_command(
        "configure",
        args.region.as_ref().map(|r| r.as_str()),
        args.profile.as_deref(),
    );
    let Some(dir) = config.docker_config_dir.as_deref() else {
        report.push(Check::fail(
            "docker.config",
            format!("no Docker config folder: {DOCKER_CONFIG_VAR} and HOME are unset"),
            "export DOCKER_CONFIG=\"$HOME/.docker\"",
        ));
        return facts;
    };
    let docker = match DockerConfig::load(dir) {
        Ok(docker) => docker,
        Err(err) => {
            let path = dir.join("config.json");
            report.push(Check::fail(
                "docker.config",
                one_line(&err.to_string()),
                format!("python3 -m json.tool {}", path.display()),
            ));
            return facts;
        }
    };
    let path = docker.path().display().to_string();
    let chosen = if config.docker_config_from_env {
        format!(" ({DOCKER_CONFIG_VAR})")
    } else {
        String::new()
    };
    report.push(if docker.exists() {
        Check::ok("docker.config", format!("{path}{chosen} is valid JSON"))
    } else {
        Check::ok(
            "docker.config",
            format!("{path}{chosen} does not exist yet"),
        )
    });

    // The entries that name this helper, and whether Docker can ever use each.
    let entries: Vec<String> = match docker.get("credHelpers") {
        Some(Value::Object(helpers)) => helpers
            .iter()
            .filter(|(_, helper)| helper.as_str() == Some(HELPER_NAME))
            .map(|(key, _)| key.clone())
            .collect(),
        Some(_) => {
            report.push(Check::fail(
                "docker.cred_helpers",
                format!("\"credHelpers\" in {path} is not a JSON object"),
                format!("python3 -m json.tool {path}"),
            ));
            Vec::new()
        }
        None => Vec::new(),
    };
    let mut unusable = false;
    for key in &entries {
        match unusable_key(key) {
            Some(host) => report.push({
                unusable = true;
                Check::fail(
                "docker.cred_helpers",
                format!(
                    "the entry \"{key}\" is never used: Docker looks the helper up by the bare host, \"{host}\""
                ),
                match Registry::parse(&host) {
                    Some(registry) => helper_command(
                        "configure",
                        Some(registry.region.as_str()),
                        args.profile.as_deref(),
                    ),
                    None => configure.clone(),
                },
            )
            }),
            None if Registry::parse(key).is_some() => {
                report.push(Check::ok(
                    "docker.cred_helpers",
                    format!("{key} uses docker-credential-{HELPER_NAME}"),
                ));
                facts.helper_hosts.push(key.to_ascii_lowercase());
            }
            None => report.push(Check::warn(
                "docker.cred_helpers",
                format!(
                    "\"{key}\" is not an Amazon Lightsail registry host: the helper answers nothing for it"
                ),
            )),
        }
    }
    // (An unusable entry already said why Docker never asks the helper.)
    if facts.helper_hosts.is_empty() && !unusable {
        report.push(Check::fail(
            "docker.cred_helpers",
            format!(
                "no \"credHelpers\" entry in {path} sends a Lightsail registry host to docker-credential-{HELPER_NAME}: Docker never asks the helper"
            ),
            configure.clone(),
        ));
    }

    report.push(if config.docker_auth_config {
        Check::fail(
            "docker.auth_config",
            format!(
                "{DOCKER_AUTH_CONFIG_VAR} is set: Docker takes credentials from it before any credHelpers entry"
            ),
            format!("unset {DOCKER_AUTH_CONFIG_VAR}"),
        )
    } else {
        Check::ok(
            "docker.auth_config",
            format!("{DOCKER_AUTH_CONFIG_VAR} is not set"),
        )
    });

    facts.creds_store = docker
        .get("credsStore")
        .and_then(Value::as_str)
        .filter(|store| !store.is_empty())
        .map(str::to_string);
    facts
}

/// For a `credHelpers` key that Docker never looks up (`https://HOST`, `HOST/path`,
/// `HOST:443`), the bare host it should have been.
fn unusable_key(key: &str) -> Option<String> {
    let lower = key.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let host = rest.split('/').next().unwrap_or(rest);
    let host = host.strip_suffix(":443").unwrap_or(host);
    (host != lower && Registry::parse(host).is_some()).then(|| host.to_string())
}

/// The `credsStore` check, once the registry hosts are known: a store answers for every host
/// without a `credHelpers` entry.
pub(super) fn creds_store(facts: &DockerFacts, missing: &[String], report: &mut Report) {
    let Some(store) = &facts.creds_store else {
        return;
    };
    if missing.is_empty() {
        report.push(Check::ok(
            "docker.creds_store",
            format!(
                "credsStore \"{store}\" is set; the credHelpers entries come first for the Lightsail hosts"
            ),
        ));
    } else {
        report.push(Check::warn(
            "docker.creds_store",
            format!(
                "credsStore \"{store}\" answers for {}, which has no credHelpers entry",
                missing.join(", ")
            ),
        ));
    }
}

/// The first `docker-credential-lightsail` on `PATH`: the one Docker runs.
pub(super) fn helper_on_path(config: &Config, report: &mut Report) {
    let name = format!("{HELPER_PROGRAM}{}", std::env::consts::EXE_SUFFIX);
    let this = std::env::current_exe().ok();
    let this_dir = this
        .as_deref()
        .and_then(Path::parent)
        .map(|dir| dir.display().to_string())
        .unwrap_or_else(|| "FOLDER".into());
    let put_first = if cfg!(windows) {
        format!("set PATH={this_dir};%PATH%")
    } else {
        format!("export PATH=\"{this_dir}:$PATH\"")
    };
    let Some(found) = config
        .search_path
        .iter()
        .map(|dir| dir.join(&name))
        .find(|path| path.is_file())
    else {
        report.push(Check::fail(
            "helper.path",
            format!("{name} is not on PATH: Docker cannot run it"),
            put_first,
        ));
        return;
    };
    let same = |a: &Path, b: &Path| match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if this.as_deref().is_some_and(|this| same(this, &found)) {
        report.push(Check::ok(
            "helper.path",
            format!(
                "{} is this binary ({})",
                found.display(),
                env!("CARGO_PKG_VERSION")
            ),
        ));
        return;
    }
    let ours = concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION"));
    report.push(match version_of(&found) {
        Some(version) if version == ours => Check::ok(
            "helper.path",
            format!(
                "{} is another copy of this version ({})",
                found.display(),
                env!("CARGO_PKG_VERSION")
            ),
        ),
        Some(version) => Check::fail(
            "helper.path",
            format!(
                "{} comes first on PATH and is {}, not this binary ({ours}): Docker runs that one",
                found.display(),
                one_line(&version)
            ),
            put_first,
        ),
        None => Check::fail(
            "helper.path",
            format!(
                "{} comes first on PATH and does not say its version: Docker runs that one",
                found.display()
            ),
            put_first,
        ),
    });
}

/// What `program version` prints (its first line), if it does so within `VERSION_TIMEOUT`.
fn version_of(program: &Path) -> Option<String> {
    let mut child = Command::new(program)
        .arg("version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let output = child.wait_with_output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .next()
        .map(|line| line.trim().to_string())
        .filter(|line| !line.is_empty())
}

/// The cache folder: its checks as the helper makes them, its entries and locks.
pub(super) fn cache_folder(config: &Config, now: u64, report: &mut Report) {
    let Some(dir) = config.cache_dir.as_deref() else {
        report.push(
            Check::warn(
                "cache.folder",
                "no cache folder (no home folder): every pull and push asks the Lightsail API",
            )
            .with_fix(format!(
                "export {CACHE_DIR_VAR}=\"$HOME/.cache/docker-credential-lightsail\""
            )),
        );
        return;
    };
    let shown = dir.display();
    let metadata = match fs::symlink_metadata(dir) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            report.push(Check::ok(
                "cache.folder",
                format!("{shown} does not exist yet: the first login creates it, private"),
            ));
            return;
        }
        Err(err) => {
            report.push(Check::fail(
                "cache.folder",
                format!("cannot read {shown}: {err}"),
                format!("ls -ld {shown}"),
            ));
            return;
        }
    };
    if let Some(reason) = files::refusal(&metadata, Kind::Directory) {
        report.push(Check::fail(
            "cache.folder",
            format!("{shown}: {reason}; the helper refuses it and caches nothing"),
            folder_fix(dir, reason),
        ));
        return;
    }
    report.push(Check::ok(
        "cache.folder",
        format!("{shown}{}", owner_and_mode(&metadata)),
    ));
    let cache = match Cache::open(dir) {
        Ok(cache) => cache,
        Err(err) => {
            report.push(Check::fail(
                "cache.entries",
                one_line(&err.to_string()),
                format!("chmod 700 {shown}"),
            ));
            return;
        }
    };
    let entries = cache.entries();
    let expired = entries
        .iter()
        .filter(|(_, entry)| entry.login.freshness(now, Duration::ZERO) == Freshness::Expired)
        .count();
    let held: Vec<String> = entries
        .iter()
        .filter_map(|(slot, _)| match slot.lock(Duration::ZERO) {
            Err(Error::LockTimeout { path, .. }) => Some(path.display().to_string()),
            _ => None,
        })
        .collect();
    let counted = format!("cached entries: {}, expired: {expired}", entries.len());
    report.push(if held.is_empty() {
        Check::ok("cache.entries", format!("{counted}; no lock held"))
    } else {
        Check::warn(
            "cache.entries",
            format!(
                "{counted}; a lock is held (another docker-credential-lightsail is fetching a login): {}",
                held.join(", ")
            ),
        )
    });
}

/// The command that makes a refused folder usable.
fn folder_fix(dir: &Path, reason: &str) -> String {
    let shown = dir.display();
    match reason {
        "it is writable by group or others" => format!("chmod 700 {shown}"),
        "it is owned by another user" => format!("sudo chown \"$(id -u)\" {shown}"),
        _ => format!("mv {shown} {shown}.old"),
    }
}

#[cfg(unix)]
fn owner_and_mode(metadata: &fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        ": yours (uid {}), mode {:04o}",
        metadata.uid(),
        metadata.mode() & 0o7777
    )
}

#[cfg(not(unix))]
fn owner_and_mode(_: &fs::Metadata) -> String {
    String::new()
}

/// `Engine::find`, given `ENGINE_TIMEOUT` to answer: an engine behind a dead `DOCKER_HOST` must
/// not hold the run up. (A client that does not answer is left to end by itself.)
fn find_engine(kind: EngineKind, config: &Config) -> Result<Engine, Error> {
    let (sent, received) = mpsc::channel();
    let config = config.clone();
    thread::spawn(move || {
        let _ = sent.send(Engine::find(kind, &config));
    });
    received.recv_timeout(ENGINE_TIMEOUT).unwrap_or_else(|_| {
        Err(Error::EngineNotRunning {
            engine: kind.name(),
            detail: format!("no answer within {} s", ENGINE_TIMEOUT.as_secs()),
        })
    })
}

/// The engine `push` drives: found, answering, its API, and whether it can pick linux/amd64.
pub(super) fn engine(config: &Config, report: &mut Report) {
    let found = match find_engine(EngineKind::Docker, config) {
        Err(Error::EngineMissing { .. }) => match find_engine(EngineKind::Podman, config) {
            Ok(podman) => {
                report.push(Check::ok(
                    "engine.found",
                    format!(
                        "podman at {} (docker is not on PATH: use push --engine podman)",
                        podman.program().display()
                    ),
                ));
                return;
            }
            Err(Error::EngineMissing { .. }) => {
                report.push(Check::fail(
                    "engine.found",
                    "neither docker nor podman is on PATH: push needs one",
                    "curl -fsSL https://get.docker.com | sh",
                ));
                return;
            }
            Err(err) => Err(err),
        },
        other => other,
    };
    let engine = match found {
        Ok(engine) => engine,
        Err(err @ Error::EngineNotRunning { .. }) => {
            report.push(Check::fail(
                "engine.found",
                one_line(&err.to_string()),
                "sudo systemctl start docker",
            ));
            return;
        }
        Err(err) => {
            report.push(Check::fail(
                "engine.found",
                one_line(&err.to_string()),
                "docker version",
            ));
            return;
        }
    };
    let api = engine.api_version().unwrap_or("unknown");
    report.push(Check::ok(
        "engine.found",
        format!(
            "{} at {} answers, engine API {api}",
            engine.name(),
            engine.program().display()
        ),
    ));
    report.push(if engine.picks_platform() {
        Check::ok(
            "engine.platform",
            format!("the engine can pick {PLATFORM} out of a multi-platform image"),
        )
    } else {
        Check::warn(
            "engine.platform",
            format!(
                "engine API {api} is older than 1.49: push cannot pick {PLATFORM} out of a multi-platform image; build with --platform {PLATFORM}"
            ),
        )
        .with_fix(format!("docker build --platform {PLATFORM} ."))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    #[test]
    fn keys_docker_never_looks_up_name_their_bare_host() {
        for key in [
            format!("https://{HOST}"),
            format!("{HOST}/sr"),
            format!("{HOST}:443"),
            format!("https://{HOST}:443/"),
        ] {
            assert_eq!(unusable_key(&key).as_deref(), Some(HOST), "{key}");
        }
        assert_eq!(unusable_key(HOST), None);
        assert_eq!(unusable_key("https://ghcr.io"), None);
    }
}
