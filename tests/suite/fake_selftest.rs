//! Tests of the test infrastructure itself: the fake Lightsail endpoint must accept what the SDK
//! sends, and must be able to fail in every way the controls promise; the harness must catch
//! leaked secrets. A raw HTTP client keeps these tests independent of the code under test.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::fake_lightsail::{FakeLightsail, LOGIN, Mode, REGISTER, RecordedRequest};
use crate::support::{ACCESS_KEY_ID, RunOutput, TestEnv, unix_now};
use serde_json::{Value, json};

/// Long enough never to expire on a loaded machine; waits end as soon as the event happens.
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a test waits to show that something does *not* happen.
const QUIET_PERIOD: Duration = Duration::from_millis(300);

// ---- a tiny raw HTTP client -----------------------------------------------------------------------

/// A SigV4 `Authorization` header of the shape the SDK sends (the fake does not check the HMAC).
fn authorization(access_key_id: &str, region: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/20250101/{region}/{service}/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={}",
        "0123456789abcdef".repeat(4)
    )
}

fn login_request() -> Request {
    Request::operation(LOGIN, "{}")
}

fn register_request(service: &str, label: &str) -> Request {
    let body = json!({ "serviceName": service, "label": label, "digest": "sha256:abc" });
    Request::operation(REGISTER, &body.to_string())
}

/// A request to the fake; by default a correctly signed one for us-east-1.
struct Request {
    method: &'static str,
    path: &'static str,
    target: Option<String>,
    authorization: Option<String>,
    body: String,
}

impl Request {
    fn operation(operation: &str, body: &str) -> Request {
        Request {
            method: "POST",
            path: "/",
            target: Some(format!("Lightsail_20161128.{operation}")),
            authorization: Some(authorization(ACCESS_KEY_ID, "us-east-1", "lightsail")),
            body: body.to_string(),
        }
    }

    fn target(mut self, target: Option<&str>) -> Request {
        self.target = target.map(str::to_string);
        self
    }

    fn authorization(mut self, authorization: Option<String>) -> Request {
        self.authorization = authorization;
        self
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: localhost\r\n",
            self.method, self.path
        );
        if let Some(target) = &self.target {
            head += &format!("X-Amz-Target: {target}\r\n");
        }
        if let Some(authorization) = &self.authorization {
            head += &format!("authorization: {authorization}\r\n");
        }
        head += "Content-Type: application/x-amz-json-1.1\r\n";
        format!(
            "{head}Content-Length: {}\r\n\r\n{}",
            self.body.len(),
            self.body
        )
        .into_bytes()
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    body: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {:?}", self.body))
    }

    /// The `__type` of an error answer.
    fn error_type(&self) -> String {
        self.json()["__type"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One keep-alive connection to the fake.
struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(fake: &FakeLightsail) -> Connection {
        let stream = TcpStream::connect(("127.0.0.1", fake.port())).expect("connect to the fake");
        stream.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
        Connection {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, request: &Request) -> Response {
        self.reader
            .get_mut()
            .write_all(&request.to_bytes())
            .expect("send the request");
        self.read_response()
    }

    fn read_response(&mut self) -> Response {
        let mut status_line = String::new();
        self.reader
            .read_line(&mut status_line)
            .expect("read the status line");
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok());
        let status = status.unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read a header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("Content-Length");
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("read the body");
        Response {
            status,
            body: String::from_utf8(body).expect("UTF-8 body"),
        }
    }
}

/// Sends one request on a new connection.
fn send(fake: &FakeLightsail, request: &Request) -> Response {
    Connection::open(fake).send(request)
}

fn now() -> i64 {
    i64::try_from(unix_now()).expect("the clock is sane")
}

// ---- accepted requests ------------------------------------------------------------------------------

#[test]
fn signed_login_gets_a_registry_login_for_the_signed_region() {
    let fake = FakeLightsail::new();
    let request =
        login_request().authorization(Some(authorization("AKIAOTHER", "eu-west-2", "lightsail")));
    let response = send(&fake, &request);

    assert_eq!(response.status, 200, "{response:?}");
    let login = &response.json()["registryLogin"];
    assert_eq!(login["username"], "AWS");
    assert_eq!(
        login["registry"],
        "123456789012.dkr.ecr.eu-west-2.amazonaws.com"
    );
    assert_eq!(login["registry"], fake.registry_host("eu-west-2").as_str());
    let password = login["password"].as_str().unwrap();
    assert!(
        password.starts_with(&format!("LSPW-{}-1-", fake.port())),
        "{password}"
    );
    assert_eq!(fake.passwords(), [password]);
    let expires_at = login["expiresAt"]
        .as_i64()
        .expect("expiresAt is an integer");
    assert!(
        (expires_at - now() - 12 * 3600).abs() <= 5,
        "expiresAt {expires_at}"
    );
    assert_eq!(
        fake.requests(),
        [RecordedRequest {
            operation: LOGIN.to_string(),
            region: Some("eu-west-2".to_string()),
            access_key_id: Some("AKIAOTHER".to_string()),
        }]
    );
}

#[test]
fn a_connection_serves_several_requests_and_every_password_differs() {
    let fake = FakeLightsail::new();
    let mut connection = Connection::open(&fake);
    let first = connection.send(&login_request()).json();
    let second = connection.send(&login_request()).json();

    assert_ne!(
        first["registryLogin"]["password"],
        second["registryLogin"]["password"]
    );
    assert_eq!(fake.login_calls(), 2);
    assert_eq!(fake.passwords().len(), 2);
}

#[test]
fn account_and_expiry_are_settable() {
    let fake = FakeLightsail::new();
    fake.set_account("210987654321");
    fake.set_expires_in(600);
    let login = send(&fake, &login_request()).json()["registryLogin"].clone();

    assert_eq!(
        login["registry"],
        "210987654321.dkr.ecr.us-east-1.amazonaws.com"
    );
    assert!((login["expiresAt"].as_i64().unwrap() - now() - 600).abs() <= 5);
}

#[test]
fn password_can_be_fixed_and_answers_delayed() {
    let fake = FakeLightsail::new();
    fake.set_password(Some("LSPW-fixed"));
    fake.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    let first = send(&fake, &login_request()).json();
    // A lower bound only: the machine may be slow, never fast.
    assert!(started.elapsed() >= Duration::from_millis(300));
    let second = send(&fake, &login_request()).json();
    assert_eq!(first["registryLogin"]["password"], "LSPW-fixed");
    assert_eq!(second["registryLogin"]["password"], "LSPW-fixed");

    fake.set_password(None);
    fake.set_delay(Duration::ZERO);
    let third = send(&fake, &login_request()).json();
    assert_ne!(third["registryLogin"]["password"], "LSPW-fixed");
}

#[test]
fn register_counts_images_per_service_and_label() {
    let fake = FakeLightsail::new();
    let image = |label: &str| {
        let response = send(&fake, &register_request("hello", label));
        assert_eq!(response.status, 200, "{response:?}");
        response.json()["containerImage"]["image"]
            .as_str()
            .unwrap()
            .to_string()
    };

    assert_eq!(image("web"), ":hello.web.1");
    assert_eq!(image("web"), ":hello.web.2");
    assert_eq!(image("api"), ":hello.api.1");
    assert_eq!(fake.register_calls(), 3);
    let answer = send(&fake, &register_request("hello", "web")).json();
    assert_eq!(answer["containerImage"]["digest"], "sha256:abc");
    assert!(answer["containerImage"]["createdAt"].is_i64());
}

#[test]
fn register_rejects_unknown_services_and_bad_labels() {
    let fake = FakeLightsail::new();
    let unknown = send(&fake, &register_request("nope", "web"));
    assert_eq!(
        (unknown.status, unknown.error_type()),
        (400, "NotFoundException".into())
    );
    assert!(unknown.body.contains("nope"), "{unknown:?}");

    fake.set_services(&["nope"]);
    assert_eq!(send(&fake, &register_request("nope", "web")).status, 200);
    for label in ["", "-web", "web-", "Web", &"a".repeat(54)] {
        let response = send(&fake, &register_request("nope", label));
        assert_eq!(
            response.error_type(),
            "InvalidInputException",
            "label {label:?}"
        );
    }
}

#[test]
fn the_calls_endpoint_reports_login_calls() {
    let fake = FakeLightsail::new();
    send(&fake, &login_request());
    send(&fake, &login_request());
    let calls = Request {
        method: "GET",
        path: "/__calls",
        ..login_request()
    };

    assert_eq!(send(&fake, &calls).body, "2\n");
}

// ---- rejected requests ------------------------------------------------------------------------------

#[test]
fn requests_without_a_lightsail_signature_are_rejected() {
    let fake = FakeLightsail::new();
    let bad_authorizations = [
        None,
        Some("Bearer abc".to_string()),
        Some(authorization(ACCESS_KEY_ID, "us-east-1", "ecr")),
        Some(authorization("", "us-east-1", "lightsail")),
        Some(authorization(ACCESS_KEY_ID, "us-east-1", "lightsail").replace("Signature=", "Sig=")),
    ];
    for bad in bad_authorizations {
        let response = send(&fake, &login_request().authorization(bad.clone()));
        assert_eq!(
            (response.status, response.error_type()),
            (400, "InvalidSignatureException".to_string()),
            "{bad:?}"
        );
    }
    // Rejected calls still count: a test asserting "no API call" must see them.
    assert_eq!(fake.login_calls(), 5);
    assert!(fake.passwords().is_empty());
}

#[test]
fn requests_with_a_wrong_or_missing_target_are_rejected() {
    let fake = FakeLightsail::new();
    for target in [
        None,
        Some("Lightsail_20161128.GetInstances"),
        Some("AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"),
    ] {
        let response = send(&fake, &login_request().target(target));
        assert_eq!(
            (response.status, response.error_type()),
            (400, "UnknownOperationException".to_string()),
            "{target:?}"
        );
    }
    assert_eq!(fake.login_calls(), 0);
}

#[test]
fn expected_region_and_known_keys_are_enforced() {
    let fake = FakeLightsail::new();
    fake.expect_region(Some("us-east-1"));
    fake.set_known_access_keys(Some(&[ACCESS_KEY_ID]));

    assert_eq!(send(&fake, &login_request()).status, 200);
    let other_region =
        login_request().authorization(Some(authorization(ACCESS_KEY_ID, "eu-west-1", "lightsail")));
    assert_eq!(
        send(&fake, &other_region).error_type(),
        "InvalidSignatureException"
    );
    let unknown_key =
        login_request().authorization(Some(authorization("AKIAUNKNOWN", "us-east-1", "lightsail")));
    let response = send(&fake, &unknown_key);
    assert_eq!(response.error_type(), "UnrecognizedClientException");
    assert_eq!(
        response.json()["message"],
        "The security token included in the request is invalid."
    );
}

// ---- failure controls -------------------------------------------------------------------------------

#[test]
fn fail_next_fails_the_next_calls_then_recovers() {
    let fake = FakeLightsail::new();
    fake.fail_next(2, 500, "ServiceException", "boom");
    fake.fail_next(1, 400, "ThrottlingException", "Rate exceeded");
    let mut connection = Connection::open(&fake);
    let mut outcome = || {
        let response = connection.send(&login_request());
        (
            response.status,
            if response.status == 200 {
                String::new()
            } else {
                response.error_type()
            },
        )
    };

    assert_eq!(outcome(), (500, "ServiceException".into()));
    assert_eq!(outcome(), (500, "ServiceException".into()));
    assert_eq!(outcome(), (400, "ThrottlingException".into()));
    assert_eq!(outcome(), (200, String::new()));
    assert_eq!(fake.passwords().len(), 1, "failed calls issue no password");
}

#[test]
fn fail_every_fails_every_nth_login() {
    let fake = FakeLightsail::new();
    fake.fail_every(3);
    let statuses: Vec<u16> = (0..6)
        .map(|_| send(&fake, &login_request()).status)
        .collect();

    assert_eq!(statuses, [200, 200, 500, 200, 200, 500]);
}

#[test]
fn malformed_body_and_login_without_password() {
    let fake = FakeLightsail::new();
    fake.set_mode(Mode::MalformedBody);
    let malformed = send(&fake, &login_request());
    assert_eq!(malformed.status, 200);
    assert!(
        serde_json::from_str::<Value>(&malformed.body).is_err(),
        "{malformed:?}"
    );

    fake.set_mode(Mode::LoginWithoutPassword);
    let login = send(&fake, &login_request()).json()["registryLogin"].clone();
    assert!(login.get("password").is_none(), "{login}");
    assert!(login["registry"].is_string());
    assert!(fake.passwords().is_empty());
}

#[test]
fn held_logins_answer_only_after_release() {
    let fake = FakeLightsail::new();
    fake.hold_calls();
    let (answered_tx, answered_rx) = mpsc::channel();
    let connection = Connection::open(&fake);
    let client = thread::spawn(move || {
        let mut connection = connection;
        answered_tx
            .send(connection.send(&login_request()).status)
            .unwrap();
    });

    assert!(
        fake.wait_for_calls(LOGIN, 1, EVENT_TIMEOUT),
        "the held call never arrived"
    );
    assert!(
        answered_rx.recv_timeout(QUIET_PERIOD).is_err(),
        "a held call was answered"
    );
    fake.release();
    assert_eq!(answered_rx.recv_timeout(EVENT_TIMEOUT), Ok(200));
    client.join().unwrap();
}

#[test]
fn wait_for_calls_gives_up_after_its_timeout() {
    let fake = FakeLightsail::new();
    assert!(!fake.wait_for_calls(LOGIN, 1, Duration::from_millis(50)));
}

#[test]
fn a_hanging_fake_never_answers_and_drop_closes_the_connection() {
    let fake = FakeLightsail::new();
    fake.hang();
    let mut stream = TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
    stream.write_all(&login_request().to_bytes()).unwrap();
    assert!(fake.wait_for_calls(LOGIN, 1, EVENT_TIMEOUT));
    stream.set_read_timeout(Some(QUIET_PERIOD)).unwrap();
    let mut buffer = [0; 64];
    let quiet = stream
        .read(&mut buffer)
        .expect_err("a hanging fake answered");
    assert!(
        matches!(quiet.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{quiet}"
    );

    drop(fake);
    stream.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
    assert_eq!(stream.read(&mut buffer).expect("EOF after drop"), 0);
}

#[test]
fn a_dripping_fake_sends_one_byte_at_a_time() {
    let fake = FakeLightsail::new();
    fake.drip();
    let mut stream = TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
    stream.write_all(&login_request().to_bytes()).unwrap();
    stream.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
    let mut buffer = [0; 64];
    assert_eq!(stream.read(&mut buffer).unwrap(), 1);
    assert_eq!(buffer[0], b'H');
    stream.set_read_timeout(Some(QUIET_PERIOD)).unwrap();
    assert!(
        stream.read(&mut buffer).is_err(),
        "the second byte came too early"
    );
}

#[test]
fn dropping_the_fake_frees_its_port() {
    let fake = FakeLightsail::new();
    let port = fake.port();
    drop(fake);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

// ---- the real SDK against the fake ------------------------------------------------------------------

/// The fake must understand what aws-sdk-lightsail actually sends, and the SDK what it answers.
#[test]
fn the_sdk_talks_to_the_fake() {
    use aws_sdk_lightsail::config::{BehaviorVersion, Credentials, Region};

    let fake = FakeLightsail::new();
    fake.expect_region(Some("ap-southeast-1"));
    fake.set_known_access_keys(Some(&[ACCESS_KEY_ID]));
    fake.fail_next(1, 400, "AccessDeniedException", "not allowed");
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_sdk_lightsail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client)
        .region(Region::new("ap-southeast-1"))
        .endpoint_url(fake.url())
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            "secret",
            None,
            None,
            "test",
        ))
        .build();
    let client = aws_sdk_lightsail::Client::from_conf(config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    runtime.block_on(async {
        let denied = client
            .create_container_service_registry_login()
            .send()
            .await
            .unwrap_err();
        let denied = denied.into_service_error();
        assert!(denied.is_access_denied_exception(), "{denied:?}");

        let output = client
            .create_container_service_registry_login()
            .send()
            .await
            .unwrap();
        let login = output.registry_login().unwrap();
        assert_eq!(
            login.registry(),
            Some(fake.registry_host("ap-southeast-1").as_str())
        );
        assert_eq!(
            login.password(),
            fake.passwords().first().map(String::as_str)
        );
        assert!((login.expires_at().unwrap().secs() - now() - 12 * 3600).abs() <= 5);

        let image = client
            .register_container_image()
            .service_name("hello")
            .label("web")
            .digest("sha256:abc")
            .send()
            .await
            .unwrap();
        assert_eq!(
            image.container_image().unwrap().image(),
            Some(":hello.web.1")
        );

        let missing = client
            .register_container_image()
            .service_name("nope")
            .label("web")
            .digest("sha256:abc")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(missing.is_not_found_exception(), "{missing:?}");
    });
    assert_eq!(fake.login_calls(), 2);
}

// ---- the harness ------------------------------------------------------------------------------------

#[test]
fn commands_get_exactly_the_test_environment() {
    let mut env = TestEnv::new();
    env.set_env("AWS_REGION", "us-west-2");
    env.remove_env("AWS_EC2_METADATA_DISABLED");
    let cmd = env.cmd(&["get"]);
    let mut names: Vec<String> = cmd
        .get_envs()
        .filter(|(_, value)| value.is_some())
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    names.sort();

    let mut expected = vec![
        "AWS_ACCESS_KEY_ID",
        "AWS_CONFIG_FILE",
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        "AWS_REGION",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SHARED_CREDENTIALS_FILE",
        "DOCKER_CONFIG",
        "DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR",
        "HOME",
        "PATH",
        "XDG_CACHE_HOME",
    ];
    expected.sort();
    assert_eq!(names, expected);
    for dir in [env.home(), env.cache_dir(), env.docker_config_dir()] {
        assert!(dir.is_dir(), "{dir:?}");
    }
    assert!(!env.aws_config_path().exists());
}

const PASSWORD: &str = "LSPW-1-1-00112233";

fn output(code: i32, stdout: &str, stderr: &str) -> RunOutput {
    RunOutput {
        code: Some(code),
        stdout: stdout.into(),
        stderr: stderr.into(),
    }
}

fn get_output(secret: &str) -> String {
    format!("{{\"ServerURL\":\"h\",\"Username\":\"AWS\",\"Secret\":\"{secret}\"}}\n")
}

#[test]
fn the_leak_scan_allows_a_password_only_as_the_secret_of_a_successful_get() {
    let passwords = [PASSWORD.to_string()];
    let scan = |output: RunOutput, is_get| {
        crate::support::check_for_leaks(&output, is_get, &passwords, &[])
    };

    assert_eq!(scan(output(0, &get_output(PASSWORD), ""), true), Ok(()));
    assert!(scan(output(1, &get_output(PASSWORD), ""), true).is_err());
    assert!(scan(output(0, &get_output(PASSWORD), ""), false).is_err());
    assert!(scan(output(0, &(get_output(PASSWORD) + PASSWORD), ""), true).is_err());
    let leak = scan(output(0, "", &format!("debug: {PASSWORD}")), true).unwrap_err();
    assert!(
        leak.contains("stderr") && !leak.contains(PASSWORD),
        "{leak}"
    );
}

#[test]
fn the_leak_scan_never_allows_an_aws_secret() {
    let secrets = [crate::support::SECRET_ACCESS_KEY.to_string()];
    let scan = |output: RunOutput| crate::support::check_for_leaks(&output, true, &[], &secrets);

    assert!(
        scan(output(
            0,
            &get_output(crate::support::SECRET_ACCESS_KEY),
            ""
        ))
        .is_err()
    );
    assert!(scan(output(1, "", crate::support::SECRET_ACCESS_KEY)).is_err());
}

#[test]
fn secrets_written_to_aws_files_are_found() {
    let file =
        "[default]\naws_access_key_id = AKIA1\nAWS_Secret_Access_Key=abc\naws_session_token = t\n";
    assert_eq!(crate::support::secrets_in_aws_file(file), ["abc", "t"]);
}

#[test]
fn credentials_parse_strictly() {
    let credentials = crate::support::parse_credentials(&get_output("pw"));
    assert_eq!(
        (
            credentials.server_url,
            credentials.username,
            credentials.secret
        ),
        ("h".into(), "AWS".into(), "pw".into())
    );
    let extra = std::panic::catch_unwind(|| {
        crate::support::parse_credentials(r#"{"ServerURL":"h","Username":"u","Secret":"s","x":1}"#)
    });
    assert!(extra.is_err());
}

#[test]
fn a_run_feeds_stdin_collects_output_and_logs_stderr() {
    let env = TestEnv::new();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "cat; echo to-stderr-$$ >&2; exit 3"]);
    let output = env.run_cmd(cmd, "hello from stdin");

    assert_eq!(output.code, Some(3));
    assert_eq!(output.stdout, "hello from stdin");
    let marker = output.stderr.trim();
    assert!(marker.starts_with("to-stderr-"), "{output:?}");
    let log = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stderr-log/fake_selftest.log"),
    )
    .expect("the stderr log exists");
    assert!(log.contains(marker), "stderr not logged");
}

#[test]
#[should_panic(expected = "AWS secret selftest-onl… found in stderr")]
fn a_run_that_prints_a_secret_fails_the_test() {
    let env = TestEnv::new();
    let mut cmd = Command::new("sh");
    // Its own secret, not the suite's: this deliberate leak lands in the stderr log too.
    cmd.args(["-c", "echo \"$AWS_SECRET_ACCESS_KEY\" >&2"])
        .env("AWS_SECRET_ACCESS_KEY", "selftest-only-secret-000");
    env.run_cmd(cmd, "");
}
