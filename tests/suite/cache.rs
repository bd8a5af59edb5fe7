//! The on-disk cache, driven through the binary: where it lives, its modes, what keys it,
//! the refresh margin, and every kind of damaged entry.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::support::fake_lightsail::DEFAULT_EXPIRES_IN;
use crate::support::{TestEnv, cache_contents, snapshot, unix_now};

const REGION: &str = "us-east-1";

/// The fetched-login entries in a cache dir.
fn login_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    name.starts_with("login-") && name.ends_with(".json")
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Rewrites the one fetched login in `dir` as long expired.
fn expire_the_cached_login(dir: &Path) {
    set_expiry_of_the_cached_login(dir, 1_000_000_000);
}

/// Rewrites the one fetched login in `dir` to expire at `expires_at`.
fn set_expiry_of_the_cached_login(dir: &Path, expires_at: u64) {
    let file = login_files(dir).remove(0);
    let mut entry: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    entry["login"]["expires_at"] = serde_json::json!(expires_at);
    fs::write(&file, serde_json::to_vec(&entry).unwrap()).unwrap();
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o777
}

#[test]
fn default_location_is_the_xdg_cache_dir_private_whatever_the_umask() {
    let mut env = TestEnv::new();
    env.remove_env("DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR");
    let host = env.registry_host(REGION);
    // umask 000 would make everything world-writable if the helper trusted it.
    let cmd = env.cmd(&[]);
    let mut shell = std::process::Command::new("sh");
    shell.args([
        "-c",
        "umask 000; exec \"$0\" \"$@\"",
        crate::support::BIN,
        "get",
    ]);
    shell.env_clear();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            shell.env(key, value);
        }
    }
    let out = env.run_cmd(shell, &host);
    out.credentials();

    let dir = env.xdg_cache_dir().join("docker-credential-lightsail");
    assert_eq!(mode(&dir), 0o700);
    let files = login_files(&dir);
    assert_eq!(files.len(), 1);
    assert_eq!(mode(&files[0]), 0o600);
    for lock in fs::read_dir(&dir).unwrap() {
        assert_eq!(mode(&lock.unwrap().path()), 0o600);
    }
}

#[test]
fn an_existing_cache_dir_open_to_others_is_refused_and_left_as_it_is() {
    let mut env = TestEnv::new();
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_LOG", "debug");
    // As $HOME often is: ours, readable by others, full of the user's files.
    let home = env.home();
    fs::write(home.join(".bashrc"), "export EDITOR=vi\n").unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR", &home);
    let before = snapshot(&home);
    let host = env.registry_host(REGION);
    for calls in [1, 2] {
        let out = env.run(&["get"], &host);
        out.credentials();
        assert!(
            out.stderr
                .contains("it is readable by group or others (mode 755)"),
            "{}",
            out.stderr
        );
        assert_eq!(env.fake.login_calls(), calls, "no cache: the API answers");
    }
    assert_eq!(
        snapshot(&home),
        before,
        "nothing in it changed, its mode included"
    );
}

#[test]
fn switching_profile_or_keys_never_serves_another_identitys_login() {
    let mut env = TestEnv::new();
    let host = env.registry_host(REGION);
    env.write_aws_credentials(
        "[dev]\naws_access_key_id = AKIADEV000000000001\naws_secret_access_key = DevSecret/0001\n\
         [prod]\naws_access_key_id = AKIAPROD00000000001\naws_secret_access_key = ProdSecret/0001\n",
    );
    env.remove_env("AWS_ACCESS_KEY_ID");
    env.remove_env("AWS_SECRET_ACCESS_KEY");

    let as_profile = |profile: &str| {
        let mut cmd = env.cmd(&["get"]);
        cmd.env("AWS_PROFILE", profile);
        env.run_cmd(cmd, &host).credentials().secret
    };
    let dev = as_profile("dev");
    let prod = as_profile("prod");
    assert_ne!(dev, prod);
    assert_eq!(as_profile("dev"), dev, "cached per profile");
    assert_eq!(as_profile("prod"), prod);

    let with_keys = |key_id: &str| {
        let mut cmd = env.cmd(&["get"]);
        cmd.env("AWS_ACCESS_KEY_ID", key_id)
            .env("AWS_SECRET_ACCESS_KEY", "EnvSecret/0001");
        env.run_cmd(cmd, &host).credentials().secret
    };
    let a = with_keys("AKIAENVA00000000001");
    let b = with_keys("AKIAENVB00000000001");
    assert!(a != b && a != dev && b != prod);
    assert_eq!(with_keys("AKIAENVA00000000001"), a);

    let signers: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .map(|r| r.access_key_id.unwrap_or_default())
        .collect();
    assert_eq!(
        signers,
        [
            "AKIADEV000000000001",
            "AKIAPROD00000000001",
            "AKIAENVA00000000001",
            "AKIAENVB00000000001"
        ]
    );
}

#[test]
fn a_profile_whose_keys_change_every_session_still_hits_the_cache() {
    // credential_process stands in for SSO or assume-role: new temporary keys on every call.
    let mut env = TestEnv::new();
    let counter = env.root().join("sessions");
    let script = env.root().join("issue-session-keys");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nn=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
             printf '{{\"Version\":1,\"AccessKeyId\":\"ASIATEMP%011d\",\"SecretAccessKey\":\"TempSecret/%d\",\"SessionToken\":\"TempToken%d\"}}' $n $n $n\n",
            c = counter.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    env.write_aws_config(&format!(
        "[profile ci]\ncredential_process = {}\n",
        script.display()
    ));
    env.remove_env("AWS_ACCESS_KEY_ID");
    env.remove_env("AWS_SECRET_ACCESS_KEY");
    env.set_env("AWS_PROFILE", "ci");
    let host = env.registry_host(REGION);

    let first = env.run(&["get"], &host).credentials();
    for _ in 0..3 {
        assert_eq!(env.run(&["get"], &host).credentials(), first);
    }
    assert_eq!(env.fake.login_calls(), 1);
    assert_eq!(
        fs::read_to_string(&counter).unwrap().trim(),
        "1",
        "no credential resolution on a hit"
    );
    assert_eq!(
        env.fake.requests()[0].access_key_id.as_deref(),
        Some("ASIATEMP00000000001")
    );
}

#[test]
fn a_login_inside_the_refresh_margin_is_refreshed_and_served_if_refresh_fails() {
    let env = TestEnv::new();
    let host = env.registry_host(REGION);
    env.fake.set_expires_in(600); // inside the 30-minute default margin
    let aging = env.run(&["get"], &host).credentials();

    // Refresh fails (three 500s: the first try and the SDK's two retries): the aging login serves.
    env.fake
        .fail_next(3, 500, "ServiceException", "try again later");
    let served = env.run(&["get"], &host);
    assert_eq!(served.credentials(), aging);
    assert_eq!(env.fake.login_calls(), 4);

    // Refresh works: a new login replaces it.
    env.fake.set_expires_in(DEFAULT_EXPIRES_IN);
    let fresh = env.run(&["get"], &host).credentials();
    assert_ne!(fresh.secret, aging.secret);
    assert_eq!(env.run(&["get"], &host).credentials(), fresh);
    assert_eq!(env.fake.login_calls(), 5);
}

#[test]
fn an_expired_login_is_never_served() {
    let env = TestEnv::new();
    let host = env.registry_host(REGION);
    env.run(&["get"], &host).credentials();
    expire_the_cached_login(&env.cache_dir());

    env.fake.fail_next(3, 500, "ServiceException", "down");
    let out = env.run(&["get"], &host);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stdout
            .starts_with("Lightsail in us-east-1 refused the request (ServiceException)"),
        "{}",
        out.stdout
    );
}

#[test]
fn the_margin_is_configurable_and_checked() {
    let mut env = TestEnv::new();
    let host = env.registry_host(REGION);
    env.fake.set_expires_in(600);
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_REFRESH_MARGIN", "300");
    env.run(&["get"], &host).credentials();
    env.run(&["get"], &host).credentials();
    assert_eq!(
        env.fake.login_calls(),
        1,
        "10 minutes left is outside a 5-minute margin"
    );

    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_REFRESH_MARGIN", "soon");
    let out = env.run(&["get"], &host);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stdout,
        "invalid setting DOCKER_CREDENTIAL_LIGHTSAIL_REFRESH_MARGIN=\"soon\": a whole number of seconds from 0 to 86400\n"
    );
}

#[test]
fn every_kind_of_damaged_entry_reads_as_empty_and_is_replaced() {
    let env = TestEnv::new();
    let host = env.registry_host(REGION);
    env.run(&["get"], &host).credentials();
    let file = login_files(&env.cache_dir()).remove(0);
    let good = fs::read(&file).unwrap();
    let other_version = String::from_utf8(good.clone())
        .unwrap()
        .replace("\"format\":1", "\"format\":99");
    let damaged: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("garbage", b"\x00\x01garbage\xff".to_vec()),
        ("other version", other_version.into_bytes()),
        (
            "other shape",
            br#"{"auths":{"x":{"auth":"eA=="}}}"#.to_vec(),
        ),
        ("a JSON array", b"[1,2,3]".to_vec()),
        ("huge", vec![b' '; 2 * 1024 * 1024]),
    ];
    for (n, (what, bytes)) in damaged.into_iter().enumerate() {
        fs::write(&file, &bytes).unwrap();
        let out = env.run(&["get"], &host);
        assert_eq!(out.credentials().server_url, host, "{what}");
        assert_eq!(env.fake.login_calls(), n + 2, "{what}: fetched anew");
        let replaced: serde_json::Value =
            serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(
            replaced["login"]["secret"],
            out.credentials().secret.as_str(),
            "{what}: replaced"
        );
    }

    // A directory where the entry should be: served from the API, and the directory is left alone.
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    env.run(&["get"], &host).credentials();
    assert!(file.is_dir());
}

#[test]
fn an_unwritable_cache_dir_still_lets_get_answer() {
    let mut env = TestEnv::new();
    let blocker = env.root().join("a-file");
    fs::write(&blocker, "not a directory").unwrap();
    env.set_env(
        "DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR",
        blocker.join("cache"),
    );
    let host = env.registry_host(REGION);
    env.run(&["get"], &host).credentials();
    env.run(&["get"], &host).credentials();
    assert_eq!(env.fake.login_calls(), 2, "no cache: every get asks");
    assert_eq!(fs::read_to_string(&blocker).unwrap(), "not a directory");
}

#[test]
fn a_failed_fetch_leaves_the_cache_as_it_was() {
    let env = TestEnv::new();
    let host = env.registry_host(REGION);
    env.fake.set_expires_in(600);
    env.run(&["get"], &host).credentials();
    // Make the entry expired, so the failure cannot be hidden by the fallback (a minute ago:
    // one expired for over a day would be removed by the miss, as it should).
    set_expiry_of_the_cached_login(&env.cache_dir(), unix_now() - 60);
    let before = cache_contents(&env.cache_dir());

    env.fake
        .fail_next(1, 400, "AccessDeniedException", "not allowed");
    assert_eq!(env.run(&["get"], &host).code, Some(1));
    assert_eq!(cache_contents(&env.cache_dir()), before);
}

#[test]
fn after_an_account_switch_behind_the_same_profile_the_new_registry_works_at_once() {
    let mut env = TestEnv::new();
    env.remove_env("AWS_ACCESS_KEY_ID");
    env.remove_env("AWS_SECRET_ACCESS_KEY");
    let credentials = |key_id: &str| {
        format!(
            "[default]\naws_access_key_id = {key_id}\naws_secret_access_key = Secret/{key_id}\n"
        )
    };
    env.write_aws_credentials(&credentials("AKIASTAGING00000001"));
    let staging = env.registry_host(REGION);
    env.run(&["get"], &staging).credentials();

    // The same profile now holds another account's keys (as after `aws sso login` elsewhere).
    env.write_aws_credentials(&credentials("AKIAPRODUCTION00001"));
    env.fake.set_account("210987654321");
    let production = env.registry_host(REGION);
    assert_ne!(production, staging);
    let served = env.run(&["get"], &production).credentials();
    assert_eq!(Some(&served.secret), env.fake.passwords().last());
    assert_eq!(
        env.fake.login_calls(),
        2,
        "one fresh login for the new host"
    );
    env.run(&["get"], &production).credentials();
    assert_eq!(env.fake.login_calls(), 2, "then served from the cache");

    // The old account's host is not this account's any more: asked once, then remembered.
    for _ in 0..3 {
        let out = env.run(&["get"], &staging);
        assert_eq!(out.stdout, "credentials not found in native keychain\n");
    }
    assert_eq!(env.fake.login_calls(), 3);
    // `erase` forgets that too: the next `get` asks again.
    assert!(env.run(&["erase"], &staging).success());
    env.run(&["get"], &staging);
    assert_eq!(env.fake.login_calls(), 4);
}

#[test]
fn a_login_expiring_further_ahead_than_any_login_lives_means_the_clock_went_back() {
    let env = TestEnv::new();
    let host = env.registry_host(REGION);
    let first = env.run(&["get"], &host).credentials();
    // Written while the clock read an hour and a half ahead: 13.5 h left by today's clock.
    let from_the_future = unix_now() + 13 * 3600 + 1800;
    set_expiry_of_the_cached_login(&env.cache_dir(), from_the_future);
    let second = env.run(&["get"], &host).credentials();
    assert_ne!(second.secret, first.secret, "stale: fetched anew");
    assert_eq!(env.fake.login_calls(), 2);
    assert_eq!(env.run(&["get"], &host).credentials(), second);
    assert_eq!(env.fake.login_calls(), 2, "the new one is believed");

    // Stale is not "unexpired": with the API down it is not served either.
    set_expiry_of_the_cached_login(&env.cache_dir(), from_the_future);
    env.fake.fail_next(3, 500, "ServiceException", "down");
    let out = env.run(&["get"], &host);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.starts_with("Lightsail in us-east-1 refused"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_miss_removes_a_thousand_long_expired_entries_and_list_and_erase_stay_fast() {
    let env = TestEnv::new();
    let host = env.registry_host(REGION);
    env.run(&["get"], &host).credentials();
    let dir = env.cache_dir();
    let current = login_files(&dir).remove(0);
    let mut entry: serde_json::Value =
        serde_json::from_slice(&fs::read(&current).unwrap()).unwrap();
    // Logins of access keys rotated away long ago (CI with a new key a day), and one that
    // expired an hour ago: kept a day, for the record.
    let mut write = |name: &str, expires_at: u64| {
        entry["login"]["expires_at"] = serde_json::json!(expires_at);
        fs::write(dir.join(format!("{name}.json")), entry.to_string()).unwrap();
        fs::write(dir.join(format!("{name}.lock")), "").unwrap();
    };
    let now = unix_now();
    for n in 0..1_000u64 {
        write(
            &format!("login-{REGION}-{n:016x}"),
            now - 2 * 86_400 - n * 60,
        );
    }
    write(&format!("login-{REGION}-recent0000000000"), now - 3_600);
    assert_eq!(login_files(&dir).len(), 1_002);

    let timed = |args: &[&str], stdin: &str| {
        let started = std::time::Instant::now();
        let out = env.run(args, stdin);
        (out, started.elapsed())
    };
    let (list, list_took) = timed(&["list"], "");
    assert_eq!(list.stdout, format!("{{\"{host}\":\"AWS\"}}\n"));
    let own_ecr = "999988887777.dkr.ecr.us-east-1.amazonaws.com";
    let (erase, erase_took) = timed(&["erase"], own_ecr);
    assert!(erase.success(), "{erase:?}");
    // A hit leaves them alone.
    env.run(&["get"], &host).credentials();
    assert_eq!(login_files(&dir).len(), 1_002);

    // A miss (a host asked about for the first time) removes the long-expired ones.
    let (miss, miss_took) = timed(&["get"], own_ecr);
    assert_eq!(miss.stdout, "credentials not found in native keychain\n");
    assert_eq!(env.fake.login_calls(), 2);
    let left: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|item| item.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(login_files(&dir).len(), 2, "{left:?}");
    assert_eq!(left.len(), 4, "the two entries and their locks: {left:?}");
    assert!(
        dir.join(format!("login-{REGION}-recent0000000000.json"))
            .exists()
    );
    let (after, after_took) = timed(&["list"], "");
    assert_eq!(after.stdout, list.stdout);
    println!(
        "figures: with 1000 long-expired entries: list {:.1} ms, erase {:.1} ms, the miss that removed them {:.1} ms; list after {:.1} ms",
        list_took.as_secs_f64() * 1e3,
        erase_took.as_secs_f64() * 1e3,
        miss_took.as_secs_f64() * 1e3,
        after_took.as_secs_f64() * 1e3,
    );
}
