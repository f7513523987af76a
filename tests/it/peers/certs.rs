//! Test certificates made with the `openssl` CLI: [`Certs`].

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{succeed, TempDir};

/// Runs the `openssl` CLI in `dir`; panics with its output (and the setup
/// script's name when it is missing) if that fails.
fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(dir);
    succeed(
        &mut cmd,
        &format!("openssl {args:?}"),
        "; run scripts/setup",
    );
}

/// Certificates for one test, made with the `openssl` CLI in a temp dir:
///
/// - `ca.pem`: the test CA (RSA 2048), which signs everything below;
/// - `server.pem`/`server.key`: CN and SAN `localhost`, SAN `IP:127.0.0.1`;
/// - `wrong.pem`/`wrong.key`: SAN `DNS:wrong.example` only;
/// - `client.pem`/`client.key`: a client certificate for mTLS, and
///   `client-keystore.pem` holding its key and certificate in one file
///   (what `ssl.keystore.type=PEM` reads);
/// - `other-ca.pem`: a second CA that signed none of them.
///
/// Keys are unencrypted PKCS#8 PEM. Leaf certificates are X.509 v3 (an
/// extension file is always given: without one openssl writes v1, which
/// rustls refuses).
pub struct Certs {
    dir: TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        let dir = TempDir::new("certs");
        let d = dir.path();
        openssl(
            d,
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
                "/CN=kwait test CA",
            ],
        );
        // A P-256 key is ~100x faster to make than RSA; the leaves besides
        // the main server certificate use one.
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let leaf = |name: &str, cn: &str, ext: &str, rsa: bool| {
            std::fs::write(d.join(format!("{name}.ext")), format!("{ext}\n")).expect("write ext");
            let mut args = vec!["req"];
            if rsa {
                args.extend(["-newkey", "rsa:2048"]);
            } else {
                args.extend(ec);
            }
            let key = format!("{name}.key");
            let csr = format!("{name}.csr");
            let subj = format!("/CN={cn}");
            args.extend(["-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(d, &args);
            let pem = format!("{name}.pem");
            let extfile = format!("{name}.ext");
            openssl(
                d,
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
                    &pem,
                    "-days",
                    "2",
                    "-extfile",
                    &extfile,
                ],
            );
        };
        leaf(
            "server",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            true,
        );
        leaf(
            "wrong",
            "wrong.example",
            "subjectAltName=DNS:wrong.example",
            false,
        );
        leaf(
            "client",
            "kwait test client",
            "extendedKeyUsage=clientAuth",
            false,
        );
        let mut keystore = std::fs::read(d.join("client.key")).expect("read client.key");
        keystore.extend(std::fs::read(d.join("client.pem")).expect("read client.pem"));
        std::fs::write(d.join("client-keystore.pem"), keystore).expect("write keystore");
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend([
            "-nodes",
            "-keyout",
            "other-ca.key",
            "-out",
            "other-ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=kwait untrusted CA",
        ]);
        openssl(d, &args);
        Certs { dir }
    }

    /// A file in the certificates' directory, e.g. `"ca.pem"`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    pub fn other_ca(&self) -> PathBuf {
        self.path("other-ca.pem")
    }

    /// (certificate, key) for `localhost` and 127.0.0.1.
    pub fn server(&self) -> (PathBuf, PathBuf) {
        (self.path("server.pem"), self.path("server.key"))
    }

    /// (certificate, key) valid only for `wrong.example`.
    pub fn wrong_name(&self) -> (PathBuf, PathBuf) {
        (self.path("wrong.pem"), self.path("wrong.key"))
    }

    /// (certificate, key) of the mTLS client.
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (self.path("client.pem"), self.path("client.key"))
    }
}
