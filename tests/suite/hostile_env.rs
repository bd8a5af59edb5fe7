//! A hostile or broken cache directory never stops a `get`, never serves what someone else put
//! there, never makes the helper write through a link to somewhere else, and never blocks it.
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
