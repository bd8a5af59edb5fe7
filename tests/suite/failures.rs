//! Every way a fetch can fail gives one line that names the cause, exit 1, a silent stderr and
//! an untouched cache; throttling and server errors are retried. Debug logs never hold a secret.

use std::fs;
use std::process::Command;

use crate::support::fake_lightsail::Mode;
use crate::support::{BIN, ClosedPort, RunOutput, TestEnv, cache_contents};

const REGION: &str = "us-east-1";

/// Runs a `get` that must fail: one line on stdout starting with `expected`, exit 1, silent
/// stderr, and the cache exactly as it was.
fn assert_fails(env: &TestEnv, expected: &str) -> String {
    let before = cache_contents(&env.cache_dir());
    let out = env.run(&["get"], env.registry_host(REGION));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "one line: {}", out.stdout);
    assert!(
        out.stdout.starts_with(expected),
        "expected {expected:?}, got {}",
        out.stdout
    );
    assert_eq!(out.stderr, "");
    assert_eq!(cache_contents(&env.cache_dir()), before, "cache untouched");
    out.stdout
}

#[test]
fn each_documented_api_exception_is_named() {
    let cases = [
        (
            400,
            "AccessDeniedException",
            "User is not authorized",
            "access denied by Lightsail in us-east-1 (AccessDeniedException: User is not authorized): the AWS identity from AWS_ACCESS_KEY_ID AKIATESTKEY00000001 needs the lightsail:CreateContainerServiceRegistryLogin permission",
        ),
        (
            400,
            "InvalidInputException",
            "Bad input",
            "Lightsail in us-east-1 refused the request (InvalidInputException): Bad input",
        ),
        (
            400,
            "NotFoundException",
            "Nothing here",
            "Lightsail in us-east-1 refused the request (NotFoundException): Nothing here",
        ),
        (
            400,
            "UnauthenticatedException",
            "Who are you",
            "AWS rejected the credentials from AWS_ACCESS_KEY_ID AKIATESTKEY00000001 (UnauthenticatedException: Who are you)",
        ),
        (
            400,
            "RegionSetupInProgressException",
            "Wait",
            "Lightsail in us-east-1 refused the request (RegionSetupInProgressException): Wait",
        ),
        // Control characters from outside (a terminal escape, a bell, a DEL, a C1 control)
        // never reach the user's terminal or Docker's one-line error.
        (
            400,
            "Odd\u{1b}[31mException\u{7f}",
            "red\u{1b}[0m\u{7}bell\u{85}next\ttab",
            "Lightsail in us-east-1 refused the request (Odd [31mException): red [0m bell next tab",
        ),
    ];
    for (status, code, message, expected) in cases {
        let env = TestEnv::new();
        env.fake.fail_next(1, status, code, message);
        assert_fails(&env, expected);
        assert_eq!(env.fake.login_calls(), 1, "{code} is not retried");
    }
}

#[test]
fn service_exception_is_retried_then_reported() {
    let env = TestEnv::new();
    env.fake
        .fail_next(3, 500, "ServiceException", "Internal failure");
    assert_fails(
        &env,
        "Lightsail in us-east-1 refused the request (ServiceException): Internal failure",
    );
    assert_eq!(
        env.fake.login_calls(),
        3,
        "the SDK's standard three attempts"
    );
}

#[test]
fn throttling_and_server_errors_are_retried_to_success() {
    let env = TestEnv::new();
    env.fake
        .fail_next(1, 400, "ThrottlingException", "Rate exceeded");
    env.fake
        .fail_next(1, 503, "ServiceUnavailableException", "Busy");
    let out = env.run(&["get"], env.registry_host(REGION));
    assert!(out.credentials().secret.starts_with("LSPW-"));
    assert_eq!(env.fake.login_calls(), 3);
}

#[test]
fn an_unknown_key_or_a_bad_signature_says_the_credentials_were_rejected() {
    let env = TestEnv::new();
    env.fake
        .set_known_access_keys(Some(&["AKIASOMEONEELSE0001"]));
    assert_fails(
        &env,
        "AWS rejected the credentials from AWS_ACCESS_KEY_ID AKIATESTKEY00000001 (UnrecognizedClientException",
    );

    let env = TestEnv::new();
    env.fake.expect_region(Some("eu-west-1"));
    assert_fails(
        &env,
        "AWS rejected the credentials from AWS_ACCESS_KEY_ID AKIATESTKEY00000001 (InvalidSignatureException",
    );
}

#[test]
fn no_aws_credentials_at_all() {
    let mut env = TestEnv::new();
    env.remove_env("AWS_ACCESS_KEY_ID");
    env.remove_env("AWS_SECRET_ACCESS_KEY");
    let message = assert_fails(&env, "no AWS credentials found (the default AWS profile)");
    assert!(message.contains("aws sso login"));
    assert_eq!(env.fake.login_calls(), 0);
}

#[test]
fn an_unreachable_endpoint() {
    let mut env = TestEnv::new();
    // Nothing listens there.
    let closed = ClosedPort::new();
    let port = closed.port();
    env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("http://127.0.0.1:{port}"),
    );
    let message = assert_fails(
        &env,
        "could not reach the Lightsail endpoint for us-east-1: ",
    );
    assert!(message.contains("Connection refused"), "{message}");
}

#[test]
fn an_endpoint_that_never_answers_times_out() {
    let mut env = TestEnv::new();
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT", "2");
    env.fake.hang();
    assert_fails(
        &env,
        "Lightsail in us-east-1 did not answer within 2 s (DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT)",
    );
}

#[test]
fn a_malformed_answer_or_a_login_without_password() {
    let env = TestEnv::new();
    env.fake.set_mode(Mode::MalformedBody);
    assert_fails(&env, "unexpected answer from Lightsail in us-east-1: ");
    env.fake.set_mode(Mode::LoginWithoutPassword);
    assert_fails(
        &env,
        "unexpected answer from Lightsail in us-east-1: the login has no password",
    );
}

#[test]
fn a_login_naming_a_registry_of_another_region_or_no_registry_is_refused() {
    let env = TestEnv::new();
    let config = env.docker_config_dir().join("config.json");
    for (answered, shown) in [
        (
            crate::support::fake_lightsail::registry_host("123456789012", "eu-west-1"),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        ),
        ("evil.example.com".to_string(), "evil.example.com"),
        (
            "registry\u{1b}[31m.example".to_string(),
            "registry [31m.example",
        ),
    ] {
        env.fake.set_login_registry(Some(&answered));
        let expected = format!(
            "unexpected answer from Lightsail in us-east-1: the login names the registry \"{shown}\", which is not a registry host of us-east-1; refusing it"
        );
        assert_fails(&env, &expected);
        let out = env.run(&["configure", "--region", REGION], "");
        assert_eq!(out.code, Some(1), "{out:?}");
        assert_eq!(out.stderr, format!("error: {expected}\n"));
        assert!(!config.exists(), "configure wrote config.json");
    }
    // The same answer with `https://` before the host is the host.
    let host = env.registry_host(REGION);
    env.fake
        .set_login_registry(Some(&format!("https://{host}")));
    let out = env.run(&["configure", "--region", REGION], "");
    assert!(out.success(), "{out:?}");
    assert!(
        fs::read_to_string(&config)
            .unwrap()
            .contains(&format!("\"{host}\": \"lightsail\""))
    );
}

#[test]
fn debug_logs_tell_the_story_without_a_secret() {
    let mut env = TestEnv::new();
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_LOG", "trace");
    let host = env.registry_host(REGION);
    // miss, hit, failure: the harness scans every stderr for every password the fake issued
    // and for the AWS secret key.
    let miss = env.run(&["get"], &host);
    let secret = miss.credentials().secret;
    assert!(
        miss.stderr
            .contains("asking Lightsail for a registry login in us-east-1"),
        "{}",
        miss.stderr
    );
    let hit = env.run(&["get"], &host);
    assert!(hit.stderr.contains("cache hit"), "{}", hit.stderr);
    assert!(!hit.stderr.contains(&secret));

    env.fake.fail_next(1, 400, "AccessDeniedException", "no");
    let mut cmd = env.cmd(&["get"]);
    cmd.env(
        "DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR",
        env.root().join("other-cache"),
    );
    let failed = env.run_cmd(cmd, &host);
    assert_eq!(failed.code, Some(1));
    assert!(!failed.stderr.is_empty());
}

#[test]
fn an_endpoint_name_that_does_not_resolve() {
    let mut env = TestEnv::new();
    env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        "http://no-such-host.invalid:8080",
    );
    assert_fails(
        &env,
        "could not reach the Lightsail endpoint for us-east-1: cannot resolve no-such-host.invalid: ",
    );
}

/// Sets up, in the run's own network namespace, a default route into a TUN device that nothing
/// reads: packets to the instance metadata address vanish, as off EC2 behind a firewall that
/// drops them. Then runs the binary with the arguments that follow.
const SILENT_NETWORK: &str = "set -e
ip link set lo up
ip tuntap add dev silent0 mode tun
ip link set silent0 up
ip addr add 10.77.0.1/24 dev silent0
ip route add default dev silent0
start=$(date +%s%N)
status=0
\"$@\" || status=$?
echo \"helper took $(( ($(date +%s%N) - start) / 1000000 )) ms\" >&2
exit $status";

/// `get` of the fake's host in a network where the metadata service never answers (and the fake
/// cannot be reached either): with `extra` variables. Returns the run and how long the binary
/// took (without the network's setup), as the script measured it.
fn get_in_silent_network(env: &TestEnv, extra: &[(&str, &str)]) -> (RunOutput, String) {
    let mut inner = env.cmd(&["get"]);
    inner.envs(extra.iter().copied());
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "sh", "-c", SILENT_NETWORK, "sh", BIN, "get"])
        .env_clear()
        .current_dir(env.root());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let out = env.run_cmd(cmd, env.registry_host(REGION));
    let took = out
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("helper took "))
        .unwrap_or("?")
        .to_string();
    (out, took)
}

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn no_credentials_off_ec2_is_fast_after_one_unanswered_metadata_probe_as_root() {
    let mut env = TestEnv::new();
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_EC2_METADATA_DISABLED",
    ] {
        env.remove_env(name);
    }
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_LOG", "debug");
    let no_credentials = "no AWS credentials found (the default AWS profile)";

    let (first, first_took) = get_in_silent_network(&env, &[]);
    assert_eq!(first.code, Some(1), "{first:?}");
    assert!(first.stdout.starts_with(no_credentials), "{first:?}");
    assert!(
        first
            .stderr
            .contains("the instance metadata service did not answer: not asking it again"),
        "{}",
        first.stderr
    );

    let (second, second_took) = get_in_silent_network(&env, &[]);
    assert_eq!(second.code, Some(1), "{second:?}");
    assert!(second.stdout.starts_with(no_credentials), "{second:?}");
    assert!(
        second
            .stderr
            .contains("not asking the instance metadata service: it did not answer"),
        "{}",
        second.stderr
    );
    println!(
        "no credentials, metadata packets dropped: the first get took {first_took}, the next {second_took}"
    );

    // Credentials that appear meanwhile are used at once: these runs go on to the endpoint
    // (which this network cannot reach) instead of saying there are none.
    let reached_for_endpoint = |out: &RunOutput| {
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stdout
                .starts_with("could not reach the Lightsail endpoint for us-east-1"),
            "{out:?}"
        );
    };
    let (keys, _) = get_in_silent_network(
        &env,
        &[
            ("AWS_ACCESS_KEY_ID", crate::support::ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", crate::support::SECRET_ACCESS_KEY),
        ],
    );
    reached_for_endpoint(&keys);
    env.write_aws_credentials(
        "[default]\naws_access_key_id = AKIAFILE000000000001\naws_secret_access_key = FileSecret/0001\n",
    );
    let (file, _) = get_in_silent_network(&env, &[]);
    reached_for_endpoint(&file);
}
