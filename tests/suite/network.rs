//! Proxies and private certificate authorities, through the real binary: `HTTPS_PROXY` (a
//! `CONNECT` tunnel) and `HTTP_PROXY` (absolute URIs) to an endpoint name that only the test
//! proxy can resolve, lower-case and `ALL_PROXY` variables, `NO_PROXY` in each form, proxy
//! credentials (sent, never shown), a proxy that refuses or is not there; `AWS_CA_BUNDLE` and a
//! profile's `ca_bundle` trusting a CA made in the test, and every bad bundle named.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use crate::support::proxy::{TestProxy, basic_authorization};
use crate::support::tls::{TestCa, TlsFront};
use crate::support::{ClosedPort, RunOutput, TestEnv};

const REGION: &str = "us-east-1";
/// Names no resolver knows (`.invalid`): only the test proxy, which maps them, reaches them.
const PROXY_ONLY: &str = "lightsail.proxy-only.invalid";
const PLAIN_PROXY_ONLY: &str = "plain.proxy-only.invalid";
const PROXY_USER: &str = "proxyuser";
/// Recognisable, so that the harness's leak scan (which takes it from the proxy URL) finds it.
const PROXY_PASSWORD: &str = "Proxy-Pass-MUST-NOT-LEAK-0001";

/// A CA made for the test and a TLS front for the fake, its certificate for `localhost` and
/// `PROXY_ONLY` signed by that CA.
fn tls_front(env: &TestEnv) -> (TestCa, TlsFront) {
    let ca = TestCa::new(&env.root().join("ca"), "test private CA");
    let front = TlsFront::start(&ca.server_pem(&["localhost", PROXY_ONLY]), env.fake.port());
    (ca, front)
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `get` with a cache of its own (named `tag`), so that every such run asks the API.
fn uncached(env: &TestEnv, tag: &str) -> Command {
    let mut cmd = env.cmd(&["get"]);
    cmd.env(
        "DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR",
        env.root().join(format!("cache-{tag}")),
    );
    cmd
}

fn get(env: &TestEnv, cmd: Command) -> RunOutput {
    env.run_cmd(cmd, env.registry_host(REGION))
}

/// A `get` that must fail: one line on stdout, exit 1, silent stderr. Returns the line.
fn fails(env: &TestEnv, cmd: Command) -> String {
    let out = get(env, cmd);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "one line: {}", out.stdout);
    assert_eq!(out.stderr, "");
    out.stdout.trim_end().to_string()
}

fn succeeds(env: &TestEnv, cmd: Command) {
    let out = get(env, cmd);
    assert!(out.credentials().secret.starts_with("LSPW-"), "{out:?}");
}

// ---- proxies ----------------------------------------------------------------------------------

#[test]
fn https_proxy_tunnels_with_connect_to_a_name_only_the_proxy_resolves() {
    let mut env = TestEnv::new();
    let (ca, front) = tls_front(&env);
    let proxy = TestProxy::start();
    proxy.route(PROXY_ONLY, local(front.port()));
    env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("https://{PROXY_ONLY}"),
    );
    env.set_env("AWS_CA_BUNDLE", ca.pem());

    // Control: without the proxy, the name does not resolve here.
    assert_eq!(
        fails(&env, uncached(&env, "direct")),
        format!(
            "could not reach the Lightsail endpoint for us-east-1: cannot resolve {PROXY_ONLY}: no such host, or no DNS server answered (check the network, proxy settings and AWS_ENDPOINT_URL_LIGHTSAIL)"
        )
    );
    assert!(proxy.log().is_empty());

    env.set_env("HTTPS_PROXY", proxy.url());
    succeeds(&env, uncached(&env, "proxied"));
    assert_eq!(
        proxy.request_lines(),
        [format!("CONNECT {PROXY_ONLY}:443 HTTP/1.1")]
    );
    assert_eq!(env.fake.login_calls(), 1);
}

#[test]
fn http_proxy_gets_absolute_uris_for_an_http_endpoint() {
    let mut env = TestEnv::new();
    let proxy = TestProxy::start();
    proxy.route(PLAIN_PROXY_ONLY, local(env.fake.port()));
    env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("http://{PLAIN_PROXY_ONLY}"),
    );
    // Control: HTTPS_PROXY is not for http:// endpoints, so this goes direct and cannot resolve.
    env.set_env("HTTPS_PROXY", proxy.url());
    let direct = fails(&env, uncached(&env, "direct"));
    assert!(
        direct.starts_with(&format!(
            "could not reach the Lightsail endpoint for us-east-1: cannot resolve {PLAIN_PROXY_ONLY}"
        )),
        "{direct}"
    );
    assert!(proxy.log().is_empty());

    env.set_env("HTTP_PROXY", proxy.url());
    succeeds(&env, uncached(&env, "proxied"));
    assert_eq!(
        proxy.request_lines(),
        [format!("POST http://{PLAIN_PROXY_ONLY}/ HTTP/1.1")]
    );
    assert_eq!(env.fake.login_calls(), 1);
}

#[test]
fn lower_case_and_all_proxy_variables_are_honoured() {
    let mut env = TestEnv::new();
    let (ca, front) = tls_front(&env);
    let proxy = TestProxy::start();
    proxy.route(PROXY_ONLY, local(front.port()));
    proxy.route(PLAIN_PROXY_ONLY, local(env.fake.port()));
    env.set_env("AWS_CA_BUNDLE", ca.pem());
    let https = format!("https://{PROXY_ONLY}");
    let http = format!("http://{PLAIN_PROXY_ONLY}");
    let cases = [
        (
            "https_proxy",
            &https,
            format!("CONNECT {PROXY_ONLY}:443 HTTP/1.1"),
        ),
        (
            "ALL_PROXY",
            &https,
            format!("CONNECT {PROXY_ONLY}:443 HTTP/1.1"),
        ),
        (
            "all_proxy",
            &https,
            format!("CONNECT {PROXY_ONLY}:443 HTTP/1.1"),
        ),
        ("http_proxy", &http, format!("POST {http}/ HTTP/1.1")),
        ("all_proxy", &http, format!("POST {http}/ HTTP/1.1")),
    ];
    for (n, (variable, endpoint, line)) in cases.into_iter().enumerate() {
        let mut cmd = uncached(&env, &n.to_string());
        cmd.env("AWS_ENDPOINT_URL_LIGHTSAIL", endpoint)
            .env(variable, proxy.url());
        succeeds(&env, cmd);
        assert_eq!(proxy.request_lines().last(), Some(&line), "{variable}");
        assert_eq!(proxy.log().len(), n + 1, "{variable}: one request");
    }
}

#[test]
fn no_proxy_hosts_go_direct_by_name_suffix_ip_range_or_star() {
    let mut env = TestEnv::new();
    let (ca, front) = tls_front(&env);
    let proxy = TestProxy::start();
    // Were the proxy used, every call would fail.
    proxy.refuse_with(502);
    env.set_env("HTTPS_PROXY", proxy.url());
    env.set_env("HTTP_PROXY", proxy.url());
    env.set_env("AWS_CA_BUNDLE", ca.pem());
    let localhost = format!("https://localhost:{}", front.port());
    let ip = env.fake.url();

    // Control: without NO_PROXY, or with another host in it, the proxy gets the call (and the
    // SDK's retries).
    for (n, no_proxy) in ["", "example.com,.example.org"].into_iter().enumerate() {
        let before = proxy.log().len();
        let mut cmd = uncached(&env, &format!("control-{n}"));
        cmd.env("AWS_ENDPOINT_URL_LIGHTSAIL", &localhost)
            .env("NO_PROXY", no_proxy);
        let refused = fails(&env, cmd);
        assert!(
            refused.starts_with(&format!(
                "the proxy {} would not connect",
                proxy.host_port()
            )),
            "{refused}"
        );
        assert!(proxy.log().len() > before);
    }
    let before = proxy.log().len();

    let direct = [
        ("NO_PROXY", "localhost", &localhost),
        ("no_proxy", "localhost", &localhost),
        ("NO_PROXY", "example.com, localhost", &localhost),
        ("NO_PROXY", "*", &localhost),
        ("NO_PROXY", "127.0.0.1", &ip),
        ("NO_PROXY", "127.0.0.0/8", &ip),
    ];
    for (n, (variable, value, endpoint)) in direct.into_iter().enumerate() {
        let mut cmd = uncached(&env, &n.to_string());
        cmd.env("AWS_ENDPOINT_URL_LIGHTSAIL", endpoint)
            .env(variable, value);
        succeeds(&env, cmd);
        assert_eq!(proxy.log().len(), before, "{variable}={value}: not proxied");
    }

    // A suffix sends the proxy-only name direct, where it cannot resolve: the proxy sees nothing.
    for (n, suffix) in [".proxy-only.invalid", "proxy-only.invalid"]
        .into_iter()
        .enumerate()
    {
        let mut cmd = uncached(&env, &format!("suffix-{n}"));
        cmd.env(
            "AWS_ENDPOINT_URL_LIGHTSAIL",
            format!("https://{PROXY_ONLY}"),
        )
        .env("NO_PROXY", suffix);
        let message = fails(&env, cmd);
        assert!(
            message.contains(&format!("cannot resolve {PROXY_ONLY}")),
            "{suffix}: {message}"
        );
        assert_eq!(proxy.log().len(), before, "{suffix}: not proxied");
    }
}

#[test]
fn proxy_credentials_are_sent_as_proxy_authorization_and_never_shown() {
    let mut env = TestEnv::new();
    let (ca, front) = tls_front(&env);
    let proxy = TestProxy::start();
    proxy.route(PROXY_ONLY, local(front.port()));
    proxy.route(PLAIN_PROXY_ONLY, local(env.fake.port()));
    proxy.require_credentials(PROXY_USER, PROXY_PASSWORD);
    env.set_env("AWS_CA_BUNDLE", ca.pem());
    // Debug logs too: the harness scans stdout and stderr for the password and its Basic token.
    env.set_env("DOCKER_CREDENTIAL_LIGHTSAIL_LOG", "trace");
    let with_credentials = proxy.url_with_credentials(PROXY_USER, PROXY_PASSWORD);
    let expected = Some(basic_authorization(PROXY_USER, PROXY_PASSWORD));

    let mut tunnel = uncached(&env, "tunnel");
    tunnel
        .env(
            "AWS_ENDPOINT_URL_LIGHTSAIL",
            format!("https://{PROXY_ONLY}"),
        )
        .env("HTTPS_PROXY", &with_credentials);
    let out = get(&env, tunnel);
    assert!(out.credentials().secret.starts_with("LSPW-"));
    assert!(
        out.stderr.contains(&format!(
            "Lightsail endpoint {PROXY_ONLY}:443 through the proxy {}",
            proxy.host_port()
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(PROXY_PASSWORD));
    let log = proxy.log();
    assert_eq!(
        log[0].request_line,
        format!("CONNECT {PROXY_ONLY}:443 HTTP/1.1")
    );
    assert_eq!(log[0].proxy_authorization, expected);

    let mut forward = uncached(&env, "forward");
    forward
        .env(
            "AWS_ENDPOINT_URL_LIGHTSAIL",
            format!("http://{PLAIN_PROXY_ONLY}"),
        )
        .env("HTTP_PROXY", &with_credentials);
    succeeds(&env, forward);
    let log = proxy.log();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[1].request_line,
        format!("POST http://{PLAIN_PROXY_ONLY}/ HTTP/1.1")
    );
    assert_eq!(log[1].proxy_authorization, expected);
}

#[test]
fn a_proxy_that_wants_credentials_is_named_without_the_password() {
    let mut env = TestEnv::new();
    let proxy = TestProxy::start();
    proxy.require_credentials(PROXY_USER, PROXY_PASSWORD);
    proxy.route(PLAIN_PROXY_ONLY, local(env.fake.port()));
    env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("https://{PROXY_ONLY}"),
    );
    let p = proxy.host_port();
    let wrong = proxy.url_with_credentials(PROXY_USER, "Wrong-Pass-MUST-NOT-LEAK-0002");
    let expected = |variable: &str| {
        format!(
            "the proxy {p} asks for credentials (407 Proxy Authentication Required): put the right user and password in {variable} (http://user:password@{p})"
        )
    };
    // Through a CONNECT tunnel: none, or the wrong ones (the harness scans for that password).
    for (n, (variable, url)) in [
        ("HTTPS_PROXY", proxy.url()),
        ("HTTPS_PROXY", wrong.clone()),
        ("https_proxy", wrong.clone()),
    ]
    .into_iter()
    .enumerate()
    {
        let before = proxy.log().len();
        let mut cmd = uncached(&env, &n.to_string());
        cmd.env(variable, url);
        assert_eq!(fails(&env, cmd), expected(variable));
        assert!(proxy.log().len() > before, "the proxy was asked");
    }
    // A forward proxy answers the request itself with 407.
    let mut cmd = uncached(&env, "forward");
    cmd.env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("http://{PLAIN_PROXY_ONLY}"),
    )
    .env("HTTP_PROXY", &wrong);
    assert_eq!(fails(&env, cmd), expected("HTTP_PROXY"));
    assert_eq!(env.fake.login_calls(), 0);
}

#[test]
fn a_proxy_answering_5xx_is_named() {
    let mut env = TestEnv::new();
    let proxy = TestProxy::start();
    let p = proxy.host_port();
    proxy.refuse_with(502);
    env.set_env("HTTPS_PROXY", proxy.url());
    env.set_env("HTTP_PROXY", proxy.url());
    env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("https://{PROXY_ONLY}"),
    );
    assert_eq!(
        fails(&env, uncached(&env, "tunnel")),
        format!(
            "the proxy {p} would not connect to the Lightsail endpoint {PROXY_ONLY}:443 (it refused to open a tunnel (CONNECT)): check that the proxy allows it, or list the host in NO_PROXY to bypass the proxy"
        )
    );
    assert!(proxy.wait_for_requests(1, std::time::Duration::ZERO));

    proxy.refuse_with(503);
    let mut cmd = uncached(&env, "forward");
    cmd.env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("http://{PLAIN_PROXY_ONLY}"),
    );
    assert_eq!(
        fails(&env, cmd),
        format!(
            "the proxy {p} would not connect to the Lightsail endpoint {PLAIN_PROXY_ONLY}:80 (it answered 503 Service Unavailable): check that the proxy allows it, or list the host in NO_PROXY to bypass the proxy"
        )
    );
    assert_eq!(env.fake.login_calls(), 0);
}

#[test]
fn a_proxy_that_is_not_there_is_named_without_the_password() {
    let mut env = TestEnv::new();
    let closed = ClosedPort::new();
    let port = closed.port();
    // The real AWS endpoint: with the proxy refused, nothing leaves the machine, and its name is
    // never resolved here.
    env.remove_env("AWS_ENDPOINT_URL_LIGHTSAIL");
    env.set_env(
        "HTTPS_PROXY",
        format!("http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}"),
    );
    assert_eq!(
        fails(&env, env.cmd(&["get"])),
        format!(
            "could not reach the Lightsail endpoint lightsail.us-east-1.amazonaws.com:443 through the proxy 127.0.0.1:{port}: Connection refused (os error 111) (check HTTPS_PROXY and NO_PROXY)"
        )
    );
}

#[test]
fn a_proxy_value_that_is_not_a_url_is_named_without_the_password() {
    let mut env = TestEnv::new();
    // The real AWS endpoint: a proxy setting that cannot work must not mean going direct.
    env.remove_env("AWS_ENDPOINT_URL_LIGHTSAIL");
    for (variable, value, shown) in [
        (
            "HTTPS_PROXY",
            format!("http://{PROXY_USER}:{PROXY_PASSWORD}@proxy corp:3128"),
            "proxy corp:3128",
        ),
        (
            "https_proxy",
            format!("ftp://{PROXY_USER}:{PROXY_PASSWORD}@proxy.corp:21"),
            "proxy.corp:21",
        ),
        ("ALL_PROXY", "http://".to_string(), ""),
    ] {
        let mut cmd = env.cmd(&["get"]);
        cmd.env(variable, &value);
        let shown = match shown {
            "" => String::new(),
            shown => format!(" ({shown})"),
        };
        assert_eq!(
            fails(&env, cmd),
            format!(
                "the proxy setting {variable}{shown} is not a proxy URL: set it to http://[user:password@]host:port, or unset it"
            )
        );
    }
    assert_eq!(env.fake.login_calls(), 0);
}

#[test]
fn an_https_proxy_that_answers_in_plain_http_is_named() {
    let mut env = TestEnv::new();
    let (ca, front) = tls_front(&env);
    let proxy = TestProxy::start();
    proxy.route(PROXY_ONLY, local(front.port()));
    env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("https://{PROXY_ONLY}"),
    );
    env.set_env("AWS_CA_BUNDLE", ca.pem());
    // A proxy that speaks plain HTTP, named with `https://`.
    env.set_env(
        "HTTPS_PROXY",
        proxy
            .url_with_credentials(PROXY_USER, PROXY_PASSWORD)
            .replacen("http://", "https://", 1),
    );
    let port = proxy.host_port();
    let expected = |port: &str| {
        format!(
            "the proxy {port} of HTTPS_PROXY answered in plain HTTP, not TLS: write its URL as http://{port}"
        )
    };
    assert_eq!(fails(&env, env.cmd(&["get"])), expected(&port));

    // A proxy that answers the TLS greeting with an HTTP error, as squid does.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.read(&mut [0; 1024]);
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let mut cmd = env.cmd(&["get"]);
    cmd.env("HTTPS_PROXY", format!("https://{port}"));
    assert_eq!(fails(&env, cmd), expected(&port));
    assert_eq!(env.fake.login_calls(), 0);
}

#[test]
fn the_leak_scan_knows_proxy_passwords() {
    // Control for the scans above: a run that printed the password would fail its test.
    let mut cmd = Command::new("true");
    cmd.env(
        "https_proxy",
        format!("http://{PROXY_USER}:{PROXY_PASSWORD}@proxy:3128"),
    );
    let secrets = crate::support::secrets_in_env(&cmd);
    assert!(secrets.contains(&PROXY_PASSWORD.to_string()));
    assert!(secrets.contains(&basic_authorization(PROXY_USER, PROXY_PASSWORD)));
}

// ---- certificate authorities ------------------------------------------------------------------

/// The message of an untrusted certificate names both settings.
fn untrusted(port: u16) -> String {
    format!(
        "the TLS certificate of the Lightsail endpoint localhost:{port} is not trusted (invalid peer certificate: UnknownIssuer): if a private CA or a TLS-inspecting proxy signs it, name its PEM file in AWS_CA_BUNDLE or in ca_bundle of your AWS profile"
    )
}

/// A test environment whose endpoint is the TLS front, by the name `localhost`.
fn tls_env() -> (TestEnv, TestCa, TlsFront) {
    let mut env = TestEnv::new();
    let (ca, front) = tls_front(&env);
    env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("https://localhost:{}", front.port()),
    );
    (env, ca, front)
}

#[test]
fn aws_ca_bundle_trusts_a_private_ca() {
    let (mut env, ca, front) = tls_env();
    assert_eq!(
        fails(&env, uncached(&env, "control")),
        untrusted(front.port())
    );
    assert_eq!(env.fake.login_calls(), 0);
    env.set_env("AWS_CA_BUNDLE", ca.pem());
    succeeds(&env, uncached(&env, "trusted"));
    assert_eq!(env.fake.login_calls(), 1);
}

#[test]
fn a_profile_ca_bundle_trusts_a_private_ca() {
    let (mut env, ca, front) = tls_env();
    let pem = ca.pem();
    env.write_aws_config(&format!("[profile other]\nca_bundle = {}\n", pem.display()));
    // Control: another profile's ca_bundle does not count.
    assert_eq!(
        fails(&env, uncached(&env, "control")),
        untrusted(front.port())
    );

    env.write_aws_config(&format!("[default]\nca_bundle = {}\n", pem.display()));
    succeeds(&env, uncached(&env, "default"));

    env.write_aws_config(&format!(
        "[default]\nregion = us-east-1\n[profile dev]\nca_bundle = {}\n",
        pem.display()
    ));
    let mut cmd = uncached(&env, "dev");
    cmd.env("AWS_PROFILE", "dev");
    succeeds(&env, cmd);
    assert_eq!(env.fake.login_calls(), 2);
}

#[test]
fn aws_ca_bundle_wins_over_the_profile() {
    let (mut env, ca, _front) = tls_env();
    env.write_aws_config(&format!("[default]\nca_bundle = {}\n", ca.pem().display()));
    let missing = env.root().join("missing.pem");
    env.set_env("AWS_CA_BUNDLE", &missing);
    assert_eq!(
        fails(&env, uncached(&env, "env")),
        format!(
            "cannot read the CA bundle {} (AWS_CA_BUNDLE): No such file or directory (os error 2)",
            missing.display()
        )
    );
}

#[test]
fn the_bundle_is_trusted_in_addition_to_the_system_roots() {
    let (mut env, ca, front) = tls_env();
    let other = TestCa::new(&env.root().join("other-ca"), "another CA");
    // The front's CA stands for the system's roots, the other CA for the bundle.
    env.set_env("AWS_CA_BUNDLE", other.pem());
    assert_eq!(
        fails(&env, uncached(&env, "control")),
        untrusted(front.port())
    );
    env.set_env("SSL_CERT_FILE", ca.pem());
    succeeds(&env, uncached(&env, "both"));
}

#[test]
fn bad_bundles_are_named_in_one_line() {
    let (mut env, ca, _front) = tls_env();
    let dir = env.root().join("bundles");
    std::fs::create_dir(&dir).unwrap();
    let write = |name: &str, contents: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    };
    let key_only = std::fs::read(ca.pem().with_file_name("ca.key")).unwrap();
    let cases: Vec<(std::path::PathBuf, String)> = vec![
        (
            dir.join("missing.pem"),
            "cannot read the CA bundle {} (AWS_CA_BUNDLE): No such file or directory (os error 2)".into(),
        ),
        (
            dir.clone(),
            "cannot read the CA bundle {} (AWS_CA_BUNDLE): Is a directory (os error 21)".into(),
        ),
        (
            write("empty.pem", b""),
            "the CA bundle {} (AWS_CA_BUNDLE) holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ),
        (
            write("key-only.pem", &key_only),
            "the CA bundle {} (AWS_CA_BUNDLE) holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ),
        (
            write(
                "bad-base64.pem",
                b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            ),
            "the CA bundle {} (AWS_CA_BUNDLE) cannot be used: not valid PEM: base64 decode error".into(),
        ),
        (
            write(
                "not-x509.pem",
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
            "the CA bundle {} (AWS_CA_BUNDLE) cannot be used: certificate 1 is not a usable CA certificate".into(),
        ),
    ];
    for (n, (path, expected)) in cases.into_iter().enumerate() {
        let mut cmd = uncached(&env, &n.to_string());
        cmd.env("AWS_CA_BUNDLE", &path);
        let message = fails(&env, cmd);
        let expected = expected.replace("{}", &path.display().to_string());
        assert!(
            message.starts_with(&expected),
            "{message}\nexpected {expected}"
        );
    }
    // The profile's, named as such.
    let missing = dir.join("profile-missing.pem");
    env.write_aws_config(&format!("[default]\nca_bundle = {}\n", missing.display()));
    assert_eq!(
        fails(&env, uncached(&env, "profile")),
        format!(
            "cannot read the CA bundle {} (ca_bundle in AWS profile 'default'): No such file or directory (os error 2)",
            missing.display()
        )
    );
    assert_eq!(env.fake.login_calls(), 0);
}

#[test]
fn a_cache_hit_reads_no_bundle() {
    let (mut env, ca, _front) = tls_env();
    env.set_env("AWS_CA_BUNDLE", ca.pem());
    succeeds(&env, env.cmd(&["get"]));
    let missing: &Path = Path::new("/nonexistent/ca.pem");
    env.set_env("AWS_CA_BUNDLE", missing);
    // The hit path builds no HTTP client: the bad bundle is not even read.
    succeeds(&env, env.cmd(&["get"]));
    // Control: a miss with the same setting reads it.
    assert!(fails(&env, uncached(&env, "miss")).starts_with("cannot read the CA bundle"));
    assert_eq!(env.fake.login_calls(), 1);
}
