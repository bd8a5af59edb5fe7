//! `configure` and `register` against the fake endpoint (tests/e2e/real-clients.sh drives them
//! with real clients too).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use crate::support::fake_lightsail::{LOGIN, REGISTER};
use crate::support::{BIN, RunOutput, TestEnv, snapshot};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn configure_takes_the_region_of_the_environment_or_says_there_is_none() {
    let mut env = TestEnv::new();
    let none = env.run(&["configure"], "");
    assert_fails_with(
        &none,
        "error: no AWS region: pass --region, or set AWS_REGION or a region in your AWS profile\n",
    );
    assert_eq!(env.fake.calls(LOGIN), 0);

    env.set_env("AWS_REGION", "eu-west-2");
    let out = env.run(&["configure"], "");
    assert!(out.success(), "{out:?}");
    let host = env.registry_host("eu-west-2");
    let config = fs::read_to_string(env.docker_config_dir().join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["credHelpers"][&host], "lightsail");
    assert!(
        out.stdout.contains(
            "docker-credential-lightsail push --region eu-west-2 --service SERVICE --label LABEL IMAGE"
        ),
        "{}",
        out.stdout
    );

    // The login it fetched is cached: the first push needs no API call.
    env.run(&["get"], &host).credentials();
    assert_eq!(env.fake.calls(LOGIN), 1);

    let again = env.run(&["configure", "--region", "eu-west-2"], "");
    assert!(
        again.stdout.contains("nothing to change"),
        "{}",
        again.stdout
    );
}

#[test]
fn configure_dry_run_writes_nothing_and_bad_json_is_left_alone() {
    let env = TestEnv::new();
    let path = env.docker_config_dir().join("config.json");
    let dry = env.run(&["configure", "--region", "us-east-1", "--dry-run"], "");
    assert!(dry.success());
    assert!(dry.stdout.starts_with("Would add to "), "{}", dry.stdout);
    assert!(!path.exists());

    fs::write(&path, "{\"auths\": {").unwrap();
    let bad = env.run(&["configure", "--region", "us-east-1"], "");
    assert_fails_with(&bad, "error: ");
    assert!(bad.stderr.contains("is not valid JSON"), "{}", bad.stderr);
    assert_eq!(fs::read_to_string(&path).unwrap(), "{\"auths\": {");
}

/// An environment whose credentials file has profiles `ci` and `admin`: two identities in the
/// fake's default account, the one the environment's keys belong to.
fn with_profiles() -> TestEnv {
    let mut env = TestEnv::new();
    env.write_aws_credentials(
        "[ci]\naws_access_key_id = AKIACI0000000000001\naws_secret_access_key = CiSecret/0001\n\
         [admin]\naws_access_key_id = AKIAADMIN0000000001\naws_secret_access_key = AdminSecret/0001\n",
    );
    env
}

#[test]
fn configure_profile_binds_then_rebinds_and_dry_run_writes_nothing() {
    let env = with_profiles();
    let host = env.registry_host("us-east-1");
    let file = env.helper_config_path();
    let shown = file.display();
    let configure = |more: &[&str]| {
        let args = [&["configure", "--region", "us-east-1"], more].concat();
        let out = env.run(&args, "");
        assert!(out.success(), "{out:?}");
        out.stdout
    };

    let dry = configure(&["--profile", "ci", "--dry-run"]);
    assert!(
        dry.contains(&format!(
            "Would bind {host} to AWS profile 'ci' in {shown}.\nDry run: nothing written.\n"
        )),
        "{dry}"
    );
    assert!(!file.exists() && !env.docker_config_dir().join("config.json").exists());

    let first = configure(&["--profile", "ci"]);
    assert!(first.starts_with("Added to "), "{first}");
    assert!(
        first.contains(&format!("\nBound {host} to AWS profile 'ci' in {shown}.\n")),
        "{first}"
    );
    let same = configure(&["--profile", "ci"]);
    assert!(
        same.contains(&format!(
            "nothing to change.\n{host} already uses AWS profile 'ci' ({shown}).\n"
        )),
        "{same}"
    );

    let written = fs::read(&file).unwrap();
    let dry = configure(&["--profile", "admin", "--dry-run"]);
    assert!(
        dry.contains(&format!("Would rebind {host} from AWS profile 'ci' to 'admin' in {shown}.\nDry run: nothing written.\n")),
        "{dry}"
    );
    assert_eq!(fs::read(&file).unwrap(), written);
    let rebound = configure(&["--profile", "admin"]);
    assert!(
        rebound.contains(&format!("already uses docker-credential-lightsail for {host}.\nRebound {host} from AWS profile 'ci' to 'admin' in {shown}.\n")),
        "{rebound}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["registries"][&host]["profile"], "admin");

    // Without --profile (the environment's keys, same account), the binding stays, and says so.
    let plain = configure(&[]);
    assert!(
        plain.contains(&format!(
            "{host} stays bound to AWS profile 'admin' ({shown}): `get` uses that profile for it.\n"
        )),
        "{plain}"
    );
    assert_eq!(
        doc,
        serde_json::from_slice::<serde_json::Value>(&fs::read(&file).unwrap()).unwrap()
    );
}

#[test]
fn configure_with_a_missing_profile_says_where_it_looked_and_writes_nothing() {
    let env = with_profiles();
    let before = snapshot(env.root());
    let out = env.run(
        &["configure", "--profile", "staging", "--region", "us-east-1"],
        "",
    );
    assert_fails_with(
        &out,
        &format!(
            "error: profile 'staging' not found in {} or {}\n",
            env.aws_config_path().display(),
            env.aws_credentials_path().display()
        ),
    );
    assert_eq!(snapshot(env.root()), before);
    assert_eq!(env.fake.calls(LOGIN), 0);

    // A name that cannot be a profile is a usage error.
    let bad = env.run(
        &["configure", "--profile", "a b", "--region", "us-east-1"],
        "",
    );
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(
        bad.stderr.contains("is not an AWS profile name"),
        "{}",
        bad.stderr
    );
}

#[test]
fn concurrent_configure_runs_all_land() {
    let env = with_profiles();
    let runs = [
        ("ci", "us-east-1"),
        ("admin", "eu-west-2"),
        ("ci", "ap-south-1"),
        ("admin", "ca-central-1"),
    ];
    // Every run is held at the same point, its login call, then all are let go at once.
    env.fake.hold_calls();
    let spawned: Vec<_> = runs
        .iter()
        .map(|(profile, region)| {
            env.spawn(&["configure", "--profile", profile, "--region", region], "")
        })
        .collect();
    assert!(
        env.fake
            .wait_for_calls(LOGIN, runs.len(), Duration::from_secs(60)),
        "the runs did not all reach the login call"
    );
    env.fake.release();
    for run in spawned {
        let out = env.wait(run);
        assert!(out.success(), "{out:?}");
    }
    let docker: serde_json::Value =
        serde_json::from_slice(&fs::read(env.docker_config_dir().join("config.json")).unwrap())
            .unwrap();
    let bindings: serde_json::Value =
        serde_json::from_slice(&fs::read(env.helper_config_path()).unwrap()).unwrap();
    for (profile, region) in runs {
        let host = env.registry_host(region);
        assert_eq!(docker["credHelpers"][&host], "lightsail", "{docker}");
        assert_eq!(
            bindings["registries"][&host]["profile"], profile,
            "{bindings}"
        );
    }
}

#[test]
fn configure_dry_run_creates_no_cache_folder_or_entry() {
    let mut env = TestEnv::new();
    let cache = env.root().join("new-cache");
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR", &cache);
    let before = snapshot(env.root());
    let dry = env.run(&["configure", "--region", "us-east-1", "--dry-run"], "");
    assert!(dry.success(), "{dry:?}");
    assert!(
        dry.stdout.contains("Dry run: nothing written."),
        "{}",
        dry.stdout
    );
    assert!(!cache.exists(), "the dry run made the cache folder");
    assert_eq!(snapshot(env.root()), before);
    assert_eq!(env.fake.calls(LOGIN), 1);

    // With a cache holding a fresh login, the dry run reads it and writes nothing there.
    env.run(&["get"], env.registry_host("us-east-1"))
        .credentials();
    let before = snapshot(env.root());
    let dry = env.run(&["configure", "--region", "us-east-1", "--dry-run"], "");
    assert!(dry.success(), "{dry:?}");
    assert_eq!(snapshot(env.root()), before);
    assert_eq!(env.fake.calls(LOGIN), 2);
}

#[test]
fn configure_says_which_helper_it_replaced() {
    let env = TestEnv::new();
    let host = env.registry_host("us-east-1");
    let path = env.docker_config_dir().join("config.json");
    let original = format!(
        "{{\"credHelpers\": {{\"{host}\": \"ecr-login\", \"public.ecr.aws\": \"ecr-login\"}}}}"
    );
    fs::write(&path, &original).unwrap();
    let configure = |more: &[&str]| {
        let out = env.run(
            &[&["configure", "--region", "us-east-1"], more].concat(),
            "",
        );
        assert!(out.success(), "{out:?}");
        out.stdout
    };
    let dry = configure(&["--dry-run"]);
    assert!(
        dry.contains(&format!(
            "\nNote: would replace ecr-login with lightsail for {host}.\n"
        )),
        "{dry}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
    let out = configure(&[]);
    assert!(
        out.contains(&format!(
            "\nNote: replaced ecr-login with lightsail for {host}.\n"
        )),
        "{out}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["credHelpers"][&host], "lightsail");
    assert_eq!(doc["credHelpers"]["public.ecr.aws"], "ecr-login");
    assert!(!configure(&[]).contains("replace"));
}

/// The uid (and gid) of "another user".
const NOBODY: u32 = 65534;

/// Whether uid `NOBODY` can reach the binary (target/ may sit in a private tree).
fn binary_reachable_by_nobody() -> bool {
    let reachable = Path::new(BIN)
        .ancestors()
        .skip(1)
        .filter_map(|dir| fs::metadata(dir).ok())
        .all(|meta| meta.mode() & 0o001 != 0);
    if !reachable {
        eprintln!("skipped: {BIN} is not reachable by uid {NOBODY}");
    }
    reachable
}

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn root_rewriting_another_users_docker_config_keeps_its_owner_as_root() {
    let env = TestEnv::new();
    let dir = env.docker_config_dir();
    let path = dir.join("config.json");
    chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    fs::write(&path, "{\"auths\": {}}").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    // As `sudo` with HOME kept: root, with the user's folders.
    let out = env.run(&["configure", "--region", "us-east-1"], "");
    assert!(out.success(), "{out:?}");
    let meta = fs::metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (NOBODY, NOBODY));
    assert_eq!(meta.mode() & 0o777, 0o640);
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .contains(&env.registry_host("us-east-1"))
    );

    // A new file, and a new folder, in the user's home are the user's too.
    let home = env.root().join("user-home");
    fs::create_dir(&home).unwrap();
    chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
    let mut cmd = env.cmd(&["configure", "--region", "us-east-1"]);
    cmd.env("DOCKER_CONFIG", home.join(".docker"));
    let out = env.run_cmd(cmd, "");
    assert!(out.success(), "{out:?}");
    for made in [home.join(".docker"), home.join(".docker/config.json")] {
        let meta = fs::metadata(&made).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (NOBODY, NOBODY), "{made:?}");
    }
}

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn configure_succeeds_when_the_folder_cannot_be_flushed_after_the_rename_as_root() {
    if !binary_reachable_by_nobody() {
        return;
    }
    let mut env = with_profiles();
    // The files of an ordinary user (nobody), in folders it may write and enter but not list:
    // a rename there works, opening the folder to flush it does not.
    fs::set_permissions(env.root(), fs::Permissions::from_mode(0o755)).unwrap();
    let config_dir = env.root().join("helper-config");
    fs::create_dir(&config_dir).unwrap();
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_CONFIG_DIR", &config_dir);
    let docker = env.docker_config_dir();
    fs::write(docker.join("config.json"), "{}").unwrap();
    fs::set_permissions(
        docker.join("config.json"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    for path in [
        env.home(),
        env.cache_dir(),
        docker.join("config.json"),
        docker.clone(),
        config_dir.clone(),
    ] {
        chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    // The AWS files stay root's, readable by all.
    for dir in [&docker, &config_dir] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o300)).unwrap();
    }
    let mut cmd = env.cmd(&["configure", "--region", "us-east-1"]);
    cmd.uid(NOBODY).gid(NOBODY);
    let out = env.run_cmd(cmd, "");
    assert!(out.success(), "{out:?}");
    let host = env.registry_host("us-east-1");
    assert!(
        fs::read_to_string(docker.join("config.json"))
            .unwrap()
            .contains(&host)
    );

    // The bindings file too (its folder cannot be listed either).
    let mut cmd = env.cmd(&["configure", "--profile", "ci", "--region", "eu-west-2"]);
    cmd.uid(NOBODY).gid(NOBODY);
    let out = env.run_cmd(cmd, "");
    assert!(out.success(), "{out:?}");
    let host = env.registry_host("eu-west-2");
    assert!(
        fs::read_to_string(docker.join("config.json"))
            .unwrap()
            .contains(&host)
    );
    let bindings = fs::read_to_string(config_dir.join("config.json")).unwrap();
    assert!(bindings.contains(&host), "{bindings}");
}

/// `register` with the given service, label and digest, plus more arguments.
fn register(env: &TestEnv, service: &str, label: &str, digest: &str, more: &[&str]) -> RunOutput {
    let label = format!("--label={label}"); // `=`: a label may start with '-' (and is refused)
    let args = [
        &["register", "--service", service, &label, "--digest", digest],
        more,
    ]
    .concat();
    env.run(&args, "")
}

#[test]
fn register_checks_its_arguments_before_any_api_call() {
    let env = TestEnv::new();
    let cases = [
        (
            "hello",
            "-web",
            DIGEST,
            "error: label \"-web\" must be 1 to 53",
        ),
        ("Hello", "web", DIGEST, "error: service name \"Hello\""),
        ("hello", "web", "sha256:abc", "error: digest \"sha256:abc\""),
    ];
    for (service, label, digest, expected) in cases {
        assert_fails_with(&register(&env, service, label, digest, &[]), expected);
    }
    // A region is checked by the command line itself (clap's usage error, exit 2).
    let mars = register(&env, "hello", "web", DIGEST, &["--region", "Mars"]);
    assert_eq!(mars.code, Some(2), "{mars:?}");
    assert!(mars.stdout.is_empty());
    assert!(
        mars.stderr
            .contains("\"Mars\" is not an AWS region name (like us-east-1)"),
        "{}",
        mars.stderr
    );
    assert_eq!(env.fake.calls(REGISTER), 0);
}

#[test]
fn register_prints_the_image_name_or_the_whole_object() {
    let env = TestEnv::new();
    let east = ["--region", "us-east-1"];
    assert_eq!(
        register(&env, "hello", "web", DIGEST, &east).stdout,
        ":hello.web.1\n"
    );
    let json = register(
        &env,
        "hello",
        "web",
        DIGEST,
        &[&east[..], &["--json"]].concat(),
    );
    let image: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(image["image"], ":hello.web.2");
    assert_eq!(image["digest"], DIGEST);
    assert!(image["createdAt"].is_i64());

    let missing = register(&env, "nope", "web", DIGEST, &east);
    assert_fails_with(
        &missing,
        "error: Lightsail in us-east-1 refused the request (NotFoundException): no container service named 'nope' in us-east-1: check the name, or pass --region\n",
    );
}

/// A human command's failure: nothing on stdout, one `error:` line on stderr that starts with
/// `expected`, exit code 1.
fn assert_fails_with(out: &RunOutput, expected: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.starts_with(expected), "{expected}: {out:?}");
}
