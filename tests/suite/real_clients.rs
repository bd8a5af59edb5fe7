//! End to end with real software, each a script under `tests/e2e/` that prints `ok -` /
//! `not ok -` per check and `N passed, M failed`, driving the built helper and the fake Lightsail
//! endpoint of `examples/fake_lightsail.rs`:
//!
//! - `real-clients.sh`: Debian's docker-registry (htpasswd + TLS), skopeo and the docker CLI;
//! - `engine.sh`: a Docker Engine of its own, podman and buildah pushing with only `credHelpers`;
//! - `fake-vs-boto3.py`: the fake's wire format against botocore's model of Lightsail;
//! - `protocol-native.py`: the protocol checks of the macOS and Windows jobs in `.github/`.
//!
//! The first two make private namespaces and need root and the Debian packages that
//! `tests/e2e/install-deps` installs: without root they are ignored (with that reason); as root
//! without the packages they fail, naming what is missing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const HELPER: &str = env!("CARGO_BIN_EXE_docker-credential-lightsail");

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn real_registry_skopeo_and_docker_cli_through_the_helper_as_root() {
    run_checks("real-clients.sh");
}

#[test]
#[ignore = "needs root: ./run-tests runs it as root"]
fn docker_engine_podman_and_buildah_push_with_only_cred_helpers_as_root() {
    run_checks("engine.sh");
}

#[test]
fn the_fake_answers_as_botocore_models_lightsail() {
    run_checks("fake-vs-boto3.py");
}

/// The checks that the published pipeline runs natively on macOS and Windows, run here on this
/// build, so that they cannot rot unseen.
#[test]
fn the_native_pipelines_protocol_checks_pass_here() {
    run_checks("protocol-native.py");
}

/// Runs `tests/e2e/<script>` with the helper and the fake, echoes its output, and fails unless
/// it exits 0 with a `N passed, 0 failed` summary and no `not ok` line.
fn run_checks(script: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(script);
    let fake = build_fake();
    // One stream, in order: the script's stderr joins its stdout.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$0" 2>&1"#)
        .arg(&path)
        .env("HELPER_BIN", HELPER)
        .env("FAKE_BIN", &fake)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot run sh");
    // Every script bounds itself (a deadline on the whole run), so reading to the end ends.
    let mut failures = Vec::new();
    let mut summary = String::new();
    for line in BufReader::new(child.stdout.take().expect("stdout is piped")).lines() {
        let line = line.unwrap_or_else(|err| format!("(unreadable output: {err})"));
        println!("{line}");
        if line.starts_with("not ok") {
            failures.push(line.clone());
        }
        if line.ends_with(" failed") && line.contains(" passed, ") {
            summary = line;
        }
    }
    let status = child.wait().expect("cannot wait for the script");
    assert!(
        status.success() && failures.is_empty() && summary.ends_with(" 0 failed"),
        "tests/e2e/{script}: {status}, {}\n{}\n\
         (it needs the packages of tests/e2e/install-deps; the full output is above)",
        if summary.is_empty() {
            "no summary line"
        } else {
            &summary
        },
        failures.join("\n"),
    );
}

/// Builds `examples/fake_lightsail.rs` with the cargo, profile and target folder that built this
/// test (a no-op when it is fresh), and returns its path. `cargo test` alone builds examples too,
/// but `cargo test real_clients` does not, and a stale fake would test old behaviour.
fn build_fake() -> PathBuf {
    let profile_dir = Path::new(HELPER).parent().expect("the helper has a folder");
    let mut target_dir = profile_dir
        .parent()
        .expect("the profile folder has a parent");
    let mut command = Command::new(env!("CARGO"));
    command.args(["build", "--quiet", "--example", "fake_lightsail"]);
    command
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    // <target>/<profile>, or <target>/<triple>/<profile> when built with --target.
    if !target_dir.join("CACHEDIR.TAG").exists()
        && let Some(root) = target_dir
            .parent()
            .filter(|p| p.join("CACHEDIR.TAG").exists())
    {
        command.arg("--target").arg(target_dir.file_name().unwrap());
        target_dir = root;
    }
    command.arg("--target-dir").arg(target_dir);
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
        None => {}
    }
    let status = command
        .status()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", env!("CARGO")));
    let fake = profile_dir.join("examples/fake_lightsail");
    assert!(
        status.success() && fake.is_file(),
        "`cargo build --example fake_lightsail` failed ({status}) or made no {}",
        fake.display()
    );
    fake
}
