use std::io::Write;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::*;
use crate::store::capture::{CapturedBody, ExchangeCapture, ExchangeEnd};
use crate::store::records::{Header, ResponseRecord, Rewrite};

/// The record the recorder made before it wrote captures directly: built field by field with
/// the same redaction and decoding functions. The direct encoding must equal its postcard.
fn reference(id: u64, view: &CaptureView<'_>, options: &EncodeOptions) -> Exchange {
    let keep = options.keep_secrets;
    let mut redactions = Vec::new();
    // One side (request or response): headers and body, redacted unless kept.
    let side = |name: &str,
                headers: HeadersView<'_>,
                captured: BodyView<'_>,
                redactions: &mut Vec<String>| {
        let mut records: Vec<Header> = headers
            .iter()
            .map(|(name, value)| Header {
                name: String::from_utf8_lossy(name).into_owned(),
                value: value.to_vec(),
            })
            .collect();
        let mut body = body::decode(
            headers.get_str("content-encoding"),
            captured.data.to_vec(),
            captured.wire_size,
            captured.truncated,
            options.max_body,
        );
        if !keep {
            redact::headers(&mut records, name, redactions);
            let content_type = headers.get_str("content-type");
            if let Some(clean) = redact::body(content_type, &body.data, name, redactions) {
                body.data = clean;
            }
        }
        (records, body)
    };
    let path_and_query = if keep {
        view.path_and_query.to_string()
    } else {
        redact::url(view.path_and_query, "request", &mut redactions)
    };
    let (request_headers, request_body) = side(
        "request",
        view.request_headers,
        view.request_body,
        &mut redactions,
    );
    let response = view.response.map(|response| {
        let (headers, body) = side("response", response.headers, response.body, &mut redactions);
        ResponseRecord {
            status: response.status,
            headers,
            body,
        }
    });
    let addr = |addr: Option<Addr<'_>>| match addr {
        None => String::new(),
        Some(Addr::Text(text)) => text.to_string(),
        Some(Addr::Socket(addr)) => addr.to_string(),
    };
    Exchange {
        id,
        started_at_us: view.started_at_us,
        wait_us: view.wait_us,
        duration_us: view.duration_us,
        client_addr: addr(view.client_addr),
        upstream_addr: view.upstream_addr.map(|a| addr(Some(a))),
        source: view.source.to_string(),
        method: view.method.to_string(),
        scheme: view.scheme.to_string(),
        host: view.host.to_string(),
        path_and_query,
        http_version: view.http_version.to_string(),
        request_headers,
        request_body,
        response,
        error: view.error.map(str::to_string),
        redactions,
        rewrites: view
            .rewrites
            .iter()
            .map(|(kind, from, to)| Rewrite {
                kind: kind.into(),
                from: from.into(),
                to: to.into(),
            })
            .collect(),
    }
}

fn map(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    map
}

struct Case<'a> {
    method: &'a str,
    path: &'a str,
    request_headers: HeaderMap,
    request_body: CapturedBody,
    response: Option<(u16, HeaderMap, CapturedBody)>,
    client: Addr<'a>,
    upstream: Option<Addr<'a>>,
    started_at_us: i64,
    wait_us: Option<u64>,
    port: Option<u16>,
    error: Option<&'a str>,
    rewrites: Vec<Rewrite>,
}

impl Case<'_> {
    fn capture(&self) -> Vec<u8> {
        let mut capture =
            ExchangeCapture::request(self.method, self.path, "HTTP/1.1", &self.request_headers, 0);
        match &self.response {
            Some((status, headers, body)) => capture = capture.response(*status, headers, body),
            None => capture.no_response(),
        }
        capture.finish(&ExchangeEnd {
            request_body: &self.request_body,
            started_at_us: self.started_at_us,
            wait_us: self.wait_us,
            duration_us: 77,
            client_addr: self.client,
            upstream_addr: self.upstream,
            source: "upstream",
            scheme: "https",
            host: "discord.com",
            port: self.port,
            error: self.error,
            rewrites: &self.rewrites,
        })
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn cases() -> Vec<Case<'static>> {
    let mut all = first_cases();
    all.extend(later_cases());
    all
}

/// Cases with JSON bodies: a login and a gzip-encoded answer.
fn first_cases() -> Vec<Case<'static>> {
    let login = br#"{"login":"a@b.c","password":"hunter2","undelete":false}"#;
    let token = br#"{"token":"mfa.abc","user_settings":{}}"#;
    let zipped = gzip(br#"{"id":"1","access_token":"xyz"}"#);
    vec![
        Case {
            method: "POST",
            path: "/api/v9/auth/login?token=abc&x=1",
            request_headers: map(&[
                ("authorization", b"Bot MTIz.abc"),
                ("content-type", b"application/json"),
                ("cookie", b"a=1; b=2"),
                ("x-raw", b"caf\xe9"),
            ]),
            request_body: CapturedBody::from_bytes(login.to_vec()),
            response: Some((
                200,
                map(&[
                    ("content-type", b"application/json"),
                    ("set-cookie", b"s=1; Path=/"),
                ]),
                CapturedBody::from_bytes(token.to_vec()),
            )),
            client: Addr::Socket("127.0.0.1:5000".parse().unwrap()),
            upstream: Some(Addr::Socket("[2001:db8::1]:443".parse().unwrap())),
            started_at_us: 1_700_000_000_123_456,
            wait_us: Some(300),
            port: None,
            error: None,
            rewrites: Vec::new(),
        },
        Case {
            method: "GET",
            path: "/api/v10/users/@me",
            request_headers: map(&[("accept-encoding", b"gzip")]),
            request_body: CapturedBody::default(),
            response: Some((
                200,
                map(&[
                    ("content-encoding", b"gzip"),
                    ("content-type", b"application/json"),
                ]),
                CapturedBody::from_bytes(zipped.clone()),
            )),
            client: Addr::Socket("10.255.0.1:65535".parse().unwrap()),
            upstream: None,
            started_at_us: -5,
            wait_us: None,
            port: Some(8443),
            error: Some("client went away before the response body ended"),
            rewrites: identity_rewrites(),
        },
    ]
}

/// What `serve`'s identity rules list on a forwarded exchange.
fn identity_rewrites() -> Vec<Rewrite> {
    [
        ("authorization", "100000000000000001", "upstream token"),
        ("response-id", "80351110224678912", "100000000000000001"),
    ]
    .map(|(kind, from, to)| Rewrite {
        kind: kind.into(),
        from: from.into(),
        to: to.into(),
    })
    .to_vec()
}

/// Cases without a response body worth decoding, or with a form body.
fn later_cases() -> Vec<Case<'static>> {
    vec![
        Case {
            method: "GET",
            path: "/",
            request_headers: HeaderMap::new(),
            request_body: CapturedBody::default(),
            response: Some((
                404,
                map(&[("content-encoding", b"br")]),
                CapturedBody {
                    data: b"not brotli".to_vec(),
                    start: 0,
                    wire_size: 99,
                    truncated: true,
                },
            )),
            client: Addr::Text("[::1]:4000"),
            upstream: Some(Addr::Text("127.0.0.1:1")),
            started_at_us: 0,
            wait_us: Some(u64::MAX - 1),
            port: None,
            error: None,
            rewrites: Vec::new(),
        },
        Case {
            method: "CONNECT",
            path: "",
            request_headers: HeaderMap::new(),
            request_body: CapturedBody::default(),
            response: None,
            client: Addr::Socket("0.0.0.0:0".parse().unwrap()),
            upstream: None,
            started_at_us: i64::MAX,
            wait_us: None,
            port: None,
            error: Some("TLS: unknown CA"),
            rewrites: Vec::new(),
        },
        Case {
            method: "POST",
            path: "/api/v9/oauth2/token",
            request_headers: map(&[("content-type", b"application/x-www-form-urlencoded")]),
            request_body: CapturedBody::from_bytes(
                b"grant_type=x&client_secret=s3&code=c".to_vec(),
            ),
            response: Some((
                200,
                map(&[("content-encoding", b"gzip")]),
                CapturedBody::from_bytes(gzip(b"{\"refresh_token\":\"r\"}")),
            )),
            client: Addr::Socket("192.168.1.20:80".parse().unwrap()),
            upstream: None,
            started_at_us: 12,
            wait_us: Some(0),
            port: None,
            error: None,
            rewrites: Vec::new(),
        },
    ]
}

fn options(keep_secrets: bool) -> EncodeOptions {
    EncodeOptions {
        keep_secrets,
        max_body: 1 << 20,
    }
}

fn check(case: &Case<'_>, id: u64, keep: bool) -> Exchange {
    let bytes = case.capture();
    let view = CaptureView::parse(&bytes).unwrap();
    let mut encoded = Vec::new();
    let mut redactions = Vec::new();
    encode_exchange(&mut encoded, id, &view, &options(keep), &mut redactions);
    let expected = reference(id, &view, &options(keep));
    let decoded: Exchange = postcard::from_bytes(&encoded).expect("postcard reads it");
    assert_eq!(decoded, expected, "{} {}", case.method, case.path);
    assert_eq!(
        encoded,
        postcard::to_allocvec(&expected).unwrap(),
        "byte for byte what postcard writes"
    );
    decoded
}

#[test]
fn direct_encoding_is_what_postcard_writes_for_the_recorded_exchange() {
    for (index, case) in cases().iter().enumerate() {
        for keep in [false, true] {
            for id in [0, 1, 127, 128, 300, u64::MAX] {
                check(case, id, keep);
            }
        }
        let _ = index;
    }
}

#[test]
fn secrets_are_redacted_and_bodies_decoded() {
    let cases = cases();
    let login = check(&cases[0], 1, false);
    assert_eq!(
        login.redactions,
        vec![
            "request.query.token",
            "request.header.authorization",
            "request.header.cookie",
            "request.body.password",
            "response.header.set-cookie",
            "response.body.token",
        ]
    );
    let body = String::from_utf8(login.request_body.data.clone()).unwrap();
    assert!(!body.contains("hunter2"), "{body}");
    assert!(login
        .path_and_query
        .starts_with("/api/v9/auth/login?token=%5Bredacted"));
    let kept = check(&cases[0], 1, true);
    assert!(kept.redactions.is_empty());
    assert_eq!(kept.request_headers[0].value, b"Bot MTIz.abc");

    let zipped = check(&cases[1], 2, false);
    let response = zipped.response.unwrap();
    assert_eq!(response.body.encoding.as_deref(), Some("gzip"));
    let text = String::from_utf8_lossy(&response.body.data);
    assert!(
        text.contains("\"access_token\":\"[redacted") && !text.contains("xyz"),
        "{text}"
    );
    assert_eq!(zipped.host, "discord.com:8443");
    assert_eq!(zipped.client_addr, "10.255.0.1:65535");

    let broken = check(&cases[2], 3, false);
    let body = broken.response.unwrap().body;
    assert_eq!(
        body.data, b"not brotli",
        "cut compressed bodies stay as sent"
    );
    assert!(body.decode_error.is_some());
}

#[test]
fn ipv4_addresses_print_as_display_does() {
    for text in [
        "0.0.0.0:0",
        "255.255.255.255:65535",
        "10.20.3.100:443",
        "1.2.3.4:5",
    ] {
        let addr: std::net::SocketAddr = text.parse().unwrap();
        let mut out = Vec::new();
        write_socket_addr(&mut out, addr);
        let decoded: String = postcard::from_bytes(&out).unwrap();
        assert_eq!(decoded, text);
    }
}

#[test]
fn chunks_store_readable_exchanges_and_route_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let mut builder = ChunkBuilder::new();
    let cases = cases();
    for case in &cases {
        let bytes = case.capture();
        builder.push(
            &store,
            &CaptureView::parse(&bytes).unwrap(),
            &options(false),
        );
    }
    assert_eq!(builder.len(), cases.len());
    builder.write(&store).unwrap();
    assert!(builder.is_empty());
    assert_eq!(store.exchange_count(), cases.len());
    let ids: Vec<u64> = store.exchanges().map(|e| e.unwrap().id).collect();
    assert_eq!(ids, (1..=cases.len() as u64).collect::<Vec<_>>());
    let login = store.exchange(1).unwrap().unwrap();
    assert_eq!(
        login.path_and_query.split('?').next(),
        Some("/api/v9/auth/login")
    );
    let found: Vec<u64> = store
        .exchange_ids_for_route("GET", "discord.com:8443", "/api/v10/users/@me")
        .map(Result::unwrap)
        .collect();
    assert_eq!(found, vec![2]);

    // Another writer stores exchanges while a chunk is being built: the chunk's exchanges
    // get fresh ids instead of overwriting.
    let bytes = cases[3].capture();
    builder.push(
        &store,
        &CaptureView::parse(&bytes).unwrap(),
        &options(false),
    );
    let mut other = check(&cases[1], 0, false);
    store.insert_exchange(&mut other).unwrap();
    builder.write(&store).unwrap();
    let all: Vec<Exchange> = store.exchanges().map(Result::unwrap).collect();
    let ids: Vec<u64> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=cases.len() as u64 + 2).collect::<Vec<_>>());
    assert_eq!(all.last().unwrap().method, "CONNECT");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_capture_encodes_as_postcard_would(
        path in "/[a-z0-9/@?=&_]{0,40}",
        header_values in proptest::collection::vec(proptest::collection::vec(0x20u8..0x7f, 0..40), 0..6),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        json_body in any::<bool>(),
        started in any::<i64>(),
        wait in any::<Option<u64>>(),
        status in 100u16..600,
        keep in any::<bool>(),
        id in any::<u64>(),
    ) {
        let names = ["authorization", "cookie", "set-cookie", "x-a", "content-type", "x-super-token"];
        let mut headers = HeaderMap::new();
        for (index, value) in header_values.iter().enumerate() {
            headers.append(
                HeaderName::from_static(names[index % names.len()]),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let body = if json_body {
            format!("{{\"token\":\"{}\",\"n\":1}}", body.len()).into_bytes()
        } else {
            body
        };
        let case = Case {
            method: "PATCH",
            path: if path.is_empty() { "/" } else { &path },
            request_headers: headers.clone(),
            request_body: CapturedBody::from_bytes(body.clone()),
            response: Some((status, headers, CapturedBody::from_bytes(body))),
            client: Addr::Socket("127.0.0.1:1".parse().unwrap()),
            upstream: None,
            started_at_us: started,
            wait_us: wait,
            port: None,
            error: None,
            rewrites: Vec::new(),
        };
        check(&case, id, keep);
    }
}
