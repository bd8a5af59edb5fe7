//! The HTTPS client (rustls on ring) really verifies certificates: the fake endpoint behind a
//! TLS front with a throwaway CA is refused until that CA is trusted through the system's store
//! (`SSL_CERT_FILE`). `network.rs` has the CA bundle settings.

use crate::support::TestEnv;
use crate::support::tls::{TestCa, TlsFront};

#[test]
fn https_endpoint_is_verified_against_the_trusted_roots() {
    let mut env = TestEnv::new();
    let ca = TestCa::new(&env.root().join("tls"), "test CA");
    let front = TlsFront::start(&ca.server_pem(&["localhost"]), env.fake.port());
    env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("https://localhost:{}", front.port()),
    );
    let host = env.registry_host("us-east-1");

    let untrusted = env.run(&["get"], &host);
    assert_eq!(untrusted.code, Some(1));
    assert!(
        untrusted.stdout.starts_with(&format!(
            "the TLS certificate of the Lightsail endpoint localhost:{} is not trusted (invalid peer certificate: UnknownIssuer)",
            front.port()
        )),
        "{}",
        untrusted.stdout
    );
    assert_eq!(
        env.fake.login_calls(),
        0,
        "nothing sent over an unverified connection"
    );

    env.set_env("SSL_CERT_FILE", ca.pem());
    let trusted = env.run(&["get"], &host);
    assert!(trusted.credentials().secret.starts_with("LSPW-"));
    assert_eq!(env.fake.login_calls(), 1);
}
