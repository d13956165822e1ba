//! The leaf-issuing API the proxy and the transparent listener use, exercised by real TLS clients
//! (curl/OpenSSL, openssl s_client, NSS tstclnt) against a real loopback TLS server.
mod ca_support;

use std::net::SocketAddr;
use std::sync::Arc;

use ca_support::{tool, Sandbox};
use discord_mitm::ca::LeafAuthority;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves "hello from <sni>" over TLS with the given config until the runtime ends.
async fn serve(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let sni = tls
                    .get_ref()
                    .1
                    .server_name()
                    .unwrap_or("(none)")
                    .to_string();
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let body = format!("hello from {sni}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

fn curl(ca: &std::path::Path, url: &str, resolve: Option<String>) -> std::process::Output {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg(url);
    if let Some(resolve) = resolve {
        cmd.args(["--resolve", &resolve]);
    }
    cmd.output()
        .expect("curl (scripts/setup-test-deps installs it)")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_listener_serves_trusted_leaves_to_curl_for_names_and_ips() {
    let sandbox = Sandbox::with_ca();
    let authority = Arc::new(
        LeafAuthority::from_ca_dir(&sandbox.ca_dir)
            .unwrap()
            .with_default_host("127.0.0.1"),
    );
    let addr = serve(authority.sni_server_config()).await;
    let ca = sandbox.ca_pem();
    for host in ["discord.com", "gateway.discord.gg", "cdn.discordapp.com"] {
        let (ca, resolve) = (ca.clone(), format!("{host}:{}:127.0.0.1", addr.port()));
        let url = format!("https://{host}:{}/api/v10/gateway", addr.port());
        let out = blocking(move || curl(&ca, &url, Some(resolve))).await;
        assert!(
            out.status.success(),
            "{host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("hello from {host}")
        );
    }
    // curl sends no SNI for an IP; the default host's leaf carries an IP SAN that curl accepts.
    let (ca2, url) = (ca.clone(), format!("https://127.0.0.1:{}/", addr.port()));
    let out = blocking(move || curl(&ca2, &url, None)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(authority.cached_hosts(), 4);

    // openssl s_client with strict verification, hostname checked.
    let port = addr.port();
    let ca3 = ca.clone();
    let out = blocking(move || {
        std::process::Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-servername",
                "discord.com",
            ])
            .args([
                "-verify_return_error",
                "-verify_hostname",
                "discord.com",
                "-brief",
                "-CAfile",
            ])
            .arg(&ca3)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await;
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Verification: OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_config_is_trusted_for_its_host_only() {
    let sandbox = Sandbox::with_ca();
    let authority = LeafAuthority::from_ca_dir(&sandbox.ca_dir).unwrap();
    let config = authority.server_config_for("discord.com").unwrap();
    let addr = serve(config).await;
    let ca = sandbox.ca_pem();
    let port = addr.port();
    let (ca1, url) = (ca.clone(), format!("https://discord.com:{port}/"));
    let ok =
        blocking(move || curl(&ca1, &url, Some(format!("discord.com:{port}:127.0.0.1")))).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let (ca2, url) = (ca.clone(), format!("https://evil.example:{port}/"));
    let wrong =
        blocking(move || curl(&ca2, &url, Some(format!("evil.example:{port}:127.0.0.1")))).await;
    assert!(
        !wrong.status.success(),
        "a discord.com leaf must not pass for evil.example"
    );
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("evil.example") || stderr.contains("subject"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nss_tstclnt_accepts_the_leaf_with_the_ca_in_its_db() {
    let sandbox = Sandbox::with_ca();
    let db = sandbox.dir.path().join("nssdb");
    sandbox.make_nss_db(&db);
    let db_arg = format!("sql:{}", db.display());
    tool(
        "certutil",
        &["-A", "-d", &db_arg, "-t", "C,,", "-n", "test-ca", "-i"],
        &[sandbox.ca_pem().as_os_str()],
    );
    let authority = Arc::new(LeafAuthority::from_ca_dir(&sandbox.ca_dir).unwrap());
    let addr = serve(authority.sni_server_config()).await;
    let port = addr.port().to_string();
    let out = blocking(move || {
        std::process::Command::new(ca_support::find("tstclnt"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-a",
                "discord.com",
                "-d",
                &db_arg,
                "-Q",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
