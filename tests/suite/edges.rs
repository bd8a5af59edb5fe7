//! The rough edges of a first day (issue 16), each through the real binary: `--profile` for
//! `register` and `push`, `configure --registry`, where a bad region came from, the `chmod` that
//! fixes a shared file, `help --help`, the usage of `--no-wait`, and the completion scripts.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::fake_lightsail::{GET_SERVICES, LOGIN, REGISTER};
use crate::support::{BIN, RunOutput, TestEnv, snapshot};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const CI_KEY: &str = "AKIACI0000000000001";
const CI_ACCOUNT: &str = "333333333333";

/// The environment's own keys (the default account) and a profile `ci` with keys of another
/// account and a region of its own.
fn with_ci_profile() -> TestEnv {
    let mut env = TestEnv::new();
    env.write_aws_credentials(&format!(
        "[ci]\naws_access_key_id = {CI_KEY}\naws_secret_access_key = CiSecret/0001\n"
    ));
    env.write_aws_config("[profile ci]\nregion = eu-west-2\n");
    env.fake.set_account_for_key(CI_KEY, CI_ACCOUNT);
    env
}

/// The access key ids that signed each call of `operation`.
fn signed_by(env: &TestEnv, operation: &str) -> Vec<String> {
    env.fake
        .requests()
        .into_iter()
        .filter(|request| request.operation == operation)
        .map(|request| request.access_key_id.unwrap_or_default())
        .collect()
}

/// The regions of the calls of `operation`.
fn regions_of(env: &TestEnv, operation: &str) -> Vec<String> {
    env.fake
        .requests()
        .into_iter()
        .filter(|request| request.operation == operation)
        .map(|request| request.region.unwrap_or_default())
        .collect()
}

/// A human command's failure: nothing on stdout, one `error:` line on stderr, exit code 1.
fn assert_error(out: &RunOutput, expected: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");
    assert_eq!(out.stderr, format!("error: {expected}\n"), "{out:?}");
}

#[test]
fn register_profile_signs_with_that_profile_and_takes_its_region() {
    let env = with_ci_profile();
    let args = [
        "register",
        "--service",
        "hello",
        "--label",
        "web",
        "--digest",
        DIGEST,
    ];
    let out = env.run(&[&args[..], &["--profile", "ci"]].concat(), "");
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, ":hello.web.1\n");
    assert_eq!(signed_by(&env, REGISTER), [CI_KEY]);
    assert_eq!(regions_of(&env, REGISTER), ["eu-west-2"]);

    // A profile in neither AWS file: an error before any call.
    let missing = env.run(&[&args[..], &["--profile", "staging"]].concat(), "");
    assert_error(
        &missing,
        &format!(
            "profile 'staging' not found in {} or {}",
            env.aws_config_path().display(),
            env.aws_credentials_path().display()
        ),
    );
    assert_eq!(env.fake.calls(REGISTER), 1);
}

/// A stand-in `docker` on PATH: an API version, an amd64 image, and a push that prints a digest.
const FAKE_DOCKER: &str = r#"#!/bin/sh
case "$1" in
version) echo 1.41 ;;
image) [ "$2" = inspect ] && echo "linux/amd64 1" ;;
push) echo "${2##*:}: digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef size: 528" ;;
esac
exit 0
"#;

#[test]
fn push_profile_logs_in_registers_with_that_profile_and_takes_its_region() {
    let mut env = with_ci_profile();
    let engine = env.root().join("engine");
    fs::create_dir(&engine).unwrap();
    fs::write(engine.join("docker"), FAKE_DOCKER).unwrap();
    fs::set_permissions(engine.join("docker"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(engine).chain(std::env::split_paths(&path));
    env.set_env("PATH", std::env::join_paths(dirs).unwrap());

    let push = [
        "push",
        "--service",
        "hello",
        "--label",
        "web",
        "-q",
        "app:1",
    ];
    let out = env.run(&[&push[..], &["--profile", "ci"]].concat(), "");
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, ":hello.web.1\n");
    for operation in [GET_SERVICES, LOGIN, REGISTER] {
        assert_eq!(signed_by(&env, operation), [CI_KEY], "{operation}");
        assert_eq!(regions_of(&env, operation), ["eu-west-2"], "{operation}");
    }
    // Without it: the environment's keys, which name no region here.
    let plain = env.run(&push, "");
    assert_error(
        &plain,
        "no AWS region: pass --region, or set AWS_REGION or a region in your AWS profile",
    );
}

#[test]
fn configure_profile_prints_the_push_command_with_that_profile() {
    let env = with_ci_profile();
    let out = env.run(&["configure", "--profile", "ci"], "");
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.ends_with(
            "\nTo push an image to your Lightsail container service in eu-west-2:\n  \
             docker-credential-lightsail push --region eu-west-2 --profile ci --service SERVICE --label LABEL IMAGE\n"
        ),
        "{}",
        out.stdout
    );
    // The README's command, as printed (IMAGE aside), parses: it is the push command.
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(
            "docker-credential-lightsail push --region us-east-1 --service hello --label web my-app:latest"
        ),
        "the README's push command changed: change configure's next step with it"
    );
    let plain = env.run(&["configure", "--region", "us-east-1"], "");
    assert!(
        plain.stdout.ends_with(
            "  docker-credential-lightsail push --region us-east-1 --service SERVICE --label LABEL IMAGE\n"
        ),
        "{}",
        plain.stdout
    );
}

#[test]
fn configure_registry_adds_the_entry_without_credentials_or_an_api_call() {
    let mut env = TestEnv::new();
    env.remove_env("AWS_ACCESS_KEY_ID");
    env.remove_env("AWS_SECRET_ACCESS_KEY");
    let config = env.docker_config_dir().join("config.json");
    fs::write(&config, "{\n  \"auths\": {}\n}\n").unwrap();
    let host = "123456789012.dkr.ecr.us-west-2.amazonaws.com";

    let dry = env.run(&["configure", "--registry", host, "--dry-run"], "");
    assert!(dry.success(), "{dry:?}");
    assert!(
        dry.stdout.starts_with(&format!(
            "Would add to {}:\n  \"credHelpers\": {{ \"{host}\": \"lightsail\" }}\nDry run: nothing written.\n",
            config.display()
        )),
        "{}",
        dry.stdout
    );
    assert_eq!(
        fs::read_to_string(&config).unwrap(),
        "{\n  \"auths\": {}\n}\n"
    );

    // Upper case is how a user may type it; Docker looks the host up in lower case.
    let out = env.run(&["configure", "--registry", &host.to_uppercase()], "");
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains(&format!("--password-stdin {host}\n")),
        "{}",
        out.stdout
    );
    let doc: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(doc["credHelpers"][host], "lightsail");
    assert_eq!(doc["auths"], serde_json::json!({}));
    assert!(env.fake.requests().is_empty(), "{:?}", env.fake.requests());

    // What Docker would never look up, or another registry, is a usage error that writes nothing.
    let before = snapshot(env.root());
    for bad in [
        format!("https://{host}"),
        format!("{host}/sr"),
        format!("{host}:443"),
        "docker.io".to_string(),
    ] {
        let out = env.run(&["configure", "--registry", &bad], "");
        assert_eq!(out.code, Some(2), "{out:?}");
        assert!(
            out.stderr
                .contains("is not an Amazon Lightsail registry host"),
            "{}",
            out.stderr
        );
    }
    let with_region = env.run(
        &["configure", "--registry", host, "--region", "us-west-2"],
        "",
    );
    assert_eq!(with_region.code, Some(2), "{with_region:?}");
    assert_eq!(snapshot(env.root()), before);
}

#[test]
fn a_bad_region_says_which_setting_gave_it() {
    let mut env = TestEnv::new();
    env.set_env("AWS_REGION", "Mars");
    assert_error(
        &env.run(&["configure"], ""),
        "\"Mars\" (AWS_REGION) is not an AWS region name (like us-east-1): correct it there, or pass --region",
    );
    env.remove_env("AWS_REGION");
    env.set_env("AWS_DEFAULT_REGION", "Venus");
    assert_error(
        &env.run(&["configure"], ""),
        "\"Venus\" (AWS_DEFAULT_REGION) is not an AWS region name (like us-east-1): correct it there, or pass --region",
    );
    env.remove_env("AWS_DEFAULT_REGION");
    env.write_aws_config("[profile dev]\nregion = moon_1\n");
    env.set_env("AWS_PROFILE", "dev");
    let expected = format!(
        "\"moon_1\" (region of AWS profile 'dev' in {}) is not an AWS region name (like us-east-1): correct it there, or pass --region",
        env.aws_config_path().display()
    );
    assert_error(&env.run(&["configure"], ""), &expected);
    let register = [
        "register",
        "--service",
        "hello",
        "--label",
        "web",
        "--digest",
        DIGEST,
    ];
    assert_error(&env.run(&register, ""), &expected);
    env.remove_env("AWS_PROFILE");
    assert_error(
        &env.run(&[&register[..], &["--profile", "dev"]].concat(), ""),
        &expected,
    );

    let flag = env.run(&["configure", "--region", "Mars"], "");
    assert_eq!(flag.code, Some(2), "{flag:?}");
    assert!(
        flag.stderr
            .starts_with("error: invalid value 'Mars' for '--region <REGION>': \"Mars\" is not an AWS region name"),
        "{}",
        flag.stderr
    );
    assert!(env.fake.requests().is_empty());
}

#[test]
fn files_others_can_write_name_the_chmod_that_fixes_them() {
    let mut env = TestEnv::new();
    let shared = env.root().join("shared-cache");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR", &shared);
    let out = env.run(&["configure", "--region", "us-east-1"], "");
    assert!(out.success(), "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "Note: not caching logins: cannot use the cache directory {0}: it is writable by group or others: fix it with `chmod 700 {0}`\n",
            shared.display()
        )
    );
    assert_eq!(
        fs::metadata(&shared).unwrap().permissions().mode() & 0o777,
        0o777
    );

    // The helper's configuration folder, when `configure --profile` would write in it.
    let mut env = with_ci_profile();
    let folder = env.root().join("helper-config");
    fs::create_dir(&folder).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o775)).unwrap();
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_CONFIG_DIR", &folder);
    assert_error(
        &env.run(&["configure", "--profile", "ci"], ""),
        &format!(
            "cannot use {0}: it is writable by group or others: fix it with `chmod 700 {0}`",
            folder.display()
        ),
    );
}

#[test]
fn debug_log_warnings_are_warnings() {
    let mut env = TestEnv::new();
    let shared = env.root().join("shared-cache");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR", &shared);
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_LOG", "debug");
    let out = env.run(&["get"], env.registry_host("us-east-1"));
    out.credentials();
    let warning = out
        .stderr
        .lines()
        .find(|line| line.contains("not using cache dir"))
        .unwrap_or_else(|| panic!("no warning logged: {}", out.stderr));
    assert!(warning.contains(" WARN not using cache dir: "), "{warning}");
    assert!(!out.stderr.contains("WARNING"), "{}", out.stderr);
}

#[test]
fn help_help_and_help_of_a_command_with_help_work() {
    for (args, usage) in [
        (
            &["help", "--help"][..],
            "Usage: docker-credential-lightsail help [COMMAND]...",
        ),
        (
            &["help", "-h"],
            "Usage: docker-credential-lightsail help [COMMAND]...",
        ),
        (
            &["help", "push", "--help"],
            "Usage: docker-credential-lightsail push [OPTIONS]",
        ),
        (&["help"], "Usage: docker-credential-lightsail <COMMAND>"),
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(stdout.contains(usage), "{args:?}: {stdout}");
    }
}

#[test]
fn no_wait_without_deploy_says_it_goes_with_deploy() {
    for option in [&["--no-wait"][..], &["--wait-timeout", "60"]] {
        let args = [
            &["push", "--service", "hello", "--label", "web"][..],
            option,
            &["app:1"],
        ]
        .concat();
        let out = Command::new(BIN).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: {} is about the deployment: use it with --deploy CONTAINER, or leave it out\n",
                option[0]
            )),
            "{stderr}"
        );
        let usage = stderr
            .lines()
            .find(|line| line.starts_with("Usage: "))
            .unwrap();
        assert_eq!(
            usage,
            "Usage: docker-credential-lightsail push [OPTIONS] --service <NAME> --label <LABEL> <IMAGE>"
        );
    }
}

/// Runs `script` in bash with bash-completion loaded (Debian's `bash-completion`).
fn bash_with_completion(script: &str) -> String {
    const LOADER: &str = "/usr/share/bash-completion/bash_completion";
    assert!(
        std::path::Path::new(LOADER).exists(),
        "bash-completion must be installed: apt-get install bash-completion"
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c"])
        .arg(format!("source {LOADER}\n{script}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completion_completes_push_options() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("docker-credential-lightsail");
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    fs::write(&script, &out.stdout).unwrap();
    // As bash-completion calls a completion function: the words, the current one, the line.
    let complete = |line: &str| {
        bash_with_completion(&format!(
            "source {}\n\
             COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}\n\
             read -ra COMP_WORDS <<<\"$COMP_LINE\"; [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')\n\
             COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
             func=$(complete -p docker-credential-lightsail | sed 's/.*-F \\([^ ]*\\).*/\\1/')\n\
             \"$func\" docker-credential-lightsail \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
    };
    assert_eq!(
        complete("docker-credential-lightsail push --de").trim(),
        "--deploy"
    );
    let commands = complete("docker-credential-lightsail con");
    assert_eq!(commands.trim(), "configure");
    for shell in ["zsh", "fish", "powershell"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("--deploy"),
            "{shell}: {out:?}"
        );
    }
    let bad = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// On a machine with Rust and nothing else, `packaging/release` names what is missing and the
/// one command that installs it, before it builds anything.
#[test]
fn release_on_a_fresh_machine_says_to_run_install_deps() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let which = |tool: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(tool))
            .find(|path| path.is_file())
            .unwrap_or_else(|| panic!("no {tool} on PATH"))
    };
    // A fresh Debian has bash, coreutils, grep and sed; rustup's proxies give cargo and rustc.
    for tool in ["bash", "dirname", "env", "grep", "sed"] {
        std::os::unix::fs::symlink(which(tool), bin.join(tool)).unwrap();
    }
    let rustup = which("rustup");
    for tool in ["cargo", "rustc", "rustup"] {
        std::os::unix::fs::symlink(&rustup, bin.join(tool)).unwrap();
    }
    let cargo_home = dir.path().join("cargo-home"); // no cargo-deb in it
    fs::create_dir(&cargo_home).unwrap();
    let out_dir = dir.path().join("artifacts");
    let out = Command::new(bin.join("bash"))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/release"))
        .arg("-o")
        .arg(&out_dir)
        .env_clear()
        .env("PATH", &bin)
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("CARGO_HOME", &cargo_home)
        .env(
            "RUSTUP_HOME",
            std::env::var_os("RUSTUP_HOME").unwrap_or_else(|| {
                std::path::Path::new(&std::env::var_os("HOME").unwrap_or_default())
                    .join(".rustup")
                    .into()
            }),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("release: missing "), "{stderr}");
    for tool in ["cargo-deb", "rpm", "jq", "zip"] {
        assert!(stderr.contains(tool), "{tool} not named: {stderr}");
    }
    assert!(
        stderr.ends_with(": install them with packaging/install-deps (as root)\n"),
        "{stderr}"
    );
    assert!(!out_dir.exists(), "it went on after the check");
    // And the README names that command where it tells how to build the packages.
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains("`packaging/install-deps`"),
        "README does not name it"
    );
}

/// Every path that the README's table of where things are names exists.
#[test]
fn readme_developer_table_names_real_paths() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|line| !line.starts_with("Where things are"))
        .take_while(|line| !line.starts_with("## "))
        .filter(|line| line.starts_with('|'))
        .collect();
    assert!(table.len() > 10, "no table found");
    let mut paths = 0;
    for line in table {
        for (i, quoted) in line.split('`').enumerate() {
            let looks_like_a_path = quoted.contains('/')
                || quoted.ends_with(".rs")
                || (i == 1 && line.starts_with("| `"));
            if i % 2 == 1 && looks_like_a_path {
                paths += 1;
                assert!(
                    root.join(quoted).exists(),
                    "README names {quoted}, which does not exist"
                );
            }
        }
    }
    assert!(paths > 20, "only {paths} paths found");
}
