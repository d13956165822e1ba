//! A small loopback gateway for tests: real TCP + WebSocket (tokio-tungstenite), every
//! connection driven by `gateway::server::ServerSession`, with a toy session store so RESUME
//! and replay work. It records what happened so tests can assert on it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use discord_mitm::gateway::close::CloseCode;
use discord_mitm::gateway::server::{
    IdentifyInfo, IdentifyVerdict, ResumeInfo, ResumeVerdict, ServerAction, ServerConfig,
    ServerSession,
};
use discord_mitm::gateway::GatewayPayload;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// The token the test gateway accepts.
pub const GOOD_TOKEN: &str = "Bot good";

/// Something that happened on the test gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Connected(usize),
    Identify(usize, Box<IdentifyInfo>),
    Resume(usize, ResumeInfo),
    Heartbeat(usize),
    Command(usize, GatewayPayload),
    /// The server closed connection N with this code.
    ServerClosed(usize, u16),
    /// The client closed connection N (its close code, and whether the session was kept).
    ClientClosed(usize, Option<u16>, bool),
}

/// What the owner of the test gateway can make a connection do.
#[derive(Debug)]
pub enum Control {
    Dispatch(&'static str, Value),
    RequestReconnect,
    RequestHeartbeat,
}

#[derive(Default)]
struct Store {
    /// session id -> dispatches sent so far (seq, event, d)
    sessions: HashMap<String, Vec<(u64, String, Value)>>,
    seen: Vec<Seen>,
    connections: usize,
    controls: HashMap<usize, mpsc::UnboundedSender<Control>>,
    /// Connections that must not get heartbeat ACKs (to play a zombied link).
    mute_acks: Vec<usize>,
}

/// A running test gateway.
#[derive(Clone)]
pub struct TestGateway {
    pub url: String,
    store: Arc<Mutex<Store>>,
}

impl TestGateway {
    /// Binds 127.0.0.1:0 and serves every connection with `config`.
    pub async fn start(config: ServerConfig) -> TestGateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let gateway = TestGateway {
            url: url.clone(),
            store: Arc::default(),
        };
        let serving = gateway.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let gateway = serving.clone();
                let config = config.clone();
                tokio::spawn(async move { gateway.serve(stream, config).await });
            }
        });
        gateway
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.store.lock().expect("lock").seen.clone()
    }

    /// Waits until `pred` holds for what was seen, or panics after 10 s.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.seen();
            if pred(&seen) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; saw {seen:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a control to connection `n` (1-based).
    pub fn control(&self, n: usize, control: Control) {
        let store = self.store.lock().expect("lock");
        let sender = store.controls.get(&n).expect("connection exists");
        sender.send(control).expect("connection alive");
    }

    /// Heartbeats on connection `n` will not be acknowledged.
    pub fn mute_acks(&self, n: usize) {
        self.store.lock().expect("lock").mute_acks.push(n);
    }

    /// Records a dispatch in a session as if it happened while its client was away.
    pub fn add_missed_event(&self, session_id: &str, event: &str, d: Value) {
        let mut store = self.store.lock().expect("lock");
        let log = store.sessions.get_mut(session_id).expect("session exists");
        let seq = log.last().map_or(1, |(seq, _, _)| seq + 1);
        log.push((seq, event.to_owned(), d));
    }

    fn record(&self, seen: Seen) {
        self.store.lock().expect("lock").seen.push(seen);
    }

    async fn serve(self, stream: TcpStream, config: ServerConfig) {
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        let (control_tx, mut control_rx) = mpsc::unbounded_channel();
        let n = {
            let mut store = self.store.lock().expect("lock");
            store.connections += 1;
            let n = store.connections;
            store.controls.insert(n, control_tx);
            n
        };
        self.record(Seen::Connected(n));
        let (mut session, mut actions) = ServerSession::new(config, std::time::Instant::now());
        let mut session_id: Option<String> = None;
        loop {
            // Perform actions; verdicts and dispatches may add more.
            let mut queue: std::collections::VecDeque<ServerAction> = actions.drain(..).collect();
            let mut closed = false;
            while let Some(action) = queue.pop_front() {
                let now = std::time::Instant::now();
                match action {
                    ServerAction::Send(payload) => {
                        let muted = self.store.lock().expect("lock").mute_acks.contains(&n);
                        if payload.op.code() == 11 {
                            self.record(Seen::Heartbeat(n));
                            if muted {
                                continue;
                            }
                        }
                        let text = serde_json::to_string(&payload).expect("json");
                        if ws.send(Message::text(text)).await.is_err() {
                            return;
                        }
                    }
                    ServerAction::Close(code) => {
                        self.record(Seen::ServerClosed(n, code.code()));
                        let frame = CloseFrame {
                            code: WsCloseCode::from(code.code()),
                            reason: code.description().into(),
                        };
                        let _ = ws.close(Some(frame)).await;
                        closed = true;
                    }
                    ServerAction::ValidateIdentify(info) => {
                        self.record(Seen::Identify(n, info.clone()));
                        let verdict = if info.token == GOOD_TOKEN {
                            IdentifyVerdict::Accept
                        } else {
                            IdentifyVerdict::Close(CloseCode::AuthenticationFailed)
                        };
                        queue.extend(session.complete_identify(verdict, now));
                        if verdict == IdentifyVerdict::Accept {
                            let id = format!("session-{n}");
                            let ready = json!({
                                "v": 10,
                                "session_id": id,
                                "resume_gateway_url": self.url,
                                "user": {"id": "1", "username": "bot", "discriminator": "0", "avatar": null, "bot": true},
                                "guilds": [],
                                "shard": [0, 1],
                                "application": {"id": "1", "flags": 0}
                            });
                            let payload = session.dispatch("READY", ready.clone()).expect("active");
                            self.store.lock().expect("lock").sessions.insert(
                                id.clone(),
                                vec![(payload.s.unwrap_or(0), "READY".into(), ready)],
                            );
                            session_id = Some(id);
                            queue.push_back(ServerAction::Send(payload));
                        }
                    }
                    ServerAction::ValidateResume(info) => {
                        self.record(Seen::Resume(n, info.clone()));
                        let log = self
                            .store
                            .lock()
                            .expect("lock")
                            .sessions
                            .get(&info.session_id)
                            .cloned();
                        match log {
                            Some(log) if info.token == GOOD_TOKEN => {
                                let last_seq = log.last().map_or(0, |(seq, _, _)| *seq);
                                queue.extend(
                                    session
                                        .complete_resume(ResumeVerdict::Accept { last_seq }, now),
                                );
                                if session.state()
                                    == discord_mitm::gateway::server::ServerState::Active
                                {
                                    let from = info.seq.unwrap_or(0);
                                    for (seq, event, d) in
                                        log.into_iter().filter(|(s, _, _)| *s > from)
                                    {
                                        let replayed = session
                                            .replay(GatewayPayload::dispatch(event, seq, d))
                                            .expect("replay");
                                        queue.push_back(ServerAction::Send(replayed));
                                    }
                                    let resumed =
                                        session.dispatch("RESUMED", json!({})).expect("active");
                                    self.log_dispatch(&info.session_id, &resumed);
                                    session_id = Some(info.session_id.clone());
                                    queue.push_back(ServerAction::Send(resumed));
                                }
                            }
                            _ => queue.extend(session.complete_resume(
                                ResumeVerdict::InvalidSession { resumable: false },
                                now,
                            )),
                        }
                    }
                    ServerAction::Command(payload) => self.record(Seen::Command(n, payload)),
                }
            }
            if closed {
                return;
            }
            let deadline = session
                .poll_at()
                .map(Instant::from_std)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                message = ws.next() => {
                    let now = std::time::Instant::now();
                    match message {
                        Some(Ok(Message::Text(text))) => {
                            actions = match serde_json::from_str::<GatewayPayload>(text.as_str()) {
                                Ok(payload) => session.on_payload(&payload, text.len(), now),
                                Err(_) => session.on_undecodable(now),
                            };
                        }
                        Some(Ok(Message::Binary(_))) => actions = session.on_undecodable(now),
                        Some(Ok(Message::Close(frame))) => {
                            let code = frame.map(|f| u16::from(f.code));
                            let kept = session.on_client_closed(code);
                            self.record(Seen::ClientClosed(n, code, kept));
                            return;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            let kept = session.on_client_closed(None);
                            self.record(Seen::ClientClosed(n, None, kept));
                            return;
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    actions = session.on_tick(std::time::Instant::now());
                }
                Some(control) = control_rx.recv() => {
                    let now = std::time::Instant::now();
                    actions = match control {
                        Control::Dispatch(event, d) => match session.dispatch(event, d) {
                            Ok(payload) => {
                                if let Some(id) = &session_id {
                                    self.log_dispatch(id, &payload);
                                }
                                vec![ServerAction::Send(payload)]
                            }
                            Err(_) => Vec::new(),
                        },
                        Control::RequestReconnect => session.request_reconnect(now),
                        Control::RequestHeartbeat => session.request_heartbeat(),
                    };
                }
            }
        }
    }

    fn log_dispatch(&self, session_id: &str, payload: &GatewayPayload) {
        let mut store = self.store.lock().expect("lock");
        if let Some(log) = store.sessions.get_mut(session_id) {
            log.push((
                payload.s.unwrap_or(0),
                payload.t.clone().unwrap_or_default(),
                payload.d.clone(),
            ));
        }
    }
}
