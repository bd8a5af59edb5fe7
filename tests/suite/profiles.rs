//! One registry per AWS account: registry hosts bound to AWS profiles in the helper's own
//! configuration file, and credential failures that name their real cause (a missing profile,
//! no credentials anywhere, something on the instance-metadata address, an expired SSO session).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::fake_lightsail::LOGIN;
use crate::support::{ACCESS_KEY_ID, RunOutput, TestEnv, snapshot};

const REGION: &str = "us-east-1";
const STAGING_ACCOUNT: &str = "111111111111";
const PROD_ACCOUNT: &str = "222222222222";
const STAGING_KEY: &str = "AKIASTAGING00000001";
const PROD_KEY: &str = "AKIAPROD00000000001";

/// Two AWS accounts on one fake, each with a profile in the credentials file; the environment's
/// own keys (the harness's) belong to a third account, the fake's default.
fn two_accounts() -> TestEnv {
    let mut env = TestEnv::new();
    env.fake.set_account_for_key(STAGING_KEY, STAGING_ACCOUNT);
    env.fake.set_account_for_key(PROD_KEY, PROD_ACCOUNT);
    env.write_aws_credentials(&format!(
        "[staging]\naws_access_key_id = {STAGING_KEY}\naws_secret_access_key = StagingSecret/0001\n\
         [prod]\naws_access_key_id = {PROD_KEY}\naws_secret_access_key = ProdSecret/0001\n"
    ));
    env
}

fn host(env: &TestEnv, key: &str) -> String {
    env.fake.registry_host_for_key(key, REGION)
}

/// `get` for `host` with extra environment variables (`None` removes one).
fn get_with_env(env: &TestEnv, host: &str, vars: &[(&str, Option<&str>)]) -> RunOutput {
    let mut cmd = env.cmd(&["get"]);
    for (key, value) in vars {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    env.run_cmd(cmd, host)
}

/// The access key ids that signed the login calls so far.
fn signers(env: &TestEnv) -> Vec<String> {
    env.fake
        .requests()
        .into_iter()
        .filter(|r| r.operation == LOGIN)
        .map(|r| r.access_key_id.unwrap_or_default())
        .collect()
}

/// A protocol action's failure: exit 1, exactly `expected` on stdout, nothing on stderr.
fn assert_get_fails(out: &RunOutput, expected: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, format!("{expected}\n"), "{out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
}

#[test]
fn each_registry_uses_its_bound_profile_whatever_aws_profile_or_keys_say() {
    let env = two_accounts();
    let (staging, prod) = (host(&env, STAGING_KEY), host(&env, PROD_KEY));
    assert_ne!(staging, prod);

    // Control: unbound, the environment's keys (a third account) answer for neither host: each
    // host not the cached login's registry is asked about once (an account switch would make
    // it ours), then remembered as not ours.
    for host in [&staging, &prod, &staging, &prod] {
        assert_get_fails(
            &env.run(&["get"], host),
            "credentials not found in native keychain",
        );
    }
    assert_eq!(signers(&env), [ACCESS_KEY_ID, ACCESS_KEY_ID]);

    for (profile, host) in [("staging", &staging), ("prod", &prod)] {
        let out = env.run(&["configure", "--profile", profile, "--region", REGION], "");
        assert!(out.success(), "{out:?}");
        assert!(
            out.stdout.contains(&format!(
                "Bound {host} to AWS profile '{profile}' in {}.\n",
                env.helper_config_path().display()
            )),
            "{}",
            out.stdout
        );
    }
    let file: Value = serde_json::from_slice(&fs::read(env.helper_config_path()).unwrap()).unwrap();
    assert_eq!(
        file,
        serde_json::json!({"registries": {
            staging.clone(): {"profile": "staging"},
            prod.clone(): {"profile": "prod"},
        }})
    );
    let docker: Value =
        serde_json::from_slice(&fs::read(env.docker_config_dir().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(docker["credHelpers"][&staging], "lightsail");
    assert_eq!(docker["credHelpers"][&prod], "lightsail");
    // configure logged in with each profile, and only with it.
    assert_eq!(
        signers(&env)[2..],
        [STAGING_KEY.to_string(), PROD_KEY.to_string()]
    );

    // Whatever the shell says, each host gets its own account's login (a login for another
    // account names another registry, which `get` would refuse as not ours)...
    let shells: [&[(&str, Option<&str>)]; 4] = [
        &[],
        &[("AWS_PROFILE", Some("prod"))],
        &[
            ("AWS_PROFILE", Some("staging")),
            ("AWS_ACCESS_KEY_ID", None),
        ],
        &[
            ("AWS_ACCESS_KEY_ID", Some("AKIAOTHER0000000001")),
            ("AWS_PROFILE", Some("nonexistent")),
        ],
    ];
    for shell in shells {
        for host in [&staging, &prod] {
            let creds = get_with_env(&env, host, shell).credentials();
            assert_eq!(&creds.server_url, host);
        }
    }
    // ...from the cache that configure filled: no call, and none signed by the shell's keys.
    assert_eq!(env.fake.calls(LOGIN), 4);

    // With an empty cache, each host's login is fetched with its profile's keys.
    fs::remove_dir_all(env.cache_dir()).unwrap();
    get_with_env(&env, &staging, &[("AWS_PROFILE", Some("prod"))]).credentials();
    get_with_env(&env, &prod, &[("AWS_PROFILE", Some("staging"))]).credentials();
    assert_eq!(
        signers(&env)[4..],
        [STAGING_KEY.to_string(), PROD_KEY.to_string()]
    );
}

#[test]
fn a_binding_to_a_profile_that_is_gone_names_the_profile_and_the_file() {
    let mut env = two_accounts();
    let staging = host(&env, STAGING_KEY);
    let out = env.run(
        &["configure", "--profile", "staging", "--region", REGION],
        "",
    );
    assert!(out.success(), "{out:?}");
    env.write_aws_credentials(&format!(
        "[prod]\naws_access_key_id = {PROD_KEY}\naws_secret_access_key = ProdSecret/0001\n"
    ));
    fs::remove_dir_all(env.cache_dir()).unwrap();
    let calls = env.fake.calls(LOGIN);
    assert_get_fails(
        &env.run(&["get"], &staging),
        &format!(
            "profile 'staging' not found in {} or {}; {} binds this registry to it: add the profile, or rebind with `docker-credential-lightsail configure --profile NAME --region {REGION}`",
            env.aws_config_path().display(),
            env.aws_credentials_path().display(),
            env.helper_config_path().display()
        ),
    );
    assert_eq!(env.fake.calls(LOGIN), calls);
}

#[test]
fn the_configuration_file_gets_the_caches_defences() {
    let env = two_accounts();
    let staging = host(&env, STAGING_KEY);
    let out = env.run(
        &["configure", "--profile", "staging", "--region", REGION],
        "",
    );
    assert!(out.success(), "{out:?}");
    let path = env.helper_config_path();
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
        0o700
    );
    let good = fs::read(&path).unwrap();
    let refused = |reason: &str| format!("cannot use {}: {reason}", path.display());

    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    assert_get_fails(
        &env.run(&["get"], &staging),
        &refused(&format!(
            "it is writable by group or others: fix it with `chmod 600 {}`",
            path.display()
        )),
    );
    // A host that is not a registry host never reads the file.
    assert_get_fails(
        &env.run(&["get"], "docker.io"),
        "credentials not found in native keychain",
    );

    let elsewhere = env.root().join("elsewhere.json");
    fs::write(&elsewhere, &good).unwrap();
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    assert_get_fails(
        &env.run(&["get"], &staging),
        &refused("it is a symbolic link"),
    );
    // configure does not write through it either.
    let before = snapshot(env.root());
    let out = env.run(
        &["configure", "--profile", "staging", "--region", REGION],
        "",
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        format!("error: {}\n", refused("it is a symbolic link"))
    );
    assert_eq!(snapshot(env.root()), before);

    fs::remove_file(&path).unwrap();
    fs::write(&path, "{\"registries\": {").unwrap();
    assert_get_fails(
        &env.run(&["get"], &staging),
        &format!(
            "cannot use {}: it is not valid JSON (line 1, column 16); fix it or remove it",
            path.display()
        ),
    );

    // Control: the same bytes in a private regular file serve the bound login.
    fs::write(&path, &good).unwrap();
    env.run(&["get"], &staging).credentials();
}

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn a_configuration_file_owned_by_another_user_is_refused_as_root() {
    let env = two_accounts();
    let staging = host(&env, STAGING_KEY);
    let out = env.run(
        &["configure", "--profile", "staging", "--region", REGION],
        "",
    );
    assert!(out.success(), "{out:?}");
    let path = env.helper_config_path();
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    assert_get_fails(
        &env.run(&["get"], &staging),
        &format!("cannot use {}: it is owned by another user", path.display()),
    );
    std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
    env.run(&["get"], &staging).credentials();
}

#[test]
fn the_config_dir_variable_moves_the_file() {
    let env = two_accounts();
    let staging = host(&env, STAGING_KEY);
    let dir = env.root().join("helper-config");
    let mut configure = env.cmd(&["configure", "--profile", "staging", "--region", REGION]);
    configure.env("DOCKER_CREDENTIAL_LIGHTSAIL_CONFIG_DIR", &dir);
    assert!(env.run_cmd(configure, "").success());
    assert!(dir.join("config.json").is_file());
    assert!(!env.helper_config_path().exists());
    fs::remove_dir_all(env.cache_dir()).unwrap();

    // Control: without the variable, the binding is not found, so the shell's keys answer.
    assert_get_fails(
        &env.run(&["get"], &staging),
        "credentials not found in native keychain",
    );
    let mut get = env.cmd(&["get"]);
    get.env("DOCKER_CREDENTIAL_LIGHTSAIL_CONFIG_DIR", &dir);
    env.run_cmd(get, &staging).credentials();
}

// ---- credential failures name their real cause ---------------------------------------------

/// An environment with no AWS keys in it.
fn without_keys() -> TestEnv {
    let mut env = TestEnv::new();
    env.remove_env("AWS_ACCESS_KEY_ID");
    env.remove_env("AWS_SECRET_ACCESS_KEY");
    env
}

#[test]
fn a_missing_profile_is_named_with_both_aws_files() {
    let mut env = without_keys();
    env.write_aws_config("[profile other]\nregion = us-east-1\n");
    env.set_env("AWS_PROFILE", "nope");
    let host = env.registry_host(REGION);
    assert_get_fails(
        &env.run(&["get"], &host),
        &format!(
            "profile 'nope' not found in {} or {}",
            env.aws_config_path().display(),
            env.aws_credentials_path().display()
        ),
    );
    // Even with no AWS files at all.
    fs::remove_file(env.aws_config_path()).unwrap();
    let out = env.run(&["get"], &host);
    assert!(
        out.stdout.starts_with("profile 'nope' not found in "),
        "{out:?}"
    );
    assert_eq!(env.fake.calls(LOGIN), 0);

    // Control: keys in the environment come first in the standard chain, as for the AWS CLI.
    let keyed = get_with_env(
        &env,
        &host,
        &[
            ("AWS_ACCESS_KEY_ID", Some(ACCESS_KEY_ID)),
            ("AWS_SECRET_ACCESS_KEY", Some("EnvSecret/0001")),
        ],
    );
    keyed.credentials();

    let out = env.run(&["configure", "--profile", "nope", "--region", REGION], "");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .starts_with("error: profile 'nope' not found in "),
        "{out:?}"
    );
}

#[test]
fn a_profile_without_credentials_does_not_say_set_aws_profile() {
    let mut env = without_keys();
    env.write_aws_config("[profile regional]\nregion = us-east-1\n");
    env.set_env("AWS_PROFILE", "regional");
    let out = env.run(&["get"], env.registry_host(REGION));
    assert_get_fails(
        &out,
        "no AWS credentials found (profile 'regional'): profile 'regional' has no keys, SSO, role or credential_process settings: run `aws configure --profile regional` or `aws configure sso --profile regional`",
    );
}

#[test]
fn something_on_the_metadata_address_that_is_not_a_credential_service_means_no_credentials() {
    let mut env = without_keys();
    let host = env.registry_host(REGION);
    let plain = "no AWS credentials found (the default AWS profile): set AWS_PROFILE, run `aws configure` or `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
    // Control: with the metadata service switched off, the plain message.
    assert_get_fails(&env.run(&["get"], &host), plain);

    // An HTTP server that is not IMDS (the fake Lightsail) on the metadata address.
    env.remove_env("AWS_EC2_METADATA_DISABLED");
    env.set_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", env.fake.url());
    assert_get_fails(
        &env.run(&["get"], &host),
        &format!(
            "{plain} (the instance metadata service gave none; DOCKER_CREDENTIAL_LIGHTSAIL_LOG=debug shows its answer)"
        ),
    );
    // Its own words go to the debug log only.
    let mut cmd = env.cmd(&["get"]);
    cmd.env("DOCKER_CREDENTIAL_LIGHTSAIL_LOG", "debug");
    let debug = env.run_cmd(cmd, &host);
    assert!(debug.stdout.starts_with(plain), "{debug:?}");
    assert!(!debug.stdout.contains("IMDS"), "{debug:?}");
    assert!(
        debug.stderr.contains("failed to load IMDS session token"),
        "{}",
        debug.stderr
    );
    assert_eq!(env.fake.calls(LOGIN), 0);
}

const SSO_CONFIG: &str = "\
[profile sso-dev]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = Deploy
[sso-session corp]
sso_start_url = https://corp.awsapps.example/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access
[profile sso-legacy]
sso_start_url = https://legacy.awsapps.example/start
sso_region = us-east-1
sso_account_id = 111111111111
sso_role_name = Deploy
";

/// `~/.aws/sso/cache/<sha1 of key>.json`, where the AWS CLI keeps SSO tokens.
fn sso_cache_file(env: &TestEnv, sha1_of_key: &str) -> PathBuf {
    env.home()
        .join(".aws/sso/cache")
        .join(format!("{sha1_of_key}.json"))
}

fn expired_sso_token(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(
        path,
        r#"{"accessToken":"SSO-TOKEN-MUST-NOT-LEAK","expiresAt":"2020-01-01T00:00:00Z","region":"us-east-1","startUrl":"https://corp.awsapps.example/start"}"#,
    )
    .unwrap();
}

#[test]
fn an_expired_or_missing_sso_session_says_to_run_aws_sso_login() {
    let mut env = without_keys();
    env.write_aws_config(SSO_CONFIG);
    let host = env.registry_host(REGION);
    let as_profile = |profile: &str| get_with_env(&env, &host, &[("AWS_PROFILE", Some(profile))]);
    let expected = |profile: &str| {
        format!(
            "the AWS SSO session of profile '{profile}' has expired or was never started: run `aws sso login --profile {profile}`"
        )
    };
    // An sso-session profile, never logged in, then with an expired token (sha1("corp")).
    assert_get_fails(&as_profile("sso-dev"), &expected("sso-dev"));
    let corp = sso_cache_file(&env, &sha1_hex(b"corp"));
    expired_sso_token(&corp);
    let out = get_with_env(
        &env,
        &host,
        &[
            ("AWS_PROFILE", Some("sso-dev")),
            ("DOCKER_CREDENTIAL_LIGHTSAIL_LOG", Some("debug")),
        ],
    );
    assert!(out.stdout.starts_with(&expected("sso-dev")), "{out:?}");
    // aws-config found the token, and found it expired (its words, in the debug log).
    assert!(
        out.stderr
            .contains("the SSO token has expired and cannot be refreshed"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("SSO-TOKEN") && !out.stderr.contains("SSO-TOKEN"));
    // A legacy SSO profile (sso_start_url in the profile) that never logged in.
    assert_get_fails(&as_profile("sso-legacy"), &expected("sso-legacy"));
    assert_eq!(env.fake.calls(LOGIN), 0);
}

/// SHA-1 in hex, as the AWS CLI names its SSO cache files (by coreutils' sha1sum).
fn sha1_hex(data: &[u8]) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha1sum (coreutils) runs");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..40].to_string()
}
