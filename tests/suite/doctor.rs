//! `doctor` through the real binary: a healthy setup where every line is `ok`, then each broken
//! setup of issue 16, one at a time, each named with its cause and its fix and failing that
//! one check only.
//!
//! The registry's `/v2/` is the fake's own (401 with a Basic challenge, 200 for a password it
//! issued) behind a TLS front whose certificate, for the registry host, a CA made here signs.
//! The registry host reaches the front through the test proxy (`HTTPS_PROXY`), which maps the
//! name, as network.rs reaches names no resolver knows: no setting of the helper's points the
//! registry elsewhere. The system's roots are the test CA (`SSL_CERT_FILE`), as for Docker.
//! `PATH` holds only the folders a test puts there: this machine has a real docker and podman.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::proxy::TestProxy;
use crate::support::tls::{TestCa, TlsFront};
use crate::support::{BIN, ClosedPort, RunOutput, TestEnv};

const REGION: &str = "us-east-1";

/// Keys of a second profile, `staging`.
const STAGING_KEYS: &str = "[staging]\naws_access_key_id = AKIASTAGING000000001\naws_secret_access_key = Staging-Secret-MUST-NOT-LEAK-01\n";
/// A stand-in `docker` that needs nothing on PATH: `version` prints the API version.
const FAKE_DOCKER: &str = "#!/bin/sh\ncase \"$1\" in version) echo 1.51 ;; esac\nexit 0\n";
/// An older copy of the helper, as a package manager might have left it.
const OLD_HELPER: &str =
    "#!/bin/sh\ncase \"$1\" in version) echo 'docker-credential-lightsail 0.0.9' ;; esac\nexit 0\n";

/// A setup where everything works: the helper and a docker on PATH, a credHelpers entry for
/// the account's registry host, AWS keys and region, a private cache, a registry answering.
struct Setup {
    env: TestEnv,
    host: String,
    ca: TestCa,
    _front: TlsFront,
    _proxy: TestProxy,
    /// The folders of PATH, in order.
    path: Vec<PathBuf>,
}

impl Setup {
    fn healthy() -> Setup {
        let mut env = TestEnv::new();
        let host = env.registry_host(REGION);
        let ca = TestCa::new(&env.root().join("ca"), "doctor test CA");
        let front = TlsFront::start(&ca.server_pem(&[&host, "localhost"]), env.fake.port());
        let proxy = TestProxy::start();
        proxy.route(&host, SocketAddr::from(([127, 0, 0, 1], front.port())));
        env.set_env("HTTPS_PROXY", proxy.url());
        env.set_env("SSL_CERT_FILE", ca.pem());
        env.set_env("AWS_REGION", REGION);
        let helper = env.root().join("helper");
        fs::create_dir(&helper).unwrap();
        std::os::unix::fs::symlink(BIN, helper.join("docker-credential-lightsail")).unwrap();
        let engine = env.root().join("engine");
        fs::create_dir(&engine).unwrap();
        script(&engine.join("docker"), FAKE_DOCKER);
        let mut setup = Setup {
            env,
            host,
            ca,
            _front: front,
            _proxy: proxy,
            path: vec![helper, engine],
        };
        setup.set_path();
        setup.docker_config(json!({ "credHelpers": { setup.host.clone(): "lightsail" } }));
        setup
    }

    fn set_path(&mut self) {
        let path = std::env::join_paths(&self.path).unwrap();
        self.env.set_env("PATH", path);
    }

    fn docker_config(&self, doc: Value) {
        fs::write(
            self.env.docker_config_dir().join("config.json"),
            serde_json::to_string_pretty(&doc).unwrap(),
        )
        .unwrap();
    }

    fn doctor(&self, args: &[&str]) -> RunOutput {
        let mut all = vec!["doctor"];
        all.extend_from_slice(args);
        self.env.run(&all, "")
    }
}

fn script(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The check lines (`ok`, `warn`, `FAIL`) with the fix under each, and the summary.
fn checks(out: &RunOutput) -> Vec<(String, Option<String>)> {
    let mut checks: Vec<(String, Option<String>)> = Vec::new();
    for line in out.stdout.lines() {
        if let Some(fix) = line.trim_start().strip_prefix("fix: ") {
            checks.last_mut().expect("a fix follows its check").1 = Some(fix.to_string());
        } else if !line.starts_with("summary: ") {
            checks.push((line.to_string(), None));
        }
    }
    checks
}

/// The one failed check of a run that must fail for one cause: its line, which must start
/// with `FAIL  <id>` and hold `says`, and its fix, which must be `fix`.
fn fails_once(out: &RunOutput, id: &str, says: &str, fix: &str) {
    println!("{}", out.stdout);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.stderr, "",
        "the checks are the result: nothing on stderr"
    );
    let failed: Vec<_> = checks(out)
        .into_iter()
        .filter(|(line, _)| line.starts_with("FAIL"))
        .collect();
    assert_eq!(failed.len(), 1, "one cause, one FAIL:\n{}", out.stdout);
    let (line, found_fix) = &failed[0];
    assert!(
        line.starts_with(&format!("FAIL  {id:<20} ")),
        "{id}:\n{}",
        out.stdout
    );
    assert!(line.contains(says), "{says:?} in:\n{}", out.stdout);
    assert_eq!(found_fix.as_deref(), Some(fix), "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .last()
            .is_some_and(|last| last.starts_with("summary: ") && last.ends_with(" 1 FAIL")),
        "{}",
        out.stdout
    );
}

// ---- healthy ------------------------------------------------------------------------------------

#[test]
fn a_healthy_setup_is_ok_on_every_line_and_exits_0() {
    let setup = Setup::healthy();
    let out = setup.doctor(&[]);
    println!("{}", out.stdout);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.stderr, "");
    let checks = checks(&out);
    for (line, fix) in &checks {
        assert!(line.starts_with("ok    "), "{line}\n{}", out.stdout);
        assert_eq!(fix, &None);
    }
    let host = &setup.host;
    for (id, says) in [
        (
            "docker.config",
            format!(
                "{}/config.json (DOCKER_CONFIG) is valid JSON",
                setup.env.docker_config_dir().display()
            ),
        ),
        (
            "docker.cred_helpers",
            format!("{host} uses docker-credential-lightsail"),
        ),
        ("docker.auth_config", "DOCKER_AUTH_CONFIG is not set".into()),
        ("helper.path", String::new()),
        (
            "registry.identity",
            format!(
                "{host}: AWS identity AWS_ACCESS_KEY_ID AKIATESTKEY00000001, region us-east-1 (credHelpers entry)"
            ),
        ),
        (
            "registry.credentials",
            format!(
                "{host}: AWS credentials resolved from AWS_ACCESS_KEY_ID AKIATESTKEY00000001 (environment variables)"
            ),
        ),
        (
            "registry.endpoint",
            format!(
                "{host}: Lightsail at 127.0.0.1:{} answered, directly, trusting the system's roots",
                setup.env.fake.port()
            ),
        ),
        (
            "registry.login",
            format!(
                "{host}: CreateContainerServiceRegistryLogin works: registry {host}, valid 12 h "
            ),
        ),
        (
            "registry.entry",
            format!("{host}: config.json sends it to docker-credential-lightsail"),
        ),
        ("registry.cache", format!("{host}: ")),
        (
            "registry.v2",
            format!(
                "{host}: /v2/ answers 401 with its challenge (Basic realm=\"fake registry\"), through the proxy 127.0.0.1:"
            ),
        ),
        (
            "registry.v2_login",
            format!("{host}: /v2/ accepts the login the helper serves (user AWS)"),
        ),
        ("clock", "this machine's clock is ".into()),
        (
            "cache.folder",
            format!("{}: yours (uid ", setup.env.cache_dir().display()),
        ),
        ("cache.entries", String::new()),
        ("engine.found", "docker at ".into()),
        (
            "engine.platform",
            "the engine can pick linux/amd64 out of a multi-platform image".into(),
        ),
    ] {
        assert!(
            checks
                .iter()
                .any(|(line, _)| line.starts_with(&format!("ok    {id:<20} {says}"))),
            "{id} {says:?} in:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout
            .ends_with(&format!("summary: {} ok, 0 warn, 0 FAIL\n", checks.len()))
    );
}

#[test]
fn json_gives_the_same_checks_with_the_documented_keys() {
    let setup = Setup::healthy();
    setup.env.fake.set_clock_offset(600);
    let out = setup.doctor(&["--json"]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(out.stderr, "");
    let doc: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["version", "checks", "summary"]);
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    let checks = doc["checks"].as_array().unwrap();
    for check in checks {
        let keys: Vec<&String> = check.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "status", "subject", "message", "fix"]);
    }
    let clock = checks.iter().find(|check| check["id"] == "clock").unwrap();
    assert_eq!(clock["status"], "fail");
    assert_eq!(clock["fix"], "sudo timedatectl set-ntp true");
    let v2 = checks
        .iter()
        .find(|check| check["id"] == "registry.v2_login")
        .unwrap();
    assert_eq!(v2["status"], "ok");
    assert_eq!(v2["subject"], setup.host.as_str());
    assert_eq!(
        doc["summary"],
        json!({ "ok": checks.len() - 1, "warn": 0, "fail": 1, "network_cut_short": false })
    );
}

// ---- Docker's configuration ---------------------------------------------------------------------

#[test]
fn no_credhelpers_entry_fails_and_configure_fixes_it() {
    let setup = Setup::healthy();
    setup.docker_config(json!({ "auths": {} }));
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "docker.cred_helpers",
        "sends a Lightsail registry host to docker-credential-lightsail: Docker never asks the helper",
        "docker-credential-lightsail configure",
    );
    // With no entry, the region checked is the environment's, and the line says which setting.
    assert!(
        out.stdout
            .contains("AWS_ACCESS_KEY_ID AKIATESTKEY00000001, region us-east-1 (AWS_REGION)"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_invalid_config_json_fails_and_json_tool_shows_where() {
    let setup = Setup::healthy();
    let path = setup.env.docker_config_dir().join("config.json");
    fs::write(&path, "{\"credHelpers\": {").unwrap();
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "docker.config",
        &format!("{} is not valid JSON (EOF while parsing", path.display()),
        &format!("python3 -m json.tool {}", path.display()),
    );
}

#[test]
fn an_https_entry_is_never_used_and_configure_adds_the_bare_host() {
    let setup = Setup::healthy();
    let host = setup.host.clone();
    setup.docker_config(json!({ "credHelpers": { format!("https://{host}"): "lightsail" } }));
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "docker.cred_helpers",
        &format!(
            "the entry \"https://{host}\" is never used: Docker looks the helper up by the bare host, \"{host}\""
        ),
        "docker-credential-lightsail configure --region us-east-1",
    );
}

#[test]
fn docker_auth_config_overrides_the_helper_and_unsetting_it_fixes_that() {
    let mut setup = Setup::healthy();
    let secret = "ZG9ja2VyLWF1dGgtY29uZmlnLU1VU1QtTk9ULUxFQUs=";
    setup.env.set_env(
        "DOCKER_AUTH_CONFIG",
        format!(r#"{{"auths":{{"x":{{"auth":"{secret}"}}}}}}"#),
    );
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "docker.auth_config",
        "DOCKER_AUTH_CONFIG is set: Docker takes credentials from it before any credHelpers entry",
        "unset DOCKER_AUTH_CONFIG",
    );
    assert!(!out.stdout.contains(secret), "its value is never shown");
}

// ---- the helper Docker runs ---------------------------------------------------------------------

#[test]
fn the_helper_missing_from_path_fails_and_putting_its_folder_first_fixes_it() {
    let mut setup = Setup::healthy();
    setup.path.remove(0);
    setup.set_path();
    let out = setup.doctor(&[]);
    let folder = Path::new(BIN).parent().unwrap().display().to_string();
    fails_once(
        &out,
        "helper.path",
        "docker-credential-lightsail is not on PATH: Docker cannot run it",
        &format!("export PATH=\"{folder}:$PATH\""),
    );
}

#[test]
fn an_older_copy_first_on_path_fails_and_putting_this_one_first_fixes_it() {
    let mut setup = Setup::healthy();
    let old = setup.env.root().join("old");
    fs::create_dir(&old).unwrap();
    script(&old.join("docker-credential-lightsail"), OLD_HELPER);
    setup.path.insert(0, old.clone());
    setup.set_path();
    let out = setup.doctor(&[]);
    let folder = Path::new(BIN).parent().unwrap().display().to_string();
    fails_once(
        &out,
        "helper.path",
        &format!(
            "{}/docker-credential-lightsail comes first on PATH and is docker-credential-lightsail 0.0.9, not this binary (docker-credential-lightsail {}): Docker runs that one",
            old.display(),
            env!("CARGO_PKG_VERSION")
        ),
        &format!("export PATH=\"{folder}:$PATH\""),
    );
}

// ---- each registry ------------------------------------------------------------------------------

#[test]
fn no_aws_credentials_fail_and_aws_configure_fixes_it() {
    let mut setup = Setup::healthy();
    setup.env.remove_env("AWS_ACCESS_KEY_ID");
    setup.env.remove_env("AWS_SECRET_ACCESS_KEY");
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "registry.credentials",
        "no AWS credentials found (the default AWS profile)",
        "aws configure",
    );
    assert_eq!(setup.env.fake.login_calls(), 0);
}

#[test]
fn an_unknown_profile_fails_and_aws_configure_with_it_fixes_it() {
    let setup = Setup::healthy();
    let out = setup.doctor(&["--profile", "nosuch"]);
    fails_once(
        &out,
        "registry.credentials",
        "profile 'nosuch': profile 'nosuch' not found in ",
        "aws configure --profile nosuch",
    );
}

#[test]
fn a_proxy_that_needs_credentials_carries_the_registry_checks_and_its_password_never_shows() {
    let mut setup = Setup::healthy();
    let proxy = TestProxy::start();
    let front_port = {
        // The registry host's TLS front, reached through this proxy instead.
        let front = TlsFront::start(
            &setup.ca.server_pem(&[&setup.host, "localhost"]),
            setup.env.fake.port(),
        );
        let port = front.port();
        setup._front = front;
        port
    };
    proxy.route(&setup.host, SocketAddr::from(([127, 0, 0, 1], front_port)));
    proxy.require_credentials("doctor", "Proxy-Pass-MUST-NOT-LEAK-0002");
    setup.env.set_env(
        "HTTPS_PROXY",
        proxy.url_with_credentials("doctor", "Proxy-Pass-MUST-NOT-LEAK-0002"),
    );
    let out = setup.doctor(&[]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "/v2/ answers 401 with its challenge (Basic realm=\"fake registry\"), through the proxy {}\n",
            proxy.host_port()
        )),
        "{}",
        out.stdout
    );
    // The harness fails the run if the password (or its Basic token) shows anywhere.
    assert_eq!(proxy.log().len(), 2, "both /v2/ requests went through it");
}

#[test]
fn an_unreachable_proxy_fails_and_unsetting_it_fixes_it() {
    let mut setup = Setup::healthy();
    let closed = ClosedPort::new();
    let dead = closed.port();
    // An https:// endpoint, which HTTPS_PROXY carries: the name only the proxy could resolve.
    setup.env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        "https://lightsail.proxy-only.invalid",
    );
    setup
        .env
        .set_env("HTTPS_PROXY", format!("http://127.0.0.1:{dead}"));
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "registry.endpoint",
        &format!(
            "could not reach the Lightsail endpoint lightsail.proxy-only.invalid:443 through the proxy 127.0.0.1:{dead}: "
        ),
        "unset HTTPS_PROXY",
    );
}

#[test]
fn an_untrusted_certificate_fails_and_a_ca_bundle_fixes_it() {
    let mut setup = Setup::healthy();
    let front = TlsFront::start(&setup.ca.server_pem(&["localhost"]), setup.env.fake.port());
    setup.env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("https://localhost:{}", front.port()),
    );
    setup.env.remove_env("SSL_CERT_FILE");
    setup.env.set_env("NO_PROXY", "localhost");
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "registry.endpoint",
        &format!(
            "the TLS certificate of the Lightsail endpoint localhost:{} is not trusted (invalid peer certificate: UnknownIssuer)",
            front.port()
        ),
        "export AWS_CA_BUNDLE=/path/to/the-ca.pem",
    );
    assert_eq!(setup.env.fake.login_calls(), 0);
}

#[test]
fn a_stale_login_the_registry_refuses_fails_and_erase_fixes_it() {
    let setup = Setup::healthy();
    let host = &setup.host;
    setup.env.run(&["get"], host).credentials();
    // The cached login's password is no longer the registry's (say, it was revoked).
    let entry = fs::read_dir(setup.env.cache_dir())
        .unwrap()
        .map(|item| item.unwrap().path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("login-") && name.ends_with(".json")
        })
        .expect("the cached login");
    let mut doc: Value = serde_json::from_slice(&fs::read(&entry).unwrap()).unwrap();
    doc["login"]["secret"] = json!("no-longer-the-registry-password");
    fs::write(&entry, doc.to_string()).unwrap();
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "registry.v2_login",
        &format!(
            "{host}: /v2/ refuses the login the helper serves (401) and accepts the one Lightsail just gave: the helper serves a stale login"
        ),
        &format!("echo {host} | docker-credential-lightsail erase"),
    );
    // The fix, then all is well.
    assert!(setup.env.run(&["erase"], host).success());
    let fixed = setup.doctor(&[]);
    assert_eq!(fixed.code, Some(0), "{}", fixed.stdout);
}

#[test]
fn a_registry_that_refuses_even_a_fresh_login_fails_and_points_at_name_resolution() {
    let setup = Setup::healthy();
    setup.env.fake.refuse_registry_logins(true);
    let out = setup.doctor(&[]);
    let host = &setup.host;
    fails_once(
        &out,
        "registry.v2_login",
        &format!(
            "{host}: /v2/ refuses even the login Lightsail just gave (401): something other than this account's registry answers for {host}"
        ),
        &format!("nslookup {host}"),
    );
}

#[test]
fn a_server_clock_ten_minutes_off_fails_and_ntp_fixes_it() {
    let setup = Setup::healthy();
    setup.env.fake.set_clock_offset(600);
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "clock",
        " s behind Lightsail's: AWS refuses requests signed 15 minutes off",
        "sudo timedatectl set-ntp true",
    );
    // Whole seconds on both sides, and the time the run took: 600 give or take one.
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL  clock"))
        .unwrap();
    let seconds: u64 = line
        .split("clock is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((599..=601).contains(&seconds), "{line}");
}

#[test]
fn two_identities_with_one_registry_host_warn_which_serves_it_and_how_to_use_the_other() {
    let mut setup = Setup::healthy();
    // Another profile, other keys: the fake gives every key the same account's registry host,
    // as Lightsail may (whether it gives each account its own host is not documented).
    setup.env.write_aws_credentials(STAGING_KEYS);
    let out = setup.doctor(&["--profile", "staging"]);
    println!("{}", out.stdout);
    assert_eq!(
        out.code,
        Some(0),
        "a warning is no failure:\n{}",
        out.stdout
    );
    let host = &setup.host;
    let warned: Vec<_> = checks(&out)
        .into_iter()
        .filter(|(line, _)| line.starts_with("warn"))
        .collect();
    assert_eq!(warned.len(), 1, "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "ok    registry.credentials us-east-1: AWS credentials resolved from profile 'staging' (keys in the profile)\n"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(
        warned[0].0,
        format!(
            "warn  registry.shared_host {host}: AWS_ACCESS_KEY_ID AKIATESTKEY00000001 and profile 'staging' both log in to {host}: Docker asks the helper by host, so AWS_ACCESS_KEY_ID AKIATESTKEY00000001 serves it; use the other with a Docker config of its own"
        )
    );
    assert_eq!(
        warned[0].1.as_deref(),
        Some(
            "DOCKER_CONFIG=\"$HOME/.docker-staging\" docker-credential-lightsail configure --profile staging --region us-east-1"
        )
    );
}

// ---- the cache folder and the engine ------------------------------------------------------------

#[test]
fn a_cache_folder_others_can_write_fails_and_chmod_fixes_it() {
    let setup = Setup::healthy();
    let cache = setup.env.cache_dir();
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o777)).unwrap();
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "cache.folder",
        &format!(
            "{}: it is writable by group or others; the helper refuses it and caches nothing",
            cache.display()
        ),
        &format!("chmod 700 {}", cache.display()),
    );
}

#[test]
fn no_engine_fails_and_installing_docker_fixes_it() {
    let mut setup = Setup::healthy();
    setup.path.truncate(1);
    setup.set_path();
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "engine.found",
        "neither docker nor podman is on PATH: push needs one",
        "curl -fsSL https://get.docker.com | sh",
    );
}

#[test]
fn podman_alone_is_an_engine_for_push() {
    let setup = Setup::healthy();
    let engine = &setup.path[1];
    fs::rename(engine.join("docker"), engine.join("podman")).unwrap();
    let out = setup.doctor(&[]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(
        checks(&out).contains(&(
            format!(
                "ok    engine.found         podman at {} (docker is not on PATH: use push --engine podman)",
                engine.join("podman").display()
            ),
            None
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn an_engine_that_does_not_answer_fails_after_its_timeout_and_starting_it_fixes_it() {
    let setup = Setup::healthy();
    // The client waits on an engine that never answers (its own timeout is far longer).
    script(
        &setup.path[1].join("docker"),
        "#!/bin/sh\nexec /bin/sleep 30\n",
    );
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "engine.found",
        "docker is not running or cannot be reached (no answer within 5 s)",
        "sudo systemctl start docker",
    );
}

#[test]
fn an_engine_older_than_api_1_49_warns_that_push_cannot_pick_linux_amd64() {
    let setup = Setup::healthy();
    script(
        &setup.path[1].join("docker"),
        "#!/bin/sh\ncase \"$1\" in version) echo 1.41 ;; esac\n",
    );
    let out = setup.doctor(&[]);
    assert_eq!(
        out.code,
        Some(0),
        "a warning is no failure:\n{}",
        out.stdout
    );
    assert!(
        checks(&out).contains(&(
            "warn  engine.platform      engine API 1.41 is older than 1.49: push cannot pick linux/amd64 out of a multi-platform image; build with --platform linux/amd64".to_string(),
            Some("docker build --platform linux/amd64 .".to_string())
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn a_credsstore_without_an_entry_for_the_host_warns_that_it_answers_instead() {
    let setup = Setup::healthy();
    setup.docker_config(json!({ "credsStore": "desktop" }));
    let out = setup.doctor(&[]);
    fails_once(
        &out,
        "docker.cred_helpers",
        "Docker never asks the helper",
        "docker-credential-lightsail configure",
    );
    let host = &setup.host;
    assert!(
        checks(&out).contains(&(
            format!("warn  docker.creds_store   credsStore \"desktop\" answers for {host}, which has no credHelpers entry"),
            None
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn a_held_cache_lock_is_named() {
    let setup = Setup::healthy();
    assert!(setup.doctor(&[]).success(), "the first run caches a login");
    let lock = fs::read_dir(setup.env.cache_dir())
        .unwrap()
        .map(|item| item.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "lock"))
        .expect("a lock file beside the cached login");
    let held = fs::File::open(&lock).unwrap();
    held.lock().unwrap();
    let out = setup.doctor(&[]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(
        checks(&out).iter().any(|(line, _)| line
            == &format!(
                "warn  cache.entries        cached entries: 1, expired: 0; a lock is held (another docker-credential-lightsail is fetching a login): {}",
                lock.display()
            )),
        "{}",
        out.stdout
    );
}

// ---- a dead network -----------------------------------------------------------------------------

/// Ends a doctor run on a dead network that hangs: far past its 12 s budget, so that only a
/// hang (not a loaded machine) reaches it; the time taken is printed, not asserted.
const DEAD_NETWORK_BOUND: Duration = Duration::from_secs(120);

#[test]
fn on_a_dead_network_the_run_is_cut_short_and_says_so() {
    let setup = Setup::healthy();
    setup.env.fake.hang();
    let started = Instant::now();
    let out = setup
        .env
        .run_within(setup.env.cmd(&["doctor"]), "", DEAD_NETWORK_BOUND);
    println!("doctor on a dead endpoint took {:?}", started.elapsed());
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("did not answer within 5 s (DOCKER_CREDENTIAL_LIGHTSAIL_TIMEOUT)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.lines().last().unwrap().ends_with(
            "; the network did not answer in time: network checks were cut short (at most 12 s in all)"
        ),
        "{}",
        out.stdout
    );
}

// ---- the README ---------------------------------------------------------------------------------

#[test]
fn the_readme_sends_no_basic_auth_credentials_to_doctor_and_names_every_check_and_key() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let bullet = readme
        .split("\n- ")
        .find(|item| item.contains("`no basic auth credentials`"))
        .expect("a Troubleshooting entry for `no basic auth credentials`");
    let advice = words(bullet.split_once("**: ").expect("**cause**: advice").1);
    assert!(
        advice.starts_with("run `docker-credential-lightsail doctor`"),
        "{advice}"
    );
    // Every check a run shows, and every key of the JSON document, is documented.
    let setup = Setup::healthy();
    let out = setup.doctor(&["--json"]);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let ids = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["id"].as_str().unwrap().to_string());
    for id in ids {
        assert!(readme.contains(&format!("`{id}`")), "README names `{id}`");
    }
    let keys = [
        "version",
        "checks",
        "id",
        "status",
        "subject",
        "message",
        "fix",
        "summary",
        "ok",
        "warn",
        "fail",
        "network_cut_short",
    ];
    for key in keys {
        assert!(
            readme.contains(&format!("\"{key}\":")),
            "README's JSON example has \"{key}\""
        );
    }
}

#[test]
fn on_a_dead_network_the_budget_ends_the_run_and_later_registries_are_skipped() {
    let setup = Setup::healthy();
    let regions = ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1"];
    let helpers: serde_json::Map<String, Value> = regions
        .iter()
        .map(|region| (setup.env.registry_host(region), json!("lightsail")))
        .collect();
    setup.docker_config(json!({ "credHelpers": helpers }));
    setup.env.fake.hang();
    let started = Instant::now();
    let out = setup
        .env
        .run_within(setup.env.cmd(&["doctor"]), "", DEAD_NETWORK_BOUND);
    println!(
        "{}\ndoctor with four dead registries took {:?}",
        out.stdout,
        started.elapsed()
    );
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let timed_out = out
        .stdout
        .lines()
        .filter(|line| {
            line.starts_with("FAIL  registry.endpoint ") && line.contains("did not answer within")
        })
        .count();
    // 5 s, 5 s, then the whole second left if the machine was quick enough to leave one; a
    // loaded machine may leave less, so the count is not the event: the last one skipped is.
    println!("figure: {timed_out} registries timed out before the budget ran out");
    assert!((1..=3).contains(&timed_out), "{}", out.stdout);
    let last = setup.env.registry_host(regions[3]);
    assert!(
        out.stdout.contains(&format!(
            "warn  registry.skipped     {last}: not checked: the network checks' time was spent\n"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .last()
            .unwrap()
            .contains("network checks were cut short")
    );
}

#[test]
fn a_profile_region_that_is_not_a_region_fails_the_region_check() {
    let mut setup = Setup::healthy();
    setup.env.remove_env("AWS_REGION");
    setup
        .env
        .write_aws_config("[profile staging]\nregion = moon base\n");
    setup.env.write_aws_credentials(STAGING_KEYS);
    let out = setup.doctor(&["--profile", "staging"]);
    fails_once(
        &out,
        "registry.region",
        "\"moon base\" (region of AWS profile 'staging' in ",
        "aws configure set region us-east-1 --profile staging",
    );
}

#[test]
fn an_aws_region_variable_that_is_not_a_region_fails_the_region_check() {
    let mut setup = Setup::healthy();
    // The variable wins over the profile's region, so it is the variable that must go.
    setup.env.set_env("AWS_REGION", "moon base");
    setup
        .env
        .write_aws_config("[profile staging]\nregion = us-east-1\n");
    setup.env.write_aws_credentials(STAGING_KEYS);
    let out = setup.doctor(&["--profile", "staging"]);
    fails_once(
        &out,
        "registry.region",
        "\"moon base\" (AWS_REGION) is not an AWS region name",
        "unset AWS_REGION",
    );
}
