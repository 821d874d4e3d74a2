//! The clients over HTTPS, as a server on the internet is reached: through a
//! TLS-terminating proxy in front of `closedcircuit serve`. The certificate is checked
//! against the system's trust store (here `SSL_CERT_FILE` naming a private CA); one that
//! is not trusted or names another host is refused before any credential is sent.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::*;

#[test]
fn the_cli_and_a_camera_work_over_https_and_refuse_a_certificate_they_cannot_trust() -> TestResult {
    let root = tempfile::tempdir()?;
    let server = Server::start(root.path())?;
    let ca = issue_certificates(root.path())?;
    let proxy = tls_proxy(root.path(), &server.url)?;

    let trusting = |user: User| User {
        server: format!("https://localhost:{}", proxy.port()),
        env: vec![("SSL_CERT_FILE".into(), ca.clone())],
        ..user
    };
    let alice = trusting(User::new(root.path(), &server, "alice@example.com"));
    alice.ok(&["account", "signup", "--email", &alice.email])?;
    let (camera, acked) = alice.pair_camera("Porch", &root.path().join("porch"), 2)?;
    assert_eq!(acked.len(), 2, "the camera uploads over HTTPS");
    let events = alice.json(&["events", "list", "--camera", &camera])?;
    let events = events.as_array().ok_or("not a list")?;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["verified"] == true));

    // Nothing trusts the private CA: refused, and the message says why.
    let untrusting = User {
        env: Vec::new(),
        ..trusting(User::new(root.path(), &server, "bob@example.com"))
    };
    refused(&untrusting, "SSL_CERT_FILE")?;
    // Trusted CA, but the certificate names `localhost`, not the address dialled.
    let wrong_name = User {
        server: format!("https://127.0.0.1:{}", proxy.port()),
        ..trusting(User::new(root.path(), &server, "carol@example.com"))
    };
    refused(&wrong_name, "certificate")?;
    Ok(())
}

/// Sign-up must fail before reaching the server, naming the certificate as the cause.
fn refused(user: &User, why: &str) -> TestResult {
    let out = user.run(&["account", "signup", "--email", &user.email])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{} signed up over untrusted TLS",
        user.email
    );
    assert!(stderr.contains(why), "unhelpful error: {stderr}");
    Ok(())
}

/// A private CA and a certificate it signs for `localhost`; returns the CA's PEM path.
fn issue_certificates(dir: &Path) -> TestResult<String> {
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let extensions = path("leaf.ext");
    std::fs::write(
        &extensions,
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\n",
    )?;
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Closed Circuit test CA",
            "-keyout",
            &path("ca.key"),
            "-out",
            &path("ca.pem"),
        ],
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &path("leaf.key"),
            "-out",
            &path("leaf.csr"),
        ],
        &[
            "x509",
            "-req",
            "-in",
            &path("leaf.csr"),
            "-CA",
            &path("ca.pem"),
            "-CAkey",
            &path("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &extensions,
            "-out",
            &path("leaf.pem"),
        ],
    ];
    for args in steps {
        let out = Command::new("openssl").args(args).output()?;
        if !out.status.success() {
            return Err(
                format!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into(),
            );
        }
    }
    Ok(path("ca.pem"))
}

/// A TLS-terminating proxy in front of `upstream`, with the certificate for `localhost`,
/// running on its own thread for the rest of the test.
fn tls_proxy(dir: &Path, upstream: &str) -> TestResult<SocketAddr> {
    let certs =
        CertificateDer::pem_file_iter(dir.join("leaf.pem"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(dir.join("leaf.key"))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    // A refused handshake is what the test wants; it just ends here.
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                    }
                });
            }
        });
    });
    Ok(addr)
}
