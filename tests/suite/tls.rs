//! The HTTPS client (rustls on ring) really verifies certificates: the fake endpoint behind a
//! TLS terminator (socat) with a throwaway CA is refused until that CA is trusted.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::{TestEnv, free_port};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed (apt-get install openssl)");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA and a server certificate for `localhost`, signed by it.
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext",
        ],
    );
    let pem = [
        std::fs::read(dir.join("server.crt")).unwrap(),
        std::fs::read(dir.join("server.key")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("server.pem"), pem).unwrap();
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn https_endpoint_is_verified_against_the_trusted_roots() {
    let mut env = TestEnv::new();
    let dir = env.root().join("tls");
    std::fs::create_dir(&dir).unwrap();
    make_certificates(&dir);

    let port = free_port();
    let _terminator = KillOnDrop(
        Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert=server.pem,verify=0"
            ))
            .arg(format!("TCP:127.0.0.1:{}", env.fake.port()))
            .current_dir(&dir)
            .stderr(Stdio::null())
            .spawn()
            .expect("socat is needed (apt-get install socat, or run tests/e2e/install-deps)"),
    );
    // Wait (bounded) for the event "the terminator accepts connections".
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut listening = false;
    while !listening && std::time::Instant::now() < deadline {
        listening = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if !listening {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    assert!(listening, "socat did not start listening");
    env.set_env(
        "AWS_ENDPOINT_URL_LIGHTSAIL",
        format!("https://localhost:{port}"),
    );
    let host = env.registry_host("us-east-1");

    let untrusted = env.run(&["get"], &host);
    assert_eq!(untrusted.code, Some(1));
    assert!(
        untrusted.stdout.starts_with(
            "could not reach the Lightsail endpoint for us-east-1: invalid peer certificate"
        ),
        "{}",
        untrusted.stdout
    );
    assert_eq!(
        env.fake.login_calls(),
        0,
        "nothing sent over an unverified connection"
    );

    env.set_env("SSL_CERT_FILE", dir.join("ca.pem"));
    let trusted = env.run(&["get"], &host);
    assert!(trusted.credentials().secret.starts_with("LSPW-"));
    assert_eq!(env.fake.login_calls(), 1);
}
