use super::*;
use http::HeaderValue;
use proptest::prelude::*;

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    map
}

fn end<'a>(request_body: &'a CapturedBody, client: Addr<'a>) -> ExchangeEnd<'a> {
    ExchangeEnd {
        request_body,
        started_at_us: 1_700_000_000_000_000,
        wait_us: Some(250),
        duration_us: 900,
        client_addr: client,
        upstream_addr: Some(Addr::Socket("127.0.0.1:443".parse().unwrap())),
        source: "upstream",
        scheme: "https",
        host: "discord.com",
        port: None,
        error: None,
        rewrites: &[],
    }
}

/// A capture as the pipeline makes one: request head, response head, body appended in
/// pieces, then the end.
fn full_capture(response_body: &[&[u8]], request_body: &CapturedBody) -> Vec<u8> {
    let request = headers(&[
        ("user-agent", b"curl/8"),
        ("authorization", b"Bot abc"),
        ("x-raw", b"caf\xe9"),
        ("accept", b"*/*"),
        ("accept", b"application/json"),
    ]);
    let response = headers(&[
        ("content-type", b"application/json"),
        ("set-cookie", b"a=1"),
    ]);
    let capture = ExchangeCapture::request("POST", "/api/v9/x?y=1", "HTTP/1.1", &request, 0);
    let mut body = capture.response_head(201, &response, 4);
    for piece in response_body {
        body.data.extend_from_slice(piece);
        body.wire_size += piece.len() as u64;
    }
    ExchangeCapture::response_body_end(body).finish(&end(
        request_body,
        Addr::Socket("10.0.0.7:51234".parse().unwrap()),
    ))
}

#[test]
fn a_capture_reads_back_field_for_field() {
    let request_body = CapturedBody::from_bytes(br#"{"content":"hi"}"#.to_vec());
    let bytes = full_capture(&[b"{\"id\"", b":1}"], &request_body);
    let view = CaptureView::parse(&bytes).expect("parses");
    assert_eq!(view.method, "POST");
    assert_eq!(view.path_and_query, "/api/v9/x?y=1");
    assert_eq!(view.path(), "/api/v9/x");
    assert_eq!(view.http_version, "HTTP/1.1");
    let pairs: Vec<(&[u8], &[u8])> = view.request_headers.iter().collect();
    assert_eq!(
        pairs,
        vec![
            (&b"user-agent"[..], &b"curl/8"[..]),
            (b"authorization", b"Bot abc"),
            (b"x-raw", b"caf\xe9"),
            (b"accept", b"*/*"),
            (b"accept", b"application/json"),
        ],
        "order, repeats and raw bytes kept"
    );
    assert_eq!(view.request_headers.get_str("accept"), Some("*/*"));
    assert_eq!(view.request_headers.get_str("x-raw"), None, "not text");
    assert_eq!(view.request_headers.get_str("cookie"), None);
    assert_eq!(view.request_body.data, br#"{"content":"hi"}"#);
    assert_eq!(view.request_body.wire_size, 16);
    let response = view.response.expect("response");
    assert_eq!(response.status, 201);
    assert_eq!(response.headers.get_str("set-cookie"), Some("a=1"));
    assert_eq!(response.body.data, b"{\"id\":1}");
    assert_eq!(response.body.wire_size, 8);
    assert!(!response.body.truncated);
    assert_eq!(view.started_at_us, 1_700_000_000_000_000);
    assert_eq!(view.wait_us, Some(250));
    assert_eq!(view.duration_us, 900);
    assert_eq!(
        view.client_addr,
        Some(Addr::Socket("10.0.0.7:51234".parse().unwrap()))
    );
    assert_eq!(
        view.upstream_addr,
        Some(Addr::Socket("127.0.0.1:443".parse().unwrap()))
    );
    assert_eq!(
        (view.source, view.scheme, view.host),
        ("upstream", "https", "discord.com")
    );
    assert_eq!(view.error, None);
}

#[test]
fn exchanges_without_response_keep_text_addresses_ports_and_errors() {
    let mut capture = ExchangeCapture::request("CONNECT", "", "HTTP/1.1", &HeaderMap::new(), 0);
    capture.no_response();
    let body = CapturedBody::default();
    let bytes = capture.finish(&ExchangeEnd {
        wait_us: None,
        client_addr: Addr::Text("[::1]:9000"),
        upstream_addr: None,
        port: Some(8443),
        error: Some("TLS handshake failed: unknown CA"),
        rewrites: &[],
        ..end(&body, Addr::Text(""))
    });
    let view = CaptureView::parse(&bytes).unwrap();
    assert!(view.response.is_none());
    assert_eq!(view.wait_us, None);
    assert_eq!(view.client_addr, Some(Addr::Text("[::1]:9000")));
    assert_eq!(view.upstream_addr, None);
    assert_eq!(view.host, "discord.com:8443");
    assert_eq!(view.error, Some("TLS handshake failed: unknown CA"));
    assert!(view.request_headers.is_empty());
}

#[test]
fn ipv6_addresses_keep_their_scope() {
    for text in ["[::1]:8080", "[2001:db8::7]:443", "[fe80::1%3]:9"] {
        let addr: SocketAddr = text.parse().unwrap();
        let mut capture = ExchangeCapture::request("GET", "/", "HTTP/1.1", &HeaderMap::new(), 0);
        capture.no_response();
        let body = CapturedBody::default();
        let bytes = capture.finish(&end(&body, Addr::Socket(addr)));
        let view = CaptureView::parse(&bytes).unwrap();
        assert_eq!(view.client_addr, Some(Addr::Socket(addr)), "{text}");
    }
}

#[test]
fn whole_responses_and_truncated_bodies() {
    let capture = ExchangeCapture::request("GET", "/", "HTTP/2.0", &HeaderMap::new(), 0);
    let body = CapturedBody {
        data: b"abc".to_vec(),
        start: 0,
        wire_size: 10,
        truncated: true,
    };
    let capture = capture.response(502, &HeaderMap::new(), &body);
    let bytes = capture.finish(&end(&CapturedBody::default(), Addr::Text("x")));
    let view = CaptureView::parse(&bytes).unwrap();
    let response = view.response.unwrap();
    assert_eq!(response.status, 502);
    assert_eq!(response.body.data, b"abc");
    assert_eq!(response.body.wire_size, 10);
    assert!(response.body.truncated);
    assert_eq!(view.http_version, "HTTP/2.0");
}

#[test]
fn version_names_are_what_debug_prints() {
    for version in [
        http::Version::HTTP_09,
        http::Version::HTTP_10,
        http::Version::HTTP_11,
        http::Version::HTTP_2,
        http::Version::HTTP_3,
    ] {
        assert_eq!(version_name(version), format!("{version:?}"));
    }
}

#[test]
fn every_cut_of_a_capture_is_refused_not_a_panic() {
    let request_body = CapturedBody::from_bytes(b"a=1".to_vec());
    let bytes = full_capture(&[b"{}"], &request_body);
    for cut in 0..bytes.len() {
        assert!(CaptureView::parse(&bytes[..cut]).is_none(), "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(CaptureView::parse(&longer).is_none(), "trailing bytes");
}

proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = CaptureView::parse(&bytes);
    }

    #[test]
    fn bodies_read_back_whatever_the_pieces(
        pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
        request in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let request_body = CapturedBody::from_bytes(request.clone());
        let bytes = full_capture(&refs, &request_body);
        let view = CaptureView::parse(&bytes).unwrap();
        let whole = pieces.concat();
        prop_assert_eq!(view.response.unwrap().body.data, whole.as_slice());
        prop_assert_eq!(view.request_body.data, request.as_slice());
    }
}
