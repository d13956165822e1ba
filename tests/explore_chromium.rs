//! The live explorer page in headless Chromium, driven over the DevTools protocol: it loads
//! with no console errors, lists the routes, shows an exchange made after it opened, and opens
//! a gateway frame. The screenshot lands in target/explore-chromium.png.
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use record_support::*;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use upstream::*;

/// Headless Chromium with its DevTools endpoint.
struct Browser {
    child: Child,
    ws_url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium_binary() -> String {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if found {
            return name.to_string();
        }
    }
    panic!("no chromium: run scripts/setup-test-deps (installs Debian's chromium)");
}

fn launch() -> Browser {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium_binary())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-proxy-server",
            "--window-size=1400,900",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let ws_url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("chromium printed its DevTools address");
    Browser {
        child,
        ws_url,
        _profile: profile,
    }
}

/// One DevTools connection, attached to one page (flat sessions).
struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    /// Console errors, exceptions and failed loads seen so far.
    errors: Vec<String>,
}

impl Cdp {
    async fn connect(url: &str) -> Cdp {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Cdp {
            ws,
            next_id: 1,
            session: None,
            errors: Vec::new(),
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer"))
                .unwrap()
                .unwrap();
            let Message::Text(text) = frame else { continue };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["id"] == id {
                assert!(value.get("error").is_none(), "{method}: {value}");
                return value["result"].clone();
            }
            self.note_event(&value);
        }
    }

    fn note_event(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.errors
                    .push(format!("console.error: {}", params["args"]));
            }
            Some("Runtime.exceptionThrown") => {
                self.errors
                    .push(format!("exception: {}", params["exceptionDetails"]));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.errors.push(format!("log: {}", params["entry"]));
            }
            _ => {}
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page.
    async fn wait_for(&mut self, what: &str, expression: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.eval(expression).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let body = self.eval("document.body.innerText").await;
        panic!("timed out waiting for {what}; page text: {body}");
    }
}

fn gateway_session(recorder: &Recorder) {
    runtime().block_on(async {
        let url = "wss://gateway.discord.gg/?v=10&encoding=json";
        let mut ws =
            websocket_through_proxy(recorder.addr, &recorder.ca_pem, "gateway.discord.gg", url)
                .await;
        ws.next().await.unwrap().unwrap();
        ws.send(Message::text(
            json!({"op": 2, "d": {"token": "secret-token"}}).to_string(),
        ))
        .await
        .unwrap();
        ws.next().await.unwrap().unwrap();
        let _ = ws.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(2), ws.next()).await {}
    });
}

#[test]
fn the_explorer_page_in_headless_chromium() {
    let dir = workdir();
    let stand_in = FakeDiscord::start();
    let recorder = Recorder::start(dir.path(), &stand_in, &["--ui", "127.0.0.1:0"]);
    let url = recorder.explorer.clone().expect("explorer address");
    let out = curl(
        &recorder,
        &format!("https://discord.com/api/v9/channels/{CHANNEL_ID}/messages?limit=2"),
        &["--compressed"],
    );
    assert!(out.status.success());
    gateway_session(&recorder);
    std::thread::sleep(Duration::from_millis(300));

    let browser = launch();
    let rt = runtime();
    let mut cdp = rt.block_on(Cdp::connect(&browser.ws_url));
    rt.block_on(async {
        let target = cdp
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = cdp
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        cdp.session = attached["sessionId"].as_str().map(str::to_string);
        cdp.call("Runtime.enable", json!({})).await;
        cdp.call("Log.enable", json!({})).await;
        cdp.call("Page.enable", json!({})).await;
        cdp.call("Page.navigate", json!({"url": url})).await;
        cdp.wait_for(
            "the route list",
            "document.querySelectorAll('#routes tr.route-row').length > 0",
        )
        .await;
        let routes = cdp
            .eval(
                "[...document.querySelectorAll('#routes tr.route-row')].map(r => r.dataset.route)",
            )
            .await;
        assert!(
            routes
                .to_string()
                .contains("/api/v9/channels/{channel_id}/messages"),
            "{routes}"
        );
        cdp.wait_for(
            "the live stream",
            "document.getElementById('status').textContent === 'live'",
        )
        .await;
    });

    // An exchange made now appears without a reload.
    let out = curl(
        &recorder,
        "https://discord.com/api/v9/users/@me",
        &["--compressed"],
    );
    assert!(out.status.success());
    rt.block_on(async {
        cdp.wait_for(
            "the live exchange",
            "[...document.querySelectorAll('#items tr.item.rest')].some(r => r.textContent.includes('/api/v9/users/@me'))",
        )
        .await;
        // Its detail view names the source that answered.
        cdp.eval("[...document.querySelectorAll('#items tr.item.rest')].find(r => r.textContent.includes('/api/v9/users/@me')).click()")
            .await;
        cdp.wait_for(
            "the exchange view",
            "document.getElementById('exchange-source')?.textContent === 'upstream'",
        )
        .await;
        // A gateway session, and one of its frames opened.
        cdp.eval("document.querySelector('#items tr.item.gateway').click()")
            .await;
        cdp.wait_for(
            "the gateway frames",
            "document.querySelectorAll('#frames tr.frame').length >= 2",
        )
        .await;
        cdp.eval("document.querySelector('#frames tr.frame').click()").await;
        cdp.wait_for(
            "the decoded frame",
            "(document.querySelector('#frames tr.frame-payload pre')?.textContent || '').includes('heartbeat_interval')",
        )
        .await;
        let page = cdp.eval("document.body.innerText").await;
        assert!(!page.to_string().contains("secret-token"), "{page}");
        let shot = cdp
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/explore-chromium.png");
        std::fs::write(&path, png).unwrap();
        // Let late console messages arrive, then collect them.
        let _ = cdp.eval("1").await;
    });
    assert!(cdp.errors.is_empty(), "console errors: {:#?}", cdp.errors);
    drop(browser);
    recorder.stop();
}
