//! Docker's credential-helper protocol, driven through the real binary: actions, input forms,
//! exact output and error strings, which hosts are ours, store / erase / list.

use crate::man_page::help_entries;
use crate::support::{TestEnv, unix_now};

const NOT_FOUND: &str = "credentials not found in native keychain\n";

#[test]
fn version_help_and_usage() {
    let env = TestEnv::new();
    for args in [&["version"][..], &["--version"]] {
        let out = env.run(args, "");
        assert!(out.success());
        assert_eq!(
            out.stdout,
            format!(
                "docker-credential-lightsail {}\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
    let help = env.run(&["--help"], "");
    assert!(help.success());
    let commands = help_entries(&help.stdout, "Commands:");
    let expected = [
        "get",
        "store",
        "erase",
        "list",
        "version",
        "configure",
        "register",
        "push",
        "doctor",
        "completions",
        "help",
    ];
    assert_eq!(
        commands,
        expected.map(String::from).into(),
        "{}",
        help.stdout
    );
    for args in [&[][..], &["bogus"], &["get", "extra"]] {
        let out = env.run(args, "");
        assert_eq!(out.code, Some(2), "{args:?}");
        assert!(out.stderr.contains("Usage:"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn get_answers_every_form_of_the_host_with_exact_json() {
    let env = TestEnv::new();
    let host = env.registry_host("us-east-1");
    for input in [
        host.clone(),
        format!("{host}\n"),
        format!("https://{host}"),
        format!("{host}/"),
        format!("{host}/sr"),
        format!("  https://{host}/sr\r\n"),
        // nerdctl asks with HTTPS's port first: the same registry, and the answer names what
        // was asked (Docker's client library keeps its own ServerURL anyway).
        format!("{host}:443"),
        format!("https://{host}:443"),
        format!("https://{host}:443/v2/"),
    ] {
        let out = env.run(&["get"], &input);
        let creds = out.credentials();
        assert_eq!(creds.server_url, input.trim());
        assert_eq!(creds.username, "AWS");
        assert_eq!(Some(&creds.secret), env.fake.passwords().first());
        assert!(out.stdout.starts_with("{\"ServerURL\":"));
        assert!(out.stdout.ends_with("\"}\n"));
        assert_eq!(out.stderr, "", "stderr is silent");
    }
    assert_eq!(env.fake.login_calls(), 1, "one call, then the cache");
    let request = &env.fake.requests()[0];
    assert_eq!(request.region.as_deref(), Some("us-east-1"));
}

#[test]
fn foreign_hosts_are_not_found_without_aws_config_or_api_call() {
    let mut env = TestEnv::new();
    // A broken AWS config proves it is never read for a foreign host.
    env.write_aws_config("[profile broken\nthis is not an ini file");
    env.set_env("AWS_PROFILE", "broken");
    for host in [
        "docker.io",
        "https://index.docker.io/v1/",
        "ghcr.io",
        "localhost:5000",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com.example.com",
        // Any port but HTTPS's own is another server.
        "123456789012.dkr.ecr.us-east-1.amazonaws.com:5000",
        "https://123456789012.dkr.ecr.us-east-1.amazonaws.com:80/",
    ] {
        let out = env.run(&["get"], host);
        assert_eq!(out.code, Some(1), "{host}");
        assert_eq!(out.stdout, NOT_FOUND, "{host}");
        assert_eq!(out.stderr, "");
    }
    assert_eq!(env.fake.login_calls(), 0);
}

#[test]
fn another_ecr_host_in_the_region_is_not_ours_after_one_call() {
    let env = TestEnv::new();
    let own_ecr = "999988887777.dkr.ecr.us-east-1.amazonaws.com";
    for _ in 0..3 {
        let out = env.run(&["get"], own_ecr);
        assert_eq!(out.stdout, NOT_FOUND);
        assert_eq!(out.code, Some(1));
    }
    assert_eq!(
        env.fake.login_calls(),
        1,
        "at most one call per region and identity"
    );
    // The Lightsail registry itself is then served from that same cached login.
    env.run(&["get"], env.registry_host("us-east-1"))
        .credentials();
    assert_eq!(env.fake.login_calls(), 1);
}

#[test]
fn each_region_gets_its_own_login_signed_for_that_region() {
    let env = TestEnv::new();
    for region in ["us-east-1", "eu-central-1", "ap-southeast-1"] {
        let host = env.registry_host(region);
        assert_eq!(env.run(&["get"], &host).credentials().server_url, host);
    }
    let regions: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .map(|r| r.region.unwrap_or_default())
        .collect();
    assert_eq!(regions, ["us-east-1", "eu-central-1", "ap-southeast-1"]);
}

#[test]
fn store_then_get_works_with_no_aws_credentials_at_all() {
    let mut env = TestEnv::new();
    env.remove_env("AWS_ACCESS_KEY_ID");
    env.remove_env("AWS_SECRET_ACCESS_KEY");
    let host = env.registry_host("us-west-2");
    let doc =
        format!(r#"{{"ServerURL":"https://{host}","Username":"AWS","Secret":"typed-by-user-1"}}"#);
    let out = env.run(&["store"], &doc);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, "");

    let creds = env.run(&["get"], &host).credentials();
    assert_eq!(
        (creds.username.as_str(), creds.secret.as_str()),
        ("AWS", "typed-by-user-1")
    );
    assert_eq!(env.fake.login_calls(), 0);

    let list = env.run(&["list"], "unused");
    assert!(list.success());
    assert_eq!(list.stdout, format!("{{\"{host}\":\"AWS\"}}\n"));
    assert!(!list.stdout.contains("typed-by-user-1"));

    for _ in 0..2 {
        let out = env.run(&["erase"], &host);
        assert!(out.success(), "erase exits 0, also when nothing is held");
        assert_eq!(out.stdout, "");
    }
    assert_eq!(env.run(&["list"], "").stdout, "{}\n");
    let after = env.run(&["get"], &host);
    assert_eq!(after.code, Some(1));
    assert!(
        after.stdout.starts_with("no AWS credentials found"),
        "{}",
        after.stdout
    );
}

#[test]
fn list_shows_fetched_logins_without_secrets_or_api_calls() {
    let env = TestEnv::new();
    let host = env.registry_host("us-east-1");
    let secret = env.run(&["get"], &host).credentials().secret;
    let list = env.run(&["list"], "");
    assert_eq!(list.stdout, format!("{{\"{host}\":\"AWS\"}}\n"));
    assert!(!list.stdout.contains(&secret));
    assert_eq!(env.fake.login_calls(), 1);

    // erase forgets the fetched login too: the next get asks the API again.
    assert!(env.run(&["erase"], &host).success());
    assert_eq!(env.run(&["list"], "").stdout, "{}\n");
    env.run(&["get"], &host).credentials();
    assert_eq!(env.fake.login_calls(), 2);
}

#[test]
fn bad_input_gets_one_clear_line_and_exit_1_never_a_panic() {
    let env = TestEnv::new();
    let host = env.registry_host("us-east-1");
    let junk: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("get", vec![], "no credentials server URL"),
        ("get", b"\n\n".to_vec(), "no credentials server URL"),
        ("erase", vec![], "no credentials server URL"),
        (
            "get",
            junk.clone(),
            "invalid input: standard input is larger than 64 KiB",
        ),
        (
            "store",
            junk,
            "invalid input: standard input is larger than 64 KiB",
        ),
        (
            "get",
            b"\xff\xfe\xfd".to_vec(),
            "invalid input: standard input is not UTF-8 text",
        ),
        (
            "store",
            b"{\"ServerURL\":".to_vec(),
            "invalid input: store expects",
        ),
        ("store", b"null".to_vec(), "invalid input: store expects"),
        (
            "store",
            b"{\"Username\":\"AWS\",\"Secret\":\"x\"}".to_vec(),
            "no credentials server URL",
        ),
        (
            "store",
            format!("{{\"ServerURL\":\"{host}\",\"Secret\":\"x\"}}").into_bytes(),
            "no credentials username",
        ),
        (
            "store",
            b"{\"ServerURL\":\"docker.io\",\"Username\":\"u\",\"Secret\":\"x\"}".to_vec(),
            "invalid input: docker.io is not an Amazon Lightsail or ECR registry host",
        ),
    ];
    for (action, input, expected) in cases {
        let out = env.run(&[action], &input);
        assert_eq!(out.code, Some(1), "{action} {expected}");
        assert_eq!(out.stdout.lines().count(), 1, "{action}: {}", out.stdout);
        assert!(out.stdout.starts_with(expected), "{action}: {}", out.stdout);
        assert_eq!(out.stderr, "", "{action}");
    }
    assert_eq!(env.fake.login_calls(), 0);
}

#[test]
fn closed_stdin_and_closed_stdout_do_not_panic() {
    let env = TestEnv::new();
    let host = env.registry_host("us-east-1");

    let mut cmd = env.cmd(&["get"]);
    cmd.stdin(std::process::Stdio::null());
    let out = env.run_cmd(cmd, "");
    assert_eq!(out.stdout, "no credentials server URL\n");

    // stdout is a pipe whose reader is gone: the write fails (EPIPE), quietly.
    let mut child = env
        .cmd(&["get"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(host.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(env.fake.login_calls(), 1);
}

/// An ECR-shaped registry password: base64 of JSON saying when it expires (the shape the
/// helper reads; see `password_expiry` in src/actions.rs for the public sources).
fn ecr_password(expiration: u64) -> String {
    let json = format!(
        r#"{{"payload":"opaque","datakey":"opaque","version":"2","type":"DATA_KEY","expiration":{expiration}}}"#
    );
    aws_smithy_types::base64::encode(json)
}

#[test]
fn a_docker_login_never_outlives_its_password_nor_shadows_the_accounts_login() {
    let env = TestEnv::new();
    let host = env.registry_host("us-east-1");
    let store = |secret: &str| {
        let doc = format!(r#"{{"ServerURL":"{host}","Username":"AWS","Secret":"{secret}"}}"#);
        let out = env.run(&["store"], doc);
        assert!(out.success(), "{out:?}");
    };
    // A password obtained 12 h before `docker login`: it already says it has expired.
    store(&ecr_password(unix_now() - 60));
    let served = env.run(&["get"], &host).credentials();
    assert_eq!(Some(&served.secret), env.fake.passwords().first());
    assert_eq!(env.fake.login_calls(), 1);

    // A password of unknown age: the account's own login (cached now) still wins.
    store("typed-by-user-2");
    assert_eq!(env.run(&["get"], &host).credentials(), served);
    assert_eq!(env.fake.login_calls(), 1);

    // A password that says it is good for another hour is served as it is, with no API call.
    let good = ecr_password(unix_now() + 3_600);
    store(&good);
    assert_eq!(env.run(&["get"], &host).credentials().secret, good);
    assert_eq!(env.fake.login_calls(), 1);
    let list = env.run(&["list"], "");
    assert!(!list.stdout.contains(&good) && !list.stderr.contains(&good));
}

#[test]
fn a_docker_login_for_a_host_that_is_not_the_accounts_is_served_to_its_last_second() {
    let env = TestEnv::new();
    // The user's own ECR registry in the region: the Lightsail API says it is not the account's.
    let own_ecr = "999988887777.dkr.ecr.us-east-1.amazonaws.com";
    let doc = format!(r#"{{"ServerURL":"{own_ecr}","Username":"AWS","Secret":"typed-own-ecr"}}"#);
    assert!(env.run(&["store"], doc).success());
    // Ten minutes left: inside the refresh margin.
    let file = env.cache_dir().join(format!("stored-{own_ecr}.json"));
    let mut entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    entry["login"]["expires_at"] = serde_json::json!(unix_now() + 600);
    std::fs::write(&file, entry.to_string()).unwrap();
    for calls in [1, 1] {
        let creds = env.run(&["get"], own_ecr).credentials();
        assert_eq!(creds.secret, "typed-own-ecr");
        assert_eq!(env.fake.login_calls(), calls, "asked once, then remembered");
    }
}
