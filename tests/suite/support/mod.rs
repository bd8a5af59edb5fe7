//! Harness shared by the integration tests: an isolated environment per test (temporary home,
//! caches, Docker and AWS config, a fake Lightsail endpoint) and runs of the real binary in it,
//! with a bounded wait and a scan of every output for leaked secrets.

pub mod fake_lightsail;
pub mod proxy;
pub mod tls;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tempfile::TempDir;

pub use fake_lightsail::FakeLightsail;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-lightsail");
/// The access key id every run gets, unless a test overrides it.
pub const ACCESS_KEY_ID: &str = "AKIATESTKEY00000001";
/// The secret access key every run gets: recognisable, so that a leak is easy to find.
pub const SECRET_ACCESS_KEY: &str = "TestSecretKey/MUST-NOT-LEAK/0000000000000001";
/// A run still going after this long is killed and fails the test.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variables whose values are secrets wherever a run gets them from.
const SECRET_ENV_VARS: &[&str] = &["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];
/// Environment variables whose values are proxy URLs: the password in one is a secret, and so is
/// the `Basic` token made from it.
const PROXY_ENV_VARS: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];
/// Keys whose values are secrets in AWS config and credentials files.
const SECRET_FILE_KEYS: &[&str] = &["aws_secret_access_key", "aws_session_token"];

/// An isolated environment for runs of the binary; everything lives in a temporary directory
/// that is removed on drop, and the fake endpoint stops on drop.
pub struct TestEnv {
    pub fake: FakeLightsail,
    dir: TempDir,
    /// Per-environment changes to the base environment: `Some` sets, `None` removes.
    env_overrides: BTreeMap<OsString, Option<OsString>>,
    /// Secrets written into AWS files by the helpers below.
    file_secrets: Vec<String>,
}

impl TestEnv {
    /// Creates `home/`, `cache/` and `docker/` in a new temporary directory and starts a fake.
    /// `xdg-cache/` and `aws/` are left for the binary (or the AWS file helpers) to create.
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("dcl-test-")
            .tempdir()
            .expect("cannot create the test directory");
        for sub in ["home", "cache", "docker"] {
            fs::create_dir(dir.path().join(sub)).expect("cannot create a test subdirectory");
        }
        // A cache directory others can read is refused: this one is private, as the helper
        // would have made it.
        fs::set_permissions(dir.path().join("cache"), fs::Permissions::from_mode(0o700))
            .expect("cannot make the cache private");
        TestEnv {
            fake: FakeLightsail::new(),
            dir,
            env_overrides: BTreeMap::new(),
            file_secrets: Vec::new(),
        }
    }

    // ---- paths ----------------------------------------------------------------------------------

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `HOME`.
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    /// `DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR`.
    pub fn cache_dir(&self) -> PathBuf {
        self.root().join("cache")
    }

    /// `XDG_CACHE_HOME` (not created).
    pub fn xdg_cache_dir(&self) -> PathBuf {
        self.root().join("xdg-cache")
    }

    /// `DOCKER_CONFIG`, the folder of `config.json`.
    pub fn docker_config_dir(&self) -> PathBuf {
        self.root().join("docker")
    }

    /// The helper's own configuration file (registry host to AWS profile bindings) at its
    /// default place for this `HOME`: absent until `configure --profile` writes it.
    pub fn helper_config_path(&self) -> PathBuf {
        self.home()
            .join(".config")
            .join("docker-credential-lightsail")
            .join("config.json")
    }

    /// `AWS_CONFIG_FILE` (absent until `write_aws_config`).
    pub fn aws_config_path(&self) -> PathBuf {
        self.root().join("aws").join("config")
    }

    /// `AWS_SHARED_CREDENTIALS_FILE` (absent until `write_aws_credentials`).
    pub fn aws_credentials_path(&self) -> PathBuf {
        self.root().join("aws").join("credentials")
    }

    // ---- setup ----------------------------------------------------------------------------------

    /// Writes the AWS config file; secrets in it join the leak scan.
    pub fn write_aws_config(&mut self, contents: &str) {
        self.write_aws_file(self.aws_config_path(), contents);
    }

    /// Writes the AWS shared credentials file; secrets in it join the leak scan.
    pub fn write_aws_credentials(&mut self, contents: &str) {
        self.write_aws_file(self.aws_credentials_path(), contents);
    }

    fn write_aws_file(&mut self, path: PathBuf, contents: &str) {
        fs::create_dir_all(path.parent().expect("AWS files live in aws/"))
            .expect("cannot create the AWS config directory");
        fs::write(&path, contents).expect("cannot write an AWS file");
        self.file_secrets.extend(secrets_in_aws_file(contents));
    }

    /// Sets an environment variable for every later run in this environment.
    pub fn set_env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) {
        self.env_overrides
            .insert(key.as_ref().into(), Some(value.as_ref().into()));
    }

    /// Removes a variable (including a base one) from every later run in this environment.
    pub fn remove_env(&mut self, key: impl AsRef<OsStr>) {
        self.env_overrides.insert(key.as_ref().into(), None);
    }

    /// The registry host the fake returns for `region`.
    pub fn registry_host(&self, region: &str) -> String {
        self.fake.registry_host(region)
    }

    // ---- runs -----------------------------------------------------------------------------------

    /// A command for the binary with a cleared environment holding only this test's variables.
    /// Per-command changes: call `.env()` / `.env_remove()` on it, then `run_cmd` / `spawn_cmd`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_clear().current_dir(self.root());
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("HOME", self.home())
            .env("XDG_CACHE_HOME", self.xdg_cache_dir())
            .env("DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR", self.cache_dir())
            .env("DOCKER_CONFIG", self.docker_config_dir())
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .env("AWS_ENDPOINT_URL_LIGHTSAIL", self.fake.url())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.aws_config_path())
            .env("AWS_SHARED_CREDENTIALS_FILE", self.aws_credentials_path());
        for (key, value) in &self.env_overrides {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }

    /// Runs the binary with `args`, feeding it `stdin`, and checks its output for leaks.
    pub fn run(&self, args: &[&str], stdin: impl AsRef<[u8]>) -> RunOutput {
        self.run_cmd(self.cmd(args), stdin)
    }

    /// `run` for a command from `cmd` that the test has adjusted.
    pub fn run_cmd(&self, cmd: Command, stdin: impl AsRef<[u8]>) -> RunOutput {
        self.wait(self.spawn_cmd(cmd, stdin))
    }

    /// Starts the binary without waiting, for concurrency and kill tests; finish with `wait`.
    pub fn spawn(&self, args: &[&str], stdin: impl AsRef<[u8]>) -> Spawned {
        self.spawn_cmd(self.cmd(args), stdin)
    }

    /// `spawn` for a command from `cmd` that the test has adjusted.
    pub fn spawn_cmd(&self, mut cmd: Command, stdin: impl AsRef<[u8]>) -> Spawned {
        let description = describe(&cmd);
        let args = cmd
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let env_secrets = secrets_in_env(&cmd);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {description}: {err}"));
        // From a thread, so that a child that does not read its input cannot block the test;
        // dropping the pipe afterwards closes the child's stdin.
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = stdin.as_ref().to_vec();
        let stdin_writer = thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        Spawned {
            stdout: LivePipe::start(child.stdout.take()),
            stderr: LivePipe::start(child.stderr.take()),
            child,
            description,
            args,
            env_secrets,
            stdin_writer,
        }
    }

    /// Waits (at most `RUN_TIMEOUT`) for a spawned run to end, collects its output, logs its
    /// stderr and checks both streams for leaked secrets.
    pub fn wait(&self, spawned: Spawned) -> RunOutput {
        self.wait_within(spawned, RUN_TIMEOUT)
    }

    /// `run_cmd`, failing the test (after killing the run) if it takes longer than `bound`.
    pub fn run_within(&self, cmd: Command, stdin: impl AsRef<[u8]>, bound: Duration) -> RunOutput {
        self.wait_within(self.spawn_cmd(cmd, stdin), bound)
    }

    /// `wait`, with `bound` instead of `RUN_TIMEOUT`.
    pub fn wait_within(&self, spawned: Spawned, bound: Duration) -> RunOutput {
        let Spawned {
            mut child,
            stdout,
            stderr,
            description,
            args,
            env_secrets,
            stdin_writer,
        } = spawned;
        // Both pipes close when the process exits: wait for those two events, bounded.
        let deadline = Instant::now() + bound;
        if !(stdout.wait_closed(deadline) && stderr.wait_closed(deadline)) {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            let _ = child.kill();
            let _ = child.wait();
            if exited {
                panic!("{description} exited but left its output open (a child process?)");
            }
            panic!("{description} still running after {bound:?}: killed");
        }
        let status = child
            .wait()
            .unwrap_or_else(|err| panic!("cannot wait for {description}: {err}"));
        let _ = stdin_writer.join();
        let output = RunOutput {
            code: status.code(),
            stdout: stdout.text(),
            stderr: stderr.text(),
        };
        append_stderr_log(&description, &output);
        let mut secrets = env_secrets;
        secrets.extend(self.file_secrets.iter().cloned());
        if let Err(leak) = check_for_leaks(&output, is_get(&args), &self.fake.passwords(), &secrets)
        {
            panic!("secret leak in {description}: {leak}");
        }
        output
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

/// A running binary. Derefs to its `Child` (`id()`, `kill()`...); finish it with
/// `TestEnv::wait` so that its output is collected and scanned.
pub struct Spawned {
    pub child: Child,
    stdout: LivePipe,
    stderr: LivePipe,
    description: String,
    args: Vec<String>,
    env_secrets: Vec<String>,
    stdin_writer: JoinHandle<()>,
}

impl Deref for Spawned {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

/// What a run of the binary produced.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// None when the process was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The credentials of a successful `get`; panics with the whole output otherwise.
    pub fn credentials(&self) -> Credentials {
        assert!(self.success(), "expected a successful get, got {self:#?}");
        parse_credentials(&self.stdout)
    }
}

/// The answer of `get`, as the credential-helper protocol defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub server_url: String,
    pub username: String,
    pub secret: String,
}

/// Parses `get` output: one JSON object with exactly `ServerURL`, `Username` and `Secret`.
pub fn parse_credentials(stdout: &str) -> Credentials {
    let value: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|err| panic!("get output is not JSON ({err}): {stdout:?}"));
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("get output is not an object"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["Secret", "ServerURL", "Username"], "get output keys");
    let field = |name: &str| {
        object[name]
            .as_str()
            .unwrap_or_else(|| panic!("get output field {name} is not a string"))
            .to_string()
    };
    Credentials {
        server_url: field("ServerURL"),
        username: field("Username"),
        secret: field("Secret"),
    }
}

// ---- helpers of the runs ------------------------------------------------------------------------

/// `<program name> <args>`, for messages and the log (arguments hold no secrets).
fn describe(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program());
    let words: Vec<_> = std::iter::once(program)
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect();
    format!("`{}`", words.join(" "))
}

/// Whether the action (the first argument that is not an option) is `get`.
fn is_get(args: &[String]) -> bool {
    // Also a `get` run through a wrapper such as `sh -c '…' sh get`.
    args.iter().any(|arg| arg == "get")
}

/// Values of the secret variables a command was given, and the passwords in its proxy URLs
/// (with their `Basic` tokens).
pub fn secrets_in_env(cmd: &Command) -> Vec<String> {
    let mut secrets: Vec<String> = cmd
        .get_envs()
        .filter(|(key, _)| SECRET_ENV_VARS.iter().any(|name| key == name))
        .filter_map(|(_, value)| Some(value?.to_string_lossy().into_owned()))
        .filter(|value| !value.is_empty())
        .collect();
    for (key, value) in cmd.get_envs() {
        let (Some(value), true) = (value, PROXY_ENV_VARS.iter().any(|name| key == *name)) else {
            continue;
        };
        if let Some((user, password)) = proxy_credentials(&value.to_string_lossy()) {
            secrets.push(proxy::basic_authorization(&user, &password));
            secrets.push(password);
        }
    }
    secrets
}

/// `user` and `password` of `scheme://user:password@host:port`, if it has a password.
fn proxy_credentials(url: &str) -> Option<(String, String)> {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (userinfo, _) = authority.split('/').next()?.rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| (user.to_string(), password.to_string()))
}

/// Values of `aws_secret_access_key` / `aws_session_token` lines of an AWS config file.
pub fn secrets_in_aws_file(contents: &str) -> Vec<String> {
    contents
        .lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(key, _)| SECRET_FILE_KEYS.contains(&key.trim().to_ascii_lowercase().as_str()))
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty())
        .collect()
}

/// Reads a pipe to its end on a thread, and signals `closed` when it is done.
/// A child's output pipe, read as it arrives by a thread of its own, so that a test can wait
/// for an event in it (a log line) while the child runs.
#[derive(Clone, Default)]
struct LivePipe(Arc<(Mutex<PipeState>, Condvar)>);

#[derive(Default)]
struct PipeState {
    bytes: Vec<u8>,
    closed: bool,
}

impl LivePipe {
    fn start<R: Read + Send + 'static>(pipe: Option<R>) -> LivePipe {
        let live = LivePipe::default();
        let shared = live.clone();
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            if let Some(mut pipe) = pipe {
                while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                    shared.update(|state| state.bytes.extend_from_slice(&buffer[..n]));
                }
            }
            shared.update(|state| state.closed = true);
        });
        live
    }

    fn update(&self, change: impl FnOnce(&mut PipeState)) {
        let (state, changed) = &*self.0;
        change(&mut state.lock().unwrap_or_else(|e| e.into_inner()));
        changed.notify_all();
    }

    /// Waits until `done` holds for what has arrived, or `deadline`; returns whether it held.
    fn wait_until(&self, deadline: Instant, done: impl Fn(&PipeState) -> bool) -> bool {
        let (state, changed) = &*self.0;
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        while !done(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn wait_closed(&self, deadline: Instant) -> bool {
        self.wait_until(deadline, |state| state.closed)
    }

    fn text(&self) -> String {
        let (state, _) = &*self.0;
        let state = state.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&state.bytes).into_owned()
    }
}

impl Spawned {
    /// Waits (bounded) until the child has written `needle` to stderr, e.g. a debug log line
    /// such as "waiting for lock"; returns whether it did. A child that closes its stderr
    /// without writing it never will: that ends the wait too, instead of the bound.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        let written = |state: &PipeState| String::from_utf8_lossy(&state.bytes).contains(needle);
        self.stderr.wait_until(Instant::now() + timeout, |state| {
            state.closed || written(state)
        });
        self.stderr.wait_until(Instant::now(), written)
    }
}

/// Checks the secret rules: no secret at all in stderr; in stdout, a fake password only as the
/// `Secret` of a successful `get`, and never an AWS secret. Err names what leaked where.
pub fn check_for_leaks(
    output: &RunOutput,
    is_get: bool,
    passwords: &[String],
    aws_secrets: &[String],
) -> Result<(), String> {
    let stdout_for_passwords = if is_get && output.success() {
        without_secret_value(&output.stdout)
    } else {
        output.stdout.clone()
    };
    let rules = (passwords
        .iter()
        .map(|p| ("fake password", p, stdout_for_passwords.as_str())))
    .chain(
        aws_secrets
            .iter()
            .map(|s| ("AWS secret", s, output.stdout.as_str())),
    );
    for (kind, secret, stdout) in rules {
        for (stream, text) in [("stderr", output.stderr.as_str()), ("stdout", stdout)] {
            if text.contains(secret.as_str()) {
                return Err(format!("{kind} {} found in {stream}", redacted(secret)));
            }
        }
    }
    Ok(())
}

/// `get` output with its `Secret` value taken out once, so that only other copies remain.
fn without_secret_value(stdout: &str) -> String {
    let secret = serde_json::from_str::<Value>(stdout)
        .ok()
        .and_then(|value| value.get("Secret")?.as_str().map(str::to_string));
    match secret {
        Some(secret) => stdout.replacen(&Value::from(secret).to_string(), "", 1),
        None => stdout.to_string(),
    }
}

/// Enough of a secret to identify it in a failure message, not enough to use it.
fn redacted(secret: &str) -> String {
    let shown: String = secret
        .chars()
        .take(secret.chars().count().min(24) / 2)
        .collect();
    format!("{shown}…")
}

/// Appends a run's stderr to `<CARGO_TARGET_TMPDIR>/stderr-log/<test module>.log`, so that a
/// final sweep can search the stderr of the whole suite.
fn append_stderr_log(description: &str, output: &RunOutput) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stderr-log");
    let _ = fs::create_dir_all(&dir);
    let test = thread::current().name().unwrap_or("?").to_string();
    // One write per record: parallel tests append whole records.
    let record = format!(
        "=== {test}: {description} exit={:?}\n{}\n",
        output.code, output.stderr
    );
    let module = test.split("::").next().unwrap_or("?");
    let path = dir.join(format!("{module}.log"));
    if let Ok(mut log) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = log.write_all(record.as_bytes());
    }
}

// ---- small helpers of the tests -----------------------------------------------------------------

/// The clock, in Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// A port on 127.0.0.1 where nothing listens, and nothing can start listening while this lives:
/// the local end of a connection this holds open. A port that was merely free a moment ago
/// (`free_port`) may be handed to a test's server started meanwhile, by the same `bind(0)`.
pub struct ClosedPort {
    port: u16,
    _held: (TcpListener, TcpStream, TcpStream),
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot listen on 127.0.0.1");
        let client = TcpStream::connect(listener.local_addr().unwrap()).expect("cannot connect");
        let (server, _) = listener.accept().expect("cannot accept");
        let port = client.local_addr().unwrap().port();
        ClosedPort {
            port,
            _held: (listener, client, server),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A port on 127.0.0.1 that was free a moment ago: nothing listens there unless a test starts
/// something on it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("cannot find a free port")
        .port()
}

/// Everything under `dir`, not following links: for each path its type, mode, owner,
/// modification time and contents. Two equal snapshots mean nothing was written there.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut seen = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = fs::symlink_metadata(&path).expect("cannot stat a snapshot path");
        let kind = meta.file_type();
        let contents = if kind.is_file() {
            String::from_utf8_lossy(&fs::read(&path).expect("cannot read")).into_owned()
        } else if kind.is_symlink() {
            format!(
                "-> {}",
                fs::read_link(&path).expect("cannot readlink").display()
            )
        } else {
            String::new()
        };
        if kind.is_dir() {
            for item in fs::read_dir(&path).expect("cannot list") {
                pending.push(item.expect("cannot list").path());
            }
        }
        seen.insert(
            path,
            format!(
                "{kind:?} mode={:o} uid={} mtime={}.{} {contents}",
                meta.mode(),
                meta.uid(),
                meta.mtime(),
                meta.mtime_nsec()
            ),
        );
    }
    seen
}

/// What a cache directory serves: each entry's name and contents. Lock files (which come and
/// stay by design) and timestamps are left out.
pub fn cache_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .expect("cannot list the cache")
        .map(|item| item.expect("cannot list the cache").path())
        .filter(|path| path.extension().is_none_or(|ext| ext != "lock"))
        .map(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            (name.into_owned(), fs::read(&path).unwrap_or_default())
        })
        .collect()
}
