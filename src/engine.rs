//! The user's container engine, driven through its own command line (`docker`, or `podman` on
//! request), so that `DOCKER_HOST`, Docker contexts and remote engines work as the user set them
//! up. The registry password reaches the engine in a private temporary file, never on a command
//! line (anyone can read those in `ps`), and the user's own configuration is not touched.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::cache::Login;
use crate::config::{Config, DOCKER_CONFIG_VAR};
use crate::error::{Error, Result, one_line};

/// The private folders of `push` in the temp directory: this, then the pid of the run.
const FOLDER_PREFIX: &str = "docker-credential-lightsail-";
/// How often a running engine command is checked for a stop request.
const STOP_POLL: Duration = Duration::from_millis(50);
/// An engine asked to stop gets this long to do so before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Which engine client `push` drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    Docker,
    Podman,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker",
            EngineKind::Podman => "podman",
        }
    }
}

/// A local image as the engine describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    /// `os/architecture`, as in `linux/amd64`.
    pub platform: String,
    /// How many repository tags it has: an image known only by its id has none, and removing
    /// the only tag would delete it.
    pub tags: usize,
}

/// The platform Lightsail runs.
pub const PLATFORM: &str = "linux/amd64";
/// The Docker Engine API version from which `image inspect` and `push` take `--platform`, so
/// that the linux/amd64 image of a multi-platform image is the one checked and pushed.
const PLATFORM_API: (u32, u32) = (1, 49);

pub struct Engine {
    kind: EngineKind,
    program: PathBuf,
    /// The user's Docker config folder, for the current context (docker only).
    docker_config_dir: Option<PathBuf>,
    /// Whether the engine picks one platform of a multi-platform image (`--platform`).
    picks_platform: bool,
    /// The engine's API version, as it said it (docker only).
    api_version: Option<String>,
}

impl Engine {
    /// The engine's client on `PATH`, and (docker) what its engine's API can do: an engine
    /// that is not running is found out here, before anything else.
    pub fn find(kind: EngineKind, config: &Config) -> Result<Engine> {
        let program = config
            .search_path
            .iter()
            .map(|dir| dir.join(program_name(kind)))
            .find(|path| path.is_file())
            .ok_or(Error::EngineMissing {
                engine: kind.name(),
            })?;
        let mut engine = Engine {
            kind,
            program,
            docker_config_dir: config.docker_config_dir.clone(),
            picks_platform: false,
            api_version: None,
        };
        if kind == EngineKind::Docker {
            let version = engine.run(
                "version",
                &["version", "--format", "{{.Server.APIVersion}}"],
            )?;
            engine.picks_platform = api_version(&version).is_some_and(|v| v >= PLATFORM_API);
            engine.api_version = Some(one_line(&version));
        }
        Ok(engine)
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// The client program found on `PATH`.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The engine's API version (docker only), for `doctor`.
    pub fn api_version(&self) -> Option<&str> {
        self.api_version.as_deref()
    }

    /// Whether `push` can pick linux/amd64 out of a multi-platform image.
    pub fn picks_platform(&self) -> bool {
        self.picks_platform
    }

    /// The local image `image`: its platform and how many tags it has.
    /// Of a multi-platform image, its linux/amd64 image where the engine can pick one.
    pub fn inspect(&self, image: &str) -> Result<LocalImage> {
        let format = "{{.Os}}/{{.Architecture}} {{len .RepoTags}}";
        let mut args = vec!["image", "inspect"];
        if self.picks_platform {
            args.extend(["--platform", PLATFORM]);
        }
        args.extend(["--format", format, image]);
        let out = self.run("inspect", &args).map_err(|err| match err {
            Error::EngineFailed { detail, .. } if is_missing_image(&detail) => Error::NoSuchImage {
                engine: self.name(),
                image: one_line(image),
            },
            Error::EngineFailed { detail, .. } if detail.contains("does not provide") => {
                Error::WrongPlatform {
                    image: one_line(image),
                    platform: "other platforms only".to_string(),
                }
            }
            other => other,
        })?;
        let mut words = out.split_whitespace();
        match (words.next(), words.next().and_then(|n| n.parse().ok())) {
            (Some(platform), Some(tags)) => Ok(LocalImage {
                platform: platform.to_string(),
                tags,
            }),
            _ => Err(Error::EngineFailed {
                engine: self.name(),
                action: "image inspect",
                detail: format!("unexpected answer {:?}", one_line(&out)),
            }),
        }
    }

    pub fn tag(&self, image: &str, target: &str) -> Result<()> {
        self.run("tag", &["tag", image, target]).map(drop)
    }

    /// Removes the tag `target` only (the image stays under its other names).
    pub fn untag(&self, image: &str, target: &str) -> Result<()> {
        self.run("untag", &self.untag_args(image, target)).map(drop)
    }

    /// The command line that removes the tag `target`, for a person to run.
    pub fn untag_command(&self, image: &str, target: &str) -> String {
        format!(
            "{} {}",
            self.name(),
            self.untag_args(image, target).join(" ")
        )
    }

    fn untag_args<'a>(&self, image: &'a str, target: &'a str) -> Vec<&'a str> {
        match self.kind {
            EngineKind::Docker => vec!["image", "rm", target],
            EngineKind::Podman => vec!["untag", image, target],
        }
    }

    /// Pushes `target` with `login`'s credentials; every line of the engine's progress goes to
    /// `progress`. Returns the digest of the manifest the registry received for `target`.
    /// Once `stop()` says so, the engine is stopped and `Error::EngineStopped` returned; the
    /// private folder with the password is gone when this returns, whatever ended it.
    pub fn push(
        &self,
        target: &str,
        login: &Login,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(&str),
    ) -> Result<String> {
        remove_abandoned_folders(&std::env::temp_dir());
        let private = private_dir()?;
        let auth = json!({ "auths": { login.registry.as_str(): {
            "auth": aws_smithy_types::base64::encode(
                format!("{}:{}", login.username, login.secret.expose())
            )
        }}});
        let mut command = Command::new(&self.program);
        let digest_file = private.path().join("digest");
        match self.kind {
            EngineKind::Docker => {
                let mut config = auth;
                if let Some(context) = self.current_context() {
                    config["currentContext"] = Value::String(context);
                    if let Some(user) = &self.docker_config_dir {
                        link_contexts(&user.join("contexts"), &private.path().join("contexts"));
                    }
                }
                write_private(&private.path().join("config.json"), &config)?;
                command.env(DOCKER_CONFIG_VAR, private.path()).arg("push");
                if self.picks_platform {
                    command.args(["--platform", PLATFORM]);
                }
                command.arg(target);
            }
            EngineKind::Podman => {
                let auth_file = private.path().join("auth.json");
                write_private(&auth_file, &auth)?;
                command
                    .arg("push")
                    .arg("--authfile")
                    .arg(&auth_file)
                    .arg("--digestfile")
                    .arg(&digest_file)
                    .arg(target);
            }
        }
        let (status, last_error, printed) = self.stream(command, stop, progress)?;
        if stop() {
            return Err(Error::EngineStopped {
                engine: self.name(),
            });
        }
        if !status {
            return Err(Error::EngineFailed {
                engine: self.name(),
                action: "push",
                detail: last_error,
            });
        }
        let digest = match self.kind {
            EngineKind::Docker => digest_of(&printed, target),
            EngineKind::Podman => fs::read_to_string(&digest_file)
                .ok()
                .and_then(|text| digest_in(&format!("digest: {}", text.trim()))),
        };
        digest.ok_or(Error::NoDigest {
            engine: self.name(),
        })
    }

    /// The current Docker context named in the user's config.json, if any: a private config
    /// folder must not lose it.
    fn current_context(&self) -> Option<String> {
        let text = fs::read_to_string(self.docker_config_dir.as_ref()?.join("config.json")).ok()?;
        let doc: Map<String, Value> = serde_json::from_str(&text).ok()?;
        doc.get("currentContext")?.as_str().map(str::to_string)
    }

    /// Runs the engine and returns its stdout; a failure is one line from its stderr.
    fn run(&self, action: &'static str, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|err| Error::io("cannot run", &self.program, err))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(self.failure(action, last_line(&stderr)))
    }

    /// Runs `command`, passing every output line to `progress` as it comes, and stops it once
    /// `stop()` says so. Returns whether it succeeded, its last stderr line, and its stdout lines.
    fn stream(
        &self,
        mut command: Command,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(bool, String, Vec<String>)> {
        // In a process group of its own, so that a Ctrl-C at the terminal reaches this process
        // only, which then stops the engine itself, and then cleans up after it.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| Error::io("cannot run", &self.program, err))?;
        let (lines, received) = mpsc::channel();
        let readers = [
            child
                .stdout
                .take()
                .map(|pipe| read_lines(pipe, false, lines.clone())),
            child
                .stderr
                .take()
                .map(|pipe| read_lines(pipe, true, lines)),
        ];
        let (mut printed, mut last_error) = (Vec::new(), String::new());
        let mut stopping: Option<(Instant, bool)> = None;
        loop {
            let (is_stderr, line) = match received.recv_timeout(STOP_POLL) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    match stopping {
                        None if stop() => {
                            stop_child(&mut child, false);
                            stopping = Some((Instant::now(), false));
                        }
                        Some((since, false)) if since.elapsed() >= STOP_GRACE => {
                            stop_child(&mut child, true);
                            stopping = Some((since, true));
                        }
                        _ => {}
                    }
                    continue;
                }
            };
            progress(&line);
            if is_stderr {
                if !line.trim().is_empty() {
                    last_error = line;
                }
            } else {
                printed.push(line);
            }
        }
        for reader in readers.into_iter().flatten() {
            let _ = reader.join();
        }
        let status = child
            .wait()
            .map_err(|err| Error::io("cannot wait for", &self.program, err))?;
        if !status.success() && last_error.is_empty() {
            last_error = format!("exit status {status}");
        }
        let last_error = match self.failure("push", &last_error) {
            Error::EngineFailed { detail, .. } => detail,
            other => other.to_string(),
        };
        Ok((status.success(), last_error, printed))
    }

    /// The error for a failed engine command, telling "the engine is not running" apart.
    fn failure(&self, action: &'static str, stderr_line: &str) -> Error {
        let detail = one_line(stderr_line);
        let lower = detail.to_ascii_lowercase();
        if lower.contains("cannot connect to the docker daemon")
            || lower.contains("is the docker daemon running")
            || lower.contains("connection refused")
            || lower.contains("unable to connect to podman")
        {
            Error::EngineNotRunning {
                engine: self.name(),
                detail,
            }
        } else {
            Error::EngineFailed {
                engine: self.name(),
                action,
                detail,
            }
        }
    }
}

/// Asks `child` (and its process group) to stop, or with `kill`, kills it.
fn stop_child(child: &mut std::process::Child, kill: bool) {
    #[cfg(unix)]
    {
        use rustix::process::{Pid, Signal, kill_process_group};
        let signal = if kill { Signal::KILL } else { Signal::TERM };
        let _ = kill_process_group(Pid::from_child(child), signal);
    }
    #[cfg(not(unix))]
    {
        let _ = kill;
        let _ = child.kill();
    }
}

/// `docker`, or `docker.exe` on Windows.
fn program_name(kind: EngineKind) -> String {
    format!("{}{}", kind.name(), std::env::consts::EXE_SUFFIX)
}

/// `1.49` as (1, 49).
fn api_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn read_lines(
    pipe: impl Read + Send + 'static,
    is_stderr: bool,
    lines: mpsc::Sender<(bool, String)>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if lines.send((is_stderr, line)).is_err() {
                break;
            }
        }
    })
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("no message")
}

fn is_missing_image(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    lower.contains("no such image") || lower.contains("image not known")
}

/// The digest the engine reported for `target`'s tag (`<tag>: digest: sha256:…`): the last
/// such line, never another tag's.
fn digest_of(printed: &[String], target: &str) -> Option<String> {
    let tag = target.rsplit_once(':').map_or(target, |(_, tag)| tag);
    let ours = format!("{tag}: digest: ");
    printed
        .iter()
        .rev()
        .find(|line| line.trim_start().starts_with(&ours))
        .and_then(|line| digest_in(line))
}

/// The `sha256:<64 hex>` after `digest: ` in a line of push output.
fn digest_in(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("digest: sha256:")?;
    let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    (hex.len() == 64).then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// A folder only this user can read (0700 on Unix; on Windows the user's own temp folder is
/// private to them), removed when dropped. Its name holds this process's id, so that a later
/// run can tell a folder left by a killed run (see `remove_abandoned_folders`).
fn private_dir() -> Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    let prefix = format!("{FOLDER_PREFIX}{}-", std::process::id());
    builder.prefix(&prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o700));
    }
    builder.tempdir().map_err(|err| {
        Error::io(
            "cannot create a private folder in",
            std::env::temp_dir(),
            err,
        )
    })
}

/// Removes the private folders in `temp` of runs that were killed (SIGKILL, a crash) before
/// they could: this user's real folders whose process is gone. A folder whose pid was reused
/// stays until that process is gone too.
fn remove_abandoned_folders(temp: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(listing) = fs::read_dir(temp) else {
            return;
        };
        let me = rustix::process::geteuid().as_raw();
        for entry in listing.filter_map(|entry| entry.ok()) {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|name| name.strip_prefix(FOLDER_PREFIX))
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<i32>().ok())
                .and_then(rustix::process::Pid::from_raw)
            else {
                continue;
            };
            let ours = fs::symlink_metadata(entry.path())
                .is_ok_and(|meta| meta.is_dir() && meta.uid() == me);
            let gone = rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH);
            if ours && gone {
                tracing::debug!(
                    "removing {}, left by a run that was killed",
                    entry.path().display()
                );
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    #[cfg(not(unix))]
    let _ = temp;
}

/// Writes `value` to a new file (in a private folder), readable by this user only.
fn write_private(path: &Path, value: &Value) -> Result<()> {
    let write = || -> std::io::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(&serde_json::to_vec(value)?)
    };
    write().map_err(|err| Error::io("cannot write", path, err))
}

/// Makes the user's Docker contexts visible from the private config folder; without them the
/// engine falls back to the default context, which is at worst what it would use anyway.
/// (Windows lets only administrators make symlinks: there, `DOCKER_CONTEXT` still works.)
fn link_contexts(user_contexts: &Path, private: &Path) {
    #[cfg(unix)]
    if user_contexts.is_dir() {
        let _ = std::os::unix::fs::symlink(user_contexts, private);
    }
    #[cfg(not(unix))]
    let _ = (user_contexts, private);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_as_numbers() {
        assert_eq!(api_version("1.41\n"), Some((1, 41)));
        assert!(api_version("1.49").unwrap() >= PLATFORM_API);
        assert!(api_version("1.100").unwrap() >= PLATFORM_API);
        assert!(api_version("1.9").unwrap() < PLATFORM_API);
        assert_eq!(api_version(""), None);
        assert_eq!(api_version("x.y"), None);
    }

    #[test]
    fn the_digest_is_read_from_push_output() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            digest_in(&format!("e2e-1: digest: sha256:{hex} size: 528")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(digest_in("e2e-1: digest: sha256:abc size: 528"), None);
        assert_eq!(digest_in("Pushed"), None);
    }

    #[test]
    fn the_digest_is_the_last_one_reported_for_our_tag() {
        let digest = |c: &str| format!("sha256:{}", c.repeat(64));
        let printed: Vec<String> = [
            format!("push-1-2: digest: {} size: 528", digest("a")),
            format!("latest: digest: {} size: 528", digest("b")),
            format!("push-1-2: digest: {} size: 528", digest("c")),
            format!("push-1-22: digest: {} size: 528", digest("d")),
            format!("other push-1-2: digest: {} size: 528", digest("e")),
        ]
        .into();
        let target = "host/sr:push-1-2";
        assert_eq!(digest_of(&printed, target), Some(digest("c")));
        assert_eq!(digest_of(&printed[1..2], target), None);
    }
}
