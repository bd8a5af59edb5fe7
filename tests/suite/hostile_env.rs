//! A hostile environment. A hostile or broken cache directory never stops a `get`, never serves
//! what someone else put there, never makes the helper write through a link to somewhere else,
//! and never blocks it. And no variable or AWS profile setting, however broken, makes a command
//! panic (the second half of this file).
//!
//! Every case runs the real binary through the harness with debug logs on, and checks:
//! exit 0 with the credentials the fake API issued (counting the API calls), a debug-log line
//! that names the reason, the target of any link left exactly as it was, and a run time bounded
//! by a watchdog that kills the process (so that a FIFO that blocks fails the test quickly
//! instead of hanging the suite).
//!
//! The `_as_root` tests need root (CI runs them): "owned by another user" uses uid 65534
//! (nobody), and one case runs the binary itself as nobody, to check the same rule from the other
//! side.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::fake_lightsail::PASSWORD_PREFIX;
use crate::support::{RunOutput, TestEnv, snapshot};

const REGION: &str = "us-east-1";
/// Any run that takes longer than this is blocked: killed, and the test fails. Generous: it only
/// ends a hung run, on a loaded CI machine too.
const BOUND: Duration = Duration::from_secs(60);
/// The uid (and gid) of "another user".
const NOBODY: u32 = 65534;
/// A secret planted by "someone else": it must never be served. ECR-shaped (base64 of JSON with
/// its `expiration`, 6 h ahead) as a real registry password is, so that a stored entry holding it
/// would be served at once, without asking the account first.
static PLANTED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let json = format!(
        r#"{{"payload":"PLANTED-BY-SOMEONE-ELSE-0001","expiration":{}}}"#,
        crate::support::unix_now() + 6 * 3600
    );
    aws_smithy_types::base64::encode(json)
});

// ---- helpers ------------------------------------------------------------------------------------

/// A test environment with debug logs on, ready for `get`.
fn debug_env() -> TestEnv {
    let mut env = TestEnv::new();
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_LOG", "debug");
    env
}

/// Runs `cmd`; a run still going after `BOUND` is killed and fails the test.
fn run_bounded(env: &TestEnv, cmd: Command, stdin: &str) -> RunOutput {
    env.run_within(cmd, stdin, BOUND)
}

/// `get` for the fake's registry in REGION, bounded.
fn get(env: &TestEnv) -> RunOutput {
    run_bounded(env, env.cmd(&["get"]), &env.registry_host(REGION))
}

/// Asserts a successful `get` that served the newest password the fake API issued.
fn assert_served_from_api(env: &TestEnv, output: &RunOutput, calls: usize) {
    let credentials = output.credentials();
    assert_eq!(credentials.server_url, env.registry_host(REGION));
    assert_eq!(credentials.username, "AWS");
    assert!(
        credentials.secret.starts_with(PASSWORD_PREFIX),
        "not an API password: {credentials:?}"
    );
    assert_eq!(
        env.fake.passwords().last(),
        Some(&credentials.secret),
        "not the newest API password"
    );
    assert_ne!(credentials.secret, *PLANTED);
    assert_eq!(env.fake.login_calls(), calls, "login API calls");
}

/// Asserts a debug-log line that holds every one of `words`.
fn assert_logged(output: &RunOutput, words: &[&str]) {
    assert!(
        output
            .stderr
            .lines()
            .any(|line| words.iter().all(|word| line.contains(word))),
        "no debug line with {words:?} in:\n{}",
        output.stderr
    );
}

/// A folder of "another user" (nobody, 0700) holding a fresh, valid login for our registry
/// with the PLANTED secret under every name the helper could look for, and a victim file.
fn foreign_folder(env: &TestEnv, name: &str, real: &RealEntry) -> PathBuf {
    let dir = env.root().join(name);
    fs::create_dir(&dir).unwrap();
    let host = env.registry_host(REGION);
    let planted = real.planted();
    fs::write(dir.join(&real.name), &planted).unwrap();
    fs::write(dir.join(format!("stored-{host}.json")), &planted).unwrap();
    fs::write(dir.join("victim"), "do not touch\n").unwrap();
    for item in fs::read_dir(&dir).unwrap() {
        std::os::unix::fs::chown(item.unwrap().path(), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// The login entry a good `get` wrote: its file name and contents.
struct RealEntry {
    name: String,
    contents: String,
    secret: String,
}

impl RealEntry {
    /// The same entry (so in whatever format the helper writes, fresh for 12 hours) holding
    /// the PLANTED secret: served if the helper ever read it.
    fn planted(&self) -> String {
        assert!(self.contents.contains(&self.secret));
        self.contents.replace(&self.secret, &PLANTED)
    }
}

/// Runs one good `get` to learn the login entry's name and format, then empties the cache.
fn real_entry(env: &TestEnv) -> RealEntry {
    let output = get(env);
    assert_served_from_api(env, &output, 1);
    let name = fs::read_dir(env.cache_dir())
        .unwrap()
        .map(|item| item.unwrap().file_name().into_string().unwrap())
        .find(|name| name.starts_with("login-") && name.ends_with(".json"))
        .expect("a get leaves a login entry");
    let contents = fs::read_to_string(env.cache_dir().join(&name)).unwrap();
    for item in fs::read_dir(env.cache_dir()).unwrap() {
        fs::remove_file(item.unwrap().path()).unwrap();
    }
    RealEntry {
        name,
        contents,
        secret: output.credentials().secret,
    }
}

/// With the `mkfifo` command: rustix has no `mkfifoat` on macOS, where the suite runs too.
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .args(["-m", "600"])
        .arg(path)
        .status()
        .unwrap_or_else(|err| panic!("cannot run mkfifo: {err}"));
    assert!(status.success(), "cannot make a FIFO at {}", path.display());
}

/// Points the helper at `dir` as its cache directory.
fn use_cache_dir(env: &mut TestEnv, dir: &Path) {
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR", dir);
}

/// Two `get`s through a refused cache directory: both go to the API (nothing is cached), both
/// log `reason`, and the folder (and whatever a link points to) is left exactly as it was.
fn assert_refused_dir(env: &TestEnv, watched: &Path, reason: &str) {
    let before = snapshot(watched);
    for calls in [1, 2] {
        let output = get(env);
        assert_served_from_api(env, &output, calls);
        assert_logged(&output, &["not using cache dir", reason]);
    }
    assert_eq!(
        snapshot(watched),
        before,
        "something was written in {watched:?}"
    );
}

// ---- the cache directory itself ---------------------------------------------------------------

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn cache_dir_that_is_a_symlink_to_another_users_folder_is_refused_as_root() {
    let mut env = debug_env();
    let real = real_entry(&env);
    let calls_before = env.fake.login_calls();
    let foreign = foreign_folder(&env, "other-user", &real);
    let link = env.root().join("cache-link");
    symlink(&foreign, &link).unwrap();
    use_cache_dir(&mut env, &link);

    let before = snapshot(&foreign);
    for n in 1..=2 {
        let output = get(&env);
        assert_served_from_api(&env, &output, calls_before + n);
        assert_logged(&output, &["not using cache dir", "it is a symbolic link"]);
    }
    assert_eq!(
        snapshot(&foreign),
        before,
        "the link's target was written to"
    );

    // `store` cannot keep anything there either, and says so.
    let doc = format!(
        r#"{{"ServerURL":"{}","Username":"AWS","Secret":"typed"}}"#,
        env.registry_host(REGION)
    );
    let output = run_bounded(&env, env.cmd(&["store"]), &doc);
    assert_eq!(output.code, Some(1), "{output:#?}");
    assert!(
        output.stdout.contains("cannot use the cache directory")
            && output.stdout.contains("it is a symbolic link"),
        "{output:#?}"
    );
    assert_eq!(snapshot(&foreign), before, "store wrote through the link");
}

#[test]
fn cache_dir_that_is_a_symlink_to_our_own_folder_is_refused_too() {
    let mut env = debug_env();
    let own = env.root().join("own-real-cache");
    fs::create_dir(&own).unwrap();
    fs::set_permissions(&own, fs::Permissions::from_mode(0o700)).unwrap();
    let link = env.root().join("cache-link");
    symlink(&own, &link).unwrap();
    use_cache_dir(&mut env, &link);
    assert_refused_dir(&env, &own, "it is a symbolic link");
}

#[test]
fn group_or_world_writable_cache_dirs_are_refused_and_left_as_they_are() {
    for mode in [0o770, 0o720, 0o702, 0o777, 0o1777] {
        let mut env = debug_env();
        let dir = env.root().join("shared-cache");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
        use_cache_dir(&mut env, &dir);
        assert_refused_dir(&env, &dir, "it is writable by group or others");
        assert_eq!(
            fs::metadata(&dir).unwrap().mode() & 0o7777,
            mode,
            "the mode of a refused dir was changed"
        );
    }
}

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn cache_dir_owned_by_another_user_is_refused_even_though_root_could_write_it_as_root() {
    let mut env = debug_env();
    let real = real_entry(&env);
    let calls_before = env.fake.login_calls();
    let foreign = foreign_folder(&env, "other-user", &real);
    use_cache_dir(&mut env, &foreign);

    let before = snapshot(&foreign);
    for n in 1..=2 {
        let output = get(&env);
        assert_served_from_api(&env, &output, calls_before + n);
        assert_logged(
            &output,
            &["not using cache dir", "it is owned by another user"],
        );
    }
    assert_eq!(
        snapshot(&foreign),
        before,
        "another user's folder was written to"
    );
}

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn as_an_ordinary_user_a_cache_dir_owned_by_root_is_refused_as_root() {
    let env = debug_env();
    // nobody must be able to reach the cache dir's parent to see who owns it.
    fs::set_permissions(env.root(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(env.cache_dir(), fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(env.home(), Some(NOBODY), Some(NOBODY)).unwrap();
    // The binary itself must be reachable by nobody (target/ may sit in a private tree).
    let bin = Path::new(crate::support::BIN);
    let mut reachable = true;
    for dir in bin.ancestors().skip(1) {
        if let Ok(meta) = fs::metadata(dir) {
            reachable &= meta.mode() & 0o001 != 0;
        }
    }
    if !reachable {
        eprintln!(
            "skipped: {} is not reachable by uid {NOBODY}",
            bin.display()
        );
        return;
    }
    let before = snapshot(&env.cache_dir());
    for calls in [1, 2] {
        let mut cmd = env.cmd(&["get"]);
        cmd.uid(NOBODY).gid(NOBODY);
        let output = run_bounded(&env, cmd, &env.registry_host(REGION));
        assert_served_from_api(&env, &output, calls);
        assert_logged(
            &output,
            &["not using cache dir", "it is owned by another user"],
        );
    }
    assert_eq!(snapshot(&env.cache_dir()), before);
}

#[test]
fn cache_dir_that_is_a_file_or_a_fifo_is_refused_without_blocking() {
    for kind in ["file", "fifo"] {
        let mut env = debug_env();
        let path = env.root().join(format!("cache-{kind}"));
        if kind == "file" {
            fs::write(&path, "not a directory\n").unwrap();
        } else {
            mkfifo(&path);
        }
        use_cache_dir(&mut env, &path);
        let before = snapshot(&path);
        for calls in [1, 2] {
            let output = get(&env);
            assert_served_from_api(&env, &output, calls);
            assert_logged(&output, &["not using cache dir", "it is not a directory"]);
        }
        assert_eq!(snapshot(&path), before);
    }
}

// ---- the files inside a good cache directory ------------------------------------------------

#[test]
fn control_a_planted_entry_in_our_own_cache_is_served() {
    // The control for every "not served" check: the planted entry is valid, so the other
    // tests show a refusal, not a format mismatch.
    let env = debug_env();
    let real = real_entry(&env);
    fs::write(env.cache_dir().join(&real.name), real.planted()).unwrap();
    let stored = format!("stored-{}.json", env.registry_host(REGION));
    let output = get(&env);
    assert_eq!(output.credentials().secret, *PLANTED);
    assert_eq!(env.fake.login_calls(), 1);
    // And as a stored entry (what `docker login` keeps) too.
    fs::remove_file(env.cache_dir().join(&real.name)).unwrap();
    fs::write(env.cache_dir().join(&stored), real.planted()).unwrap();
    let output = get(&env);
    assert_eq!(output.credentials().secret, *PLANTED);
    assert_eq!(env.fake.login_calls(), 1);
}

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn login_entry_replaced_by_a_symlink_is_neither_read_nor_written_through_as_root() {
    let env = debug_env();
    let real = real_entry(&env);
    let login_file = real.name.clone();
    let foreign = foreign_folder(&env, "other-user", &real);
    let entry = env.cache_dir().join(&login_file);
    symlink(foreign.join(&login_file), &entry).unwrap();

    let before = snapshot(&foreign);
    let output = get(&env);
    assert_served_from_api(&env, &output, 2);
    assert_logged(
        &output,
        &["ignoring cache entry", &login_file, "symbolic link"],
    );
    assert_eq!(
        snapshot(&foreign),
        before,
        "written through the entry's link"
    );
    // The link itself was replaced by a real entry, which now serves without the API.
    assert!(fs::symlink_metadata(&entry).unwrap().is_file());
    let again = get(&env);
    assert_eq!(again.credentials().secret, output.credentials().secret);
    assert_eq!(env.fake.login_calls(), 2);
}

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn stored_entry_replaced_by_a_symlink_is_not_served_as_root() {
    let env = debug_env();
    let real = real_entry(&env);
    let foreign = foreign_folder(&env, "other-user", &real);
    let stored = format!("stored-{}.json", env.registry_host(REGION));
    symlink(foreign.join(&stored), env.cache_dir().join(&stored)).unwrap();

    let before = snapshot(&foreign);
    let output = get(&env);
    assert_served_from_api(&env, &output, 2);
    assert_logged(&output, &["ignoring cache entry", &stored, "symbolic link"]);
    assert_eq!(snapshot(&foreign), before);
}

#[test]
fn entries_that_are_symlinks_to_fifos_or_devices_never_block() {
    let env = debug_env();
    let real = real_entry(&env);
    let login_file = real.name.clone();
    let fifo = env.root().join("elsewhere.fifo");
    mkfifo(&fifo);
    symlink(&fifo, env.cache_dir().join(&login_file)).unwrap();
    let stored = format!("stored-{}.json", env.registry_host(REGION));
    symlink("/dev/zero", env.cache_dir().join(&stored)).unwrap();

    let output = get(&env);
    assert_served_from_api(&env, &output, 2);
    assert_logged(
        &output,
        &["ignoring cache entry", &login_file, "symbolic link"],
    );
    assert_logged(&output, &["ignoring cache entry", &stored, "symbolic link"]);
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn login_and_stored_entries_that_are_fifos_never_block() {
    let env = debug_env();
    let real = real_entry(&env);
    let login_file = real.name.clone();
    let stored = format!("stored-{}.json", env.registry_host(REGION));
    mkfifo(&env.cache_dir().join(&login_file));
    mkfifo(&env.cache_dir().join(&stored));

    let output = get(&env);
    assert_served_from_api(&env, &output, 2);
    assert_logged(
        &output,
        &["ignoring cache entry", &login_file, "not a regular file"],
    );
    assert_logged(
        &output,
        &["ignoring cache entry", &stored, "not a regular file"],
    );
    // The FIFO in the login slot was replaced by a real entry; `list` and `erase`, which read
    // every entry, do not block on the stored one either.
    let again = get(&env);
    assert_eq!(again.credentials().secret, output.credentials().secret);
    assert_eq!(env.fake.login_calls(), 2);
    let list = run_bounded(&env, env.cmd(&["list"]), "unused");
    assert!(list.success(), "{list:#?}");
    let erase = run_bounded(&env, env.cmd(&["erase"]), &env.registry_host(REGION));
    assert!(erase.success(), "{erase:#?}");
}

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn lock_file_that_is_a_symlink_is_not_followed_and_get_still_answers_as_root() {
    let env = debug_env();
    let real = real_entry(&env);
    let login_file = real.name.clone();
    let foreign = foreign_folder(&env, "other-user", &real);
    let lock = login_file.replace(".json", ".lock");
    // One link to an existing victim, one dangling link into the foreign folder: following
    // either would truncate the victim or create a file there.
    symlink(foreign.join("victim"), env.cache_dir().join(&lock)).unwrap();
    let stored_lock = format!("stored-{}.lock", env.registry_host(REGION));
    symlink(
        foreign.join("created-by-helper"),
        env.cache_dir().join(&stored_lock),
    )
    .unwrap();

    let before = snapshot(&foreign);
    let output = get(&env);
    assert_served_from_api(&env, &output, 2);
    assert_logged(&output, &["without the cache lock", &lock, "symbolic link"]);
    assert_eq!(
        snapshot(&foreign),
        before,
        "written through the lock's link"
    );

    // `store` needs its lock: it fails with a clear message and creates nothing there.
    let doc = format!(
        r#"{{"ServerURL":"{}","Username":"AWS","Secret":"typed"}}"#,
        env.registry_host(REGION)
    );
    let store = run_bounded(&env, env.cmd(&["store"]), &doc);
    assert_eq!(store.code, Some(1), "{store:#?}");
    assert!(store.stdout.contains("lock"), "{store:#?}");
    assert!(!store.stdout.contains("typed"));
    assert_eq!(
        snapshot(&foreign),
        before,
        "store wrote through the lock's link"
    );
}

#[test]
fn lock_and_temp_files_that_are_fifos_never_block() {
    let env = debug_env();
    let real = real_entry(&env);
    let login_file = real.name.clone();
    mkfifo(&env.cache_dir().join(login_file.replace(".json", ".lock")));
    mkfifo(&env.cache_dir().join(format!(".{login_file}.tmp")));

    let output = get(&env);
    assert_served_from_api(&env, &output, 2);
    let again = get(&env);
    assert!(again.success(), "{again:#?}");
    assert!(
        !env.cache_dir().join(format!(".{login_file}.tmp")).exists(),
        "the stale temp FIFO is still there"
    );
}

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn temp_file_that_is_a_symlink_is_removed_not_followed_as_root() {
    let env = debug_env();
    let real = real_entry(&env);
    let login_file = real.name.clone();
    let foreign = foreign_folder(&env, "other-user", &real);
    let temp = env.cache_dir().join(format!(".{login_file}.tmp"));
    symlink(foreign.join("victim"), &temp).unwrap();

    let before = snapshot(&foreign);
    let output = get(&env);
    assert_served_from_api(&env, &output, 2);
    assert_eq!(
        snapshot(&foreign),
        before,
        "written through the temp file's link"
    );
    assert!(
        fs::symlink_metadata(&temp).is_err(),
        "the temp link is still there"
    );
    assert!(
        fs::symlink_metadata(env.cache_dir().join(&login_file))
            .unwrap()
            .is_file()
    );
}

#[test]
fn temp_or_lock_path_that_is_a_directory_does_not_stop_get() {
    let env = debug_env();
    let real = real_entry(&env);
    let temp = env.cache_dir().join(format!(".{}.tmp", real.name));
    fs::create_dir(&temp).unwrap();
    fs::write(temp.join("inside"), "x").unwrap();
    let output = get(&env);
    assert_served_from_api(&env, &output, 2);
    assert_logged(&output, &["could not save the login"]);
    assert_eq!(fs::read_to_string(temp.join("inside")).unwrap(), "x");

    let env = debug_env();
    let real = real_entry(&env);
    fs::create_dir(env.cache_dir().join(real.name.replace(".json", ".lock"))).unwrap();
    let output = get(&env);
    assert_served_from_api(&env, &output, 2);
    assert_logged(&output, &["without the cache lock"]);
}

#[test]
fn entry_that_is_a_directory_or_huge_is_ignored_and_get_still_answers() {
    let env = debug_env();
    let real = real_entry(&env);
    let login_file = real.name.clone();
    let stored = format!("stored-{}.json", env.registry_host(REGION));
    fs::create_dir(env.cache_dir().join(&login_file)).unwrap();
    // A sparse 1 GiB entry: reading it whole would take a while; it must be refused at once.
    let huge = fs::File::create(env.cache_dir().join(&stored)).unwrap();
    huge.set_len(1 << 30).unwrap();
    drop(huge);

    let output = get(&env);
    assert_served_from_api(&env, &output, 2);
    assert_logged(&output, &["ignoring cache entry", &login_file]);
    assert_logged(&output, &["ignoring cache entry", &stored, "too large"]);
    // The directory cannot be replaced by the entry: nothing is cached, and every get asks.
    let again = get(&env);
    assert_served_from_api(&env, &again, 3);
    assert_logged(&again, &["could not save the login"]);
}

#[test]
fn garbage_in_every_entry_reads_as_empty_and_is_replaced() {
    let env = debug_env();
    let real = real_entry(&env);
    let login_file = real.name.clone();
    for garbage in [
        &b""[..],
        b"{",
        b"\x00\xff\xfe garbage",
        b"{\"format\":1}",
        b"{\"format\":99,\"registry\":\"x\",\"username\":\"u\",\"secret\":\"s\",\"expires_at\":1}",
        b"[1,2,3]",
        b"null",
    ] {
        fs::write(env.cache_dir().join(&login_file), garbage).unwrap();
        let calls = env.fake.login_calls();
        let output = get(&env);
        assert_served_from_api(&env, &output, calls + 1);
        assert_logged(&output, &["ignoring cache entry", &login_file]);
        // Replaced by a good entry: the next get is a hit.
        let hit = get(&env);
        assert_eq!(hit.credentials().secret, output.credentials().secret);
        assert_eq!(env.fake.login_calls(), calls + 1);
    }
}

// ---- hostile environment variables and AWS profiles -------------------------------------------
//
// Every variable the helper or aws-config reads, set empty, blank, to garbage, to a malformed
// URL, huge or not UTF-8, through `get`, `configure`, `register`, `push` (a stand-in docker)
// and `doctor`: no run panics (exit 101, "panicked", "internal error"), hangs, prints more than
// one error line or leaks a secret (the harness checks every run for that).

/// The variables: the helper's own, the AWS SDK's (endpoints, region, profile and files, CA
/// bundle, credential sources) and the proxy ones.
const HOSTILE_VARS: &[&str] = &[
    "AWS_ENDPOINT_URL_LIGHTSAIL",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_SDK_UA_APP_ID",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR",
    "DOCKER_CREDENTIAL_LIGHTSAIL_CONFIG_DIR",
    "DOCKER_CREDENTIAL_LIGHTSAIL_LOG",
    "DOCKER_CREDENTIAL_LIGHTSAIL_REFRESH_MARGIN",
    "DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT",
    "DOCKER_CREDENTIAL_LIGHTSAIL_LOCK_TIMEOUT",
    "DOCKER_CONFIG",
    "HOME",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
];

/// The values each variable gets in turn.
fn hostile_values() -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::OsStringExt;
    vec![
        "".into(),
        "   ".into(),
        "not a url".into(),
        "http://".into(),
        "://x".into(),
        "http://user:Pr0xy-Passw0rd@127.0.0.1:9".into(),
        "\u{1}\u{7f}\t".into(),
        "x".repeat(64 * 1024).into(),
        std::ffi::OsString::from_vec(b"\xff\xfe-not-utf8".to_vec()),
    ]
}

/// The longest error line a person can still read: a huge value is shortened, not echoed.
const MAX_ERROR_LINE: usize = 1000;

/// `get`, `configure`, `register`, `push` and `doctor`.
const COMMANDS: usize = 5;

/// The seconds each hostile run may spend on the network before it gives up.
const HOSTILE_TIMEOUT: &str = "3";

/// A stand-in `docker`: an API version, an amd64 image, and a push that prints a digest.
const STAND_IN_DOCKER: &str = r#"#!/bin/sh
case "$1" in
version) echo 1.41 ;;
image) [ "$2" = inspect ] && echo "linux/amd64 1" ;;
push) echo "${2##*:}: digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef size: 528" ;;
esac
exit 0
"#;

/// An environment for the four commands: a short timeout, a region, the stand-in docker first
/// on PATH.
fn commands_env() -> TestEnv {
    let mut env = TestEnv::new();
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT", HOSTILE_TIMEOUT);
    env.set_env("AWS_REGION", REGION);
    let engine = env.root().join("engine");
    fs::create_dir(&engine).unwrap();
    fs::write(engine.join("docker"), STAND_IN_DOCKER).unwrap();
    fs::set_permissions(engine.join("docker"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(engine).chain(std::env::split_paths(&path));
    env.set_env("PATH", std::env::join_paths(dirs).unwrap());
    env
}

/// Runs `get`, `configure`, `register`, `push` and `doctor` in `env` and checks each: no panic,
/// no hang, and a failure is one short line without control characters (on stdout for `get`,
/// on stderr for the rest; `doctor` reports on several). Returns what went
/// wrong, one line per run.
fn run_all_commands(env: &TestEnv, case: &str) -> Vec<String> {
    let push = [
        "push",
        "--service",
        "hello",
        "--label",
        "web",
        "-q",
        "app:1",
    ];
    let commands: [(&[&str], String); COMMANDS] = [
        (&["get"], env.registry_host(REGION)),
        (&["configure", "--region", REGION], String::new()),
        (&REGISTER, String::new()),
        (&push, String::new()),
        (&["doctor"], String::new()),
    ];
    let mut problems = Vec::new();
    for (args, stdin) in &commands {
        let output = run_bounded(env, env.cmd(args), stdin);
        let protocol = args[0] == "get";
        // `doctor` reports on several lines by design, failures included.
        let report = args[0] == "doctor";
        // On stdout for a protocol action, on stderr for a human command.
        let error = if protocol {
            &output.stdout
        } else {
            &output.stderr
        };
        let problem = if !matches!(output.code, Some(0..=2)) {
            Some("not a clean exit")
        } else if [&output.stdout, &output.stderr]
            .iter()
            .any(|text| text.contains("panicked") || text.contains("internal error"))
        {
            Some("a panic")
        } else if protocol && !output.stderr.is_empty() {
            Some("a protocol action wrote on stderr")
        } else if !report && !output.success() && error.trim_end().lines().count() != 1 {
            Some("not one error line")
        } else if !report && !output.success() && error.len() > MAX_ERROR_LINE {
            Some("an error line too long to read")
        } else if error.trim_end().chars().any(char::is_control) {
            Some("a control character in the error (a terminal would act on it)")
        } else {
            None
        };
        if let Some(problem) = problem {
            let said: String = error.chars().take(300).collect();
            problems.push(format!(
                "{case}: {}: {problem}: exit {:?}: {said:?}",
                args[0], output.code
            ));
        }
    }
    problems
}

/// Runs `cases` on a few threads (each its own environment and fake), and fails with every
/// problem found; returns the number of runs.
fn run_cases(cases: Vec<(String, TestEnv)>) -> usize {
    let count = cases.len() * COMMANDS;
    let cases = std::sync::Mutex::new(cases);
    let problems: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut problems = Vec::new();
                    loop {
                        let next = cases.lock().unwrap().pop();
                        let Some((case, env)) = next else { break };
                        problems.extend(run_all_commands(&env, &case));
                    }
                    problems
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(
        problems.is_empty(),
        "{} of {count} runs went wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
    count
}

#[test]
fn hostile_environment_variables_never_make_a_command_panic() {
    let mut cases = Vec::new();
    let mut count = 0;
    for name in HOSTILE_VARS {
        for value in hostile_values() {
            // The harness looks for a secret variable's value in every output: blanks are in
            // doctor's aligned columns. Blank is the empty value's case anyway.
            let secret = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"].contains(name);
            if secret && value == "   " {
                continue;
            }
            count += COMMANDS;
            let mut env = commands_env();
            env.set_env(name, &value);
            if name.starts_with("HOME") || name.starts_with("XDG_") {
                // So that the cache's default place, under them, is what is used.
                env.remove_env("DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR");
            }
            let shown: String = format!("{value:?}").chars().take(40).collect();
            cases.push((format!("{name}={shown}"), env));
        }
    }
    let runs = run_cases(cases);
    assert_eq!(runs, count);
}

#[test]
fn hostile_global_endpoint_never_makes_a_command_panic() {
    // Without the service's own variable, which comes first.
    let mut cases = Vec::new();
    for value in hostile_values() {
        let mut env = commands_env();
        env.remove_env("AWS_ENDPOINT_URL_LIGHTSAIL");
        env.set_env("AWS_ENDPOINT_URL", &value);
        let shown: String = format!("{value:?}").chars().take(40).collect();
        cases.push((format!("AWS_ENDPOINT_URL={shown} alone"), env));
    }
    run_cases(cases);
}

/// An assume-role profile whose source profile has keys, for cases in which aws-config makes
/// calls of its own (to STS).
const ROLE_PROFILE: &str = "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = src\n[profile src]\naws_access_key_id = AKIASOURCE0000000001\naws_secret_access_key = SourceSecret/0001\n";

#[test]
fn hostile_aws_profiles_never_make_a_command_panic() {
    let process = |json: &str| format!("[default]\ncredential_process = /bin/echo '{json}'\n");
    // (what, config file, whether to use the profile's endpoint, region and credentials)
    let files: Vec<(&str, String, bool)> = vec![
        (
            "empty endpoint_url",
            "[default]\nendpoint_url =\n".into(),
            true,
        ),
        (
            "blank endpoint_url",
            "[default]\nendpoint_url =   \n".into(),
            true,
        ),
        (
            "garbage endpoint_url",
            "[default]\nendpoint_url = not a url\n".into(),
            true,
        ),
        (
            "hostless endpoint_url",
            "[default]\nendpoint_url = http://\n".into(),
            true,
        ),
        (
            "schemeless endpoint_url",
            "[default]\nendpoint_url = ://x\n".into(),
            true,
        ),
        (
            "empty services endpoint_url",
            "[default]\nservices = s\n[services s]\nlightsail =\n  endpoint_url =\n".into(),
            true,
        ),
        (
            "garbage services endpoint_url",
            "[default]\nservices = s\n[services s]\nlightsail =\n  endpoint_url = :/\n".into(),
            true,
        ),
        (
            "services naming nothing",
            "[default]\nservices = nowhere\n".into(),
            true,
        ),
        ("empty region", "[default]\nregion =\n".into(), true),
        (
            "garbage region",
            "[default]\nregion = not a region\n".into(),
            true,
        ),
        (
            "control region",
            "[default]\nregion = us\x01east-1\n".into(),
            true,
        ),
        ("empty ca_bundle", "[default]\nca_bundle =\n".into(), false),
        (
            "missing ca_bundle",
            "[default]\nca_bundle = /nonexistent/ca.pem\n".into(),
            false,
        ),
        (
            "folder ca_bundle",
            "[default]\nca_bundle = /\n".into(),
            false,
        ),
        (
            "control ca_bundle",
            "[default]\nca_bundle = /tmp/\u{1b}[2Jca.pem\n".into(),
            false,
        ),
        (
            "garbage max_attempts",
            "[default]\nmax_attempts = many\n".into(),
            false,
        ),
        (
            "zero max_attempts",
            "[default]\nmax_attempts = 0\n".into(),
            false,
        ),
        (
            "garbage retry_mode",
            "[default]\nretry_mode = sometimes\n".into(),
            false,
        ),
        (
            "adaptive retry_mode",
            "[default]\nretry_mode = adaptive\n".into(),
            false,
        ),
        (
            "garbage ignore_configured_endpoint_urls",
            "[default]\nignore_configured_endpoint_urls = maybe\n".into(),
            false,
        ),
        (
            "garbage use_fips_endpoint",
            "[default]\nuse_fips_endpoint = maybe\n".into(),
            false,
        ),
        (
            "unterminated section",
            "[default\nregion = us-east-1\n".into(),
            true,
        ),
        ("binary file", "\u{0}\u{1}[[[=\n\u{7f}".into(), true),
        (
            "role with an empty endpoint_url",
            format!("{ROLE_PROFILE}endpoint_url =\n"),
            true,
        ),
        (
            "source keys with a control character",
            ROLE_PROFILE.replace("AKIASOURCE", "AKIA\u{1}SOURCE"),
            true,
        ),
        (
            "plain keys with a control character",
            "[default]\naws_access_key_id = AKIA\u{1}X\naws_secret_access_key = PlainSecret/0001\n"
                .into(),
            true,
        ),
        (
            "credential_process key with a control character",
            process(
                r#"{"Version":1,"AccessKeyId":"AKIA\u0001X","SecretAccessKey":"ProcessSecret/0001"}"#,
            ),
            true,
        ),
        (
            "credential_process token with a control character",
            process(
                r#"{"Version":1,"AccessKeyId":"AKIAX","SecretAccessKey":"ProcessSecret/0001","SessionToken":"t\u0007"}"#,
            ),
            true,
        ),
        ("credential_process garbage", process("not json"), true),
    ];
    let mut cases = Vec::new();
    for (what, contents, from_profile) in files {
        for profile in [None, Some("default")] {
            let mut env = commands_env();
            env.write_aws_config(&contents);
            if from_profile {
                env.remove_env("AWS_ENDPOINT_URL_LIGHTSAIL");
                env.remove_env("AWS_REGION");
                env.remove_env("AWS_ACCESS_KEY_ID");
                env.remove_env("AWS_SECRET_ACCESS_KEY");
                if !contents.contains("key") && !contents.contains("credential_process") {
                    // Keys of the profile's own, so that the run gets as far as the endpoint.
                    env.write_aws_credentials(
                        "[default]\naws_access_key_id = AKIAPROFILEKEY000001\naws_secret_access_key = ProfileSecret/0001\n",
                    );
                }
            }
            if let Some(profile) = profile {
                env.set_env("AWS_PROFILE", profile);
            }
            let how = if profile.is_some() {
                "AWS_PROFILE=default"
            } else {
                "no AWS_PROFILE"
            };
            cases.push((format!("{what}, {how}"), env));
        }
    }
    run_cases(cases);
}

// ---- what the helper decided for each kind of bad setting -----------------------------------

/// The region, access key id and operation of each call the fake received.
fn calls(env: &TestEnv) -> Vec<(String, String, String)> {
    env.fake
        .requests()
        .into_iter()
        .map(|r| {
            let region = r.region.unwrap_or_default();
            (region, r.access_key_id.unwrap_or_default(), r.operation)
        })
        .collect()
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const REGISTER: [&str; 7] = [
    "register",
    "--service",
    "hello",
    "--label",
    "web",
    "--digest",
    DIGEST,
];

#[test]
fn blank_aws_variables_are_unset_as_the_aws_cli_takes_them() {
    // Every setting comes from the default profile; each variable that would override it is
    // set to nothing, or to blanks, and so does not count: not for the helper, not for aws-config.
    let mut env = commands_env();
    env.write_aws_credentials(
        "[default]\naws_access_key_id = AKIADEFAULTPROFILE01\naws_secret_access_key = DefaultSecret/0001\n",
    );
    env.write_aws_config("[default]\nregion = eu-west-2\n");
    env.remove_env("AWS_ACCESS_KEY_ID");
    env.remove_env("AWS_SECRET_ACCESS_KEY");
    env.set_env("AWS_ENDPOINT_URL", env.fake.url());
    for (name, value) in [
        ("AWS_ENDPOINT_URL_LIGHTSAIL", ""),
        ("AWS_PROFILE", ""),
        ("AWS_REGION", "  "),
        ("AWS_DEFAULT_REGION", ""),
        ("AWS_MAX_ATTEMPTS", ""),
        ("AWS_RETRY_MODE", " "),
        ("AWS_CA_BUNDLE", ""),
        ("AWS_SESSION_TOKEN", ""),
    ] {
        env.set_env(name, value);
    }
    let register = env.run(&REGISTER, "");
    assert!(register.success(), "{register:#?}");
    let host = env.registry_host("eu-west-2");
    let get = env.run(&["get"], &host);
    assert_eq!(get.credentials().server_url, host);
    let key = "AKIADEFAULTPROFILE01".to_string();
    assert_eq!(
        calls(&env),
        [
            ("eu-west-2".into(), key.clone(), REGISTER_OP.into()),
            ("eu-west-2".into(), key, LOGIN_OP.into()),
        ]
    );
}

const REGISTER_OP: &str = crate::support::fake_lightsail::REGISTER;
const LOGIN_OP: &str = crate::support::fake_lightsail::LOGIN;

#[test]
fn a_malformed_endpoint_is_one_line_that_names_its_variable_and_hides_a_password() {
    let expected =
        "an http:// or https:// URL with a host, such as https://lightsail.us-east-1.amazonaws.com";
    for (name, value, shown) in [
        ("AWS_ENDPOINT_URL_LIGHTSAIL", "not a url", "not a url"),
        ("AWS_ENDPOINT_URL_LIGHTSAIL", "http://", "http://"),
        ("AWS_ENDPOINT_URL_LIGHTSAIL", "://x", "://x"),
        ("AWS_ENDPOINT_URL_LIGHTSAIL", "ftp://host", "ftp://host"),
        (
            "AWS_ENDPOINT_URL_LIGHTSAIL",
            "http://user:Endpoint-Pw@/path",
            "http://…@/path",
        ),
        ("AWS_ENDPOINT_URL", "localhost:4566", "localhost:4566"),
    ] {
        let mut env = TestEnv::new();
        if name == "AWS_ENDPOINT_URL" {
            env.remove_env("AWS_ENDPOINT_URL_LIGHTSAIL");
        }
        env.set_env(name, value);
        let get = env.run(&["get"], env.registry_host(REGION));
        assert_eq!(
            (get.code, get.stdout.as_str()),
            (
                Some(1),
                format!("invalid setting {name}={shown:?}: {expected}\n").as_str()
            ),
            "{value}"
        );
        assert_eq!(env.fake.login_calls(), 0);
    }
}

#[test]
fn keys_no_header_can_carry_are_refused_by_name_before_any_call() {
    let process = |json: &str| format!("[default]\ncredential_process = /bin/echo '{json}'\n");
    let cases: [(&str, String, &str); 3] = [
        (
            "AWS_ACCESS_KEY_ID",
            String::new(),
            r#"invalid setting AWS_ACCESS_KEY_ID="AKIA\u{1}X": an access key id without control characters"#,
        ),
        (
            "credential_process",
            process(
                r#"{"Version":1,"AccessKeyId":"AKIAX","SecretAccessKey":"ProcessSecret/0001","SessionToken":"t\u0007"}"#,
            ),
            "could not load AWS credentials: the default AWS profile: the session token holds a character no HTTP header can carry (a control character): check where it is set",
        ),
        (
            "source_profile",
            ROLE_PROFILE.replace("AKIASOURCE", "AKIA\u{1}SOURCE"),
            "could not load AWS credentials: aws_access_key_id of AWS profile 'src' (CONFIG or CREDENTIALS) holds a character no HTTP header can carry (a control character): check the file",
        ),
    ];
    for (what, config, expected) in cases {
        let mut env = TestEnv::new();
        if config.is_empty() {
            env.set_env("AWS_ACCESS_KEY_ID", "AKIA\u{1}X");
        } else {
            env.write_aws_config(&config);
            env.remove_env("AWS_ACCESS_KEY_ID");
            env.remove_env("AWS_SECRET_ACCESS_KEY");
        }
        let expected = expected
            .replace("CONFIG", &env.aws_config_path().display().to_string())
            .replace(
                "CREDENTIALS",
                &env.aws_credentials_path().display().to_string(),
            );
        let get = env.run(&["get"], env.registry_host(REGION));
        assert_eq!(
            (get.code, get.stdout.trim_end()),
            (Some(1), expected.as_str()),
            "{what}"
        );
        assert!(env.fake.requests().is_empty(), "{what}");
    }
}

#[test]
fn aws_retry_settings_cannot_stop_a_command() {
    // The helper makes its own three attempts: these are not read, in the environment or in the
    // profile, whatever they hold (aws-config panicked on each of them).
    for (name, value, config) in [
        ("AWS_MAX_ATTEMPTS", "many", ""),
        ("AWS_MAX_ATTEMPTS", "0", ""),
        ("AWS_RETRY_MODE", "adaptive", ""),
        ("AWS_RETRY_MODE", "sometimes", ""),
        ("", "", "[default]\nmax_attempts = 0\n"),
        ("", "", "[default]\nretry_mode = adaptive\n"),
    ] {
        let mut env = commands_env();
        if name.is_empty() {
            env.write_aws_config(config);
        } else {
            env.set_env(name, value);
        }
        let register = env.run(&REGISTER, "");
        assert!(register.success(), "{name}={value} {config}: {register:#?}");
        assert_eq!(env.fake.calls(REGISTER_OP), 1);
    }
}

#[test]
fn aws_files_that_are_fifos_or_too_large_are_refused_at_once() {
    // A FIFO blocked the read (a synchronous one, past every timeout); a device such as
    // /dev/zero filled memory (not run here: it would take the machine's). A sparse file just
    // over the limit stands for it.
    for (what, kind) in [
        ("AWS_CONFIG_FILE", "fifo"),
        ("AWS_CONFIG_FILE", "large"),
        ("AWS_SHARED_CREDENTIALS_FILE", "fifo"),
        ("AWS_SHARED_CREDENTIALS_FILE", "large"),
        ("AWS_CA_BUNDLE", "fifo"),
        ("AWS_CA_BUNDLE", "large"),
        ("ca_bundle", "fifo"),
        ("~/.aws/config", "fifo"),
    ] {
        let mut env = TestEnv::new();
        let path = env.root().join(format!("{kind}-file"));
        if kind == "fifo" {
            mkfifo(&path);
        } else {
            let file = fs::File::create(&path).unwrap();
            file.set_len((16 << 20) + 1).unwrap();
        }
        let context = match what {
            "ca_bundle" | "AWS_CA_BUNDLE" => "cannot read the CA bundle",
            "AWS_SHARED_CREDENTIALS_FILE" => "cannot read the AWS shared credentials file",
            _ => "cannot read the AWS config file",
        };
        let reason = match kind {
            "fifo" => "it is not a regular file (a FIFO or a device would block or never end)",
            _ => "it is larger than 16 MiB",
        };
        match what {
            "ca_bundle" => {
                env.write_aws_config(&format!("[default]\nca_bundle = {}\n", path.display()))
            }
            "~/.aws/config" => {
                fs::create_dir(env.home().join(".aws")).unwrap();
                fs::rename(&path, env.home().join(".aws").join("config")).unwrap();
                env.remove_env("AWS_CONFIG_FILE");
            }
            name => env.set_env(name, &path),
        }
        for args in [&["get"][..], &["configure", "--region", REGION][..]] {
            let output = run_bounded(&env, env.cmd(args), &env.registry_host(REGION));
            let error = if args[0] == "get" {
                &output.stdout
            } else {
                &output.stderr
            };
            assert_eq!(output.code, Some(1), "{what} {kind}: {output:#?}");
            assert!(
                error.contains(context) && error.trim_end().ends_with(reason),
                "{what} {kind}: {output:#?}"
            );
        }
        assert_eq!(env.fake.login_calls(), 0);
    }
}

#[test]
fn keys_in_the_environment_no_header_can_carry_are_refused_whoever_uses_them() {
    // A bound role whose `credential_source` is the environment: aws-config signed its STS call
    // with these keys, and panicked.
    let role = "[default]\nregion = us-east-1\nrole_arn = arn:aws:iam::123456789012:role/r\ncredential_source = Environment\n";
    for (name, value, expected) in [
        (
            "AWS_ACCESS_KEY_ID",
            "AKIA\u{1}X",
            r#"invalid setting AWS_ACCESS_KEY_ID="AKIA\u{1}X": an access key id without control characters"#,
        ),
        (
            "AWS_SESSION_TOKEN",
            "Session\u{7}Token",
            r#"invalid setting AWS_SESSION_TOKEN="…": a session token without control characters"#,
        ),
    ] {
        let mut env = commands_env();
        env.write_aws_config(role);
        env.set_env(name, value);
        for args in [
            &REGISTER[..],
            &[&REGISTER[..], &["--profile", "default"]].concat(),
        ] {
            let output = env.run(args, "");
            assert_eq!(
                (output.code, output.stderr.trim_end()),
                (Some(1), format!("error: {expected}").as_str()),
                "{name} {args:?}"
            );
        }
        let get = env.run(&["get"], env.registry_host(REGION));
        assert_eq!(get.stdout.trim_end(), expected);
        assert!(env.fake.requests().is_empty());
    }
}
