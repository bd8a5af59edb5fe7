//! Certificate authorities made for a test (openssl), and a TLS front for the fake endpoint
//! (socat) whose server certificate such a CA signed: the one place the suite makes either.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// A throwaway certificate authority: its certificate is `pem()`, its key stays in its folder.
pub struct TestCa {
    dir: PathBuf,
}

impl TestCa {
    /// Makes a CA called `name` in the new folder `dir` (ECDSA P-256: quick to make).
    pub fn new(dir: &Path, name: &str) -> TestCa {
        fs::create_dir_all(dir).expect("cannot create the CA folder");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        );
        TestCa {
            dir: dir.to_path_buf(),
        }
    }

    /// The CA's certificate, PEM.
    pub fn pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server certificate for `names` (DNS names), signed by this CA, with its key after it in
    /// one PEM file, as socat takes it.
    pub fn server_pem(&self, names: &[&str]) -> PathBuf {
        let stem = format!("server-{}", names.join("-"));
        let key = format!("{stem}.key");
        let csr = format!("{stem}.csr");
        let crt = format!("{stem}.crt");
        let ext = format!("{stem}.ext");
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={}", names[0]),
            ],
        );
        let alt_names: Vec<String> = names.iter().map(|name| format!("DNS:{name}")).collect();
        fs::write(
            self.dir.join(&ext),
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
                alt_names.join(",")
            ),
        )
        .expect("cannot write the extensions file");
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        let pem = [
            fs::read(self.dir.join(&crt)).expect("cannot read the server certificate"),
            fs::read(self.dir.join(&key)).expect("cannot read the server key"),
        ]
        .concat();
        let path = self.dir.join(format!("{stem}.pem"));
        fs::write(&path, pem).expect("cannot write the server PEM");
        path
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed (apt-get install openssl)");
    assert!(status.success(), "openssl {args:?}");
}

/// TLS on a port of 127.0.0.1 in front of a plain-HTTP port (the fake's), with the server
/// certificate of `server_pem`. Stops on drop.
pub struct TlsFront {
    port: u16,
    socat: Child,
}

impl TlsFront {
    pub fn start(server_pem: &Path, target_port: u16) -> TlsFront {
        let port = free_port();
        let socat = Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},verify=0",
                server_pem.display()
            ))
            .arg(format!("TCP:127.0.0.1:{target_port}"))
            .stderr(Stdio::null())
            .spawn()
            .expect("socat is needed (apt-get install socat, or run tests/e2e/install-deps)");
        let front = TlsFront { port, socat };
        // Wait for the event "the front accepts connections"; the bound only ends a hung test.
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "socat did not start listening");
            std::thread::sleep(Duration::from_millis(5));
        }
        front
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.socat.kill();
        let _ = self.socat.wait();
    }
}
