//! Tests of the fake VirusTotal server over real HTTP, with a small blocking
//! client on `std::net::TcpStream` so that resets, truncated bodies and stalls
//! are visible byte by byte.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::fake_vt::{
    FakeVt, FakeVtConfig, Fault, FaultPolicy, KeyQuota, RequestInfo, TEST_KEY, expected_document,
    expected_document_bytes,
};
use flate2::read::GzDecoder;
use serde_json::{Value, json};

/// Bounds every read, so no test can hang on a server bug.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const GZIP_USER_AGENT: &str = "fake-vt-tests/1.0 (gzip)";

/// A parsed response. `body` contains the bytes received, which may be
/// fewer than `content_length`.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    content_length: usize,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }

    fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .expect("error body has a code")
            .to_string()
    }
}

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connect to the fake server");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
}

/// Sends a GET with `headers` (name, value) and the usual Host line.
fn send_get(stream: &mut TcpStream, path: &str, headers: &[(&str, &str)]) {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
}

/// Reads one response: the head, then up to `Content-Length` body bytes.
/// Fails when the connection ends or times out before a complete head.
fn read_reply(stream: &mut TcpStream) -> io::Result<Reply> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = response.parse(&buffer).unwrap() {
            let headers: Vec<(String, String)> = response
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let content_length = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse::<usize>().unwrap())
                .expect("response has Content-Length");
            let mut reply = Reply {
                status: response.code.unwrap(),
                headers,
                content_length,
                body: buffer[head_len..].to_vec(),
            };
            // A short body (end of stream, reset or read timeout) is returned
            // as it is: the tests compare its length with `content_length`.
            while reply.body.len() < content_length {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => reply.body.extend_from_slice(&chunk[..n]),
                }
            }
            return Ok(reply);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a complete response head",
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Sends one request on a fresh connection and reads the response.
fn get(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> io::Result<Reply> {
    let mut stream = connect(address);
    send_get(&mut stream, path, headers);
    read_reply(&mut stream)
}

fn lookup(server: &FakeVt, ip: &str) -> io::Result<Reply> {
    get(
        server.address(),
        &format!("/api/v3/ip_addresses/{ip}"),
        &[("x-apikey", TEST_KEY)],
    )
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut decoded)
        .expect("body is valid gzip");
    decoded
}

#[test]
fn lookup_plain_returns_expected_document() {
    let server = FakeVt::start(FakeVtConfig::default());

    let reply = lookup(&server, "8.8.8.8").unwrap();

    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.body, expected_document_bytes("8.8.8.8"));
    let document = reply.json();
    assert_eq!(document["data"]["id"], "8.8.8.8");
    assert_eq!(document["data"]["type"], "ip_address");
    assert_eq!(document["data"]["attributes"]["network"], "8.8.8.0/24");
}

#[test]
fn lookup_gzip_needs_encoding_and_user_agent() {
    let server = FakeVt::start(FakeVtConfig::default());
    let path = "/api/v3/ip_addresses/1.1.1.1";

    let both = get(
        server.address(),
        path,
        &[
            ("x-apikey", TEST_KEY),
            ("Accept-Encoding", "gzip"),
            ("User-Agent", GZIP_USER_AGENT),
        ],
    )
    .unwrap();
    assert_eq!(both.status, 200);
    assert_eq!(both.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&both.body), expected_document_bytes("1.1.1.1"));

    let plain_agent = get(
        server.address(),
        path,
        &[
            ("x-apikey", TEST_KEY),
            ("Accept-Encoding", "gzip"),
            ("User-Agent", "curl/8.0"),
        ],
    )
    .unwrap();
    assert_eq!(plain_agent.header("content-encoding"), None);
    assert_eq!(plain_agent.body, expected_document_bytes("1.1.1.1"));

    let no_encoding = get(
        server.address(),
        path,
        &[("x-apikey", TEST_KEY), ("User-Agent", GZIP_USER_AGENT)],
    )
    .unwrap();
    assert_eq!(no_encoding.header("content-encoding"), None);
}

#[test]
fn missing_key_is_authentication_required() {
    let server = FakeVt::start(FakeVtConfig::default());

    let reply = get(server.address(), "/api/v3/ip_addresses/8.8.8.8", &[]).unwrap();

    assert_eq!(reply.status, 401);
    assert_eq!(reply.error_code(), "AuthenticationRequiredError");
}

#[test]
fn unknown_key_is_wrong_credentials() {
    let server = FakeVt::start(FakeVtConfig::default());

    let reply = get(
        server.address(),
        "/api/v3/ip_addresses/8.8.8.8",
        &[("x-apikey", "not-a-key")],
    )
    .unwrap();

    assert_eq!(reply.status, 401);
    assert_eq!(reply.error_code(), "WrongCredentialsError");
    assert_eq!(server.stats().successes("8.8.8.8"), 0);
}

#[test]
fn invalid_address_is_invalid_argument() {
    let server = FakeVt::start(FakeVtConfig::default());

    for text in ["8.8.8", "example.com", "010.1.1.1", "10.0.0.0%2F8"] {
        let reply = lookup(&server, text).unwrap();
        assert_eq!(reply.status, 400, "status for {text}");
        assert_eq!(
            reply.error_code(),
            "InvalidArgumentError",
            "code for {text}"
        );
    }
}

#[test]
fn not_found_set_and_default_predicate() {
    let server = FakeVt::start(FakeVtConfig::default().with_not_found("9.9.9.9"));

    let configured = lookup(&server, "9.9.9.9").unwrap();
    assert_eq!(configured.status, 404);
    assert_eq!(configured.error_code(), "NotFoundError");

    let documentation = lookup(&server, "192.0.2.7").unwrap();
    assert_eq!(documentation.status, 404);

    let other = lookup(&server, "9.9.9.10").unwrap();
    assert_eq!(other.status, 200);
}

#[test]
fn error_bodies_are_never_compressed() {
    let server = FakeVt::start(FakeVtConfig::default().with_not_found("9.9.9.9"));

    let reply = get(
        server.address(),
        "/api/v3/ip_addresses/9.9.9.9",
        &[
            ("x-apikey", TEST_KEY),
            ("Accept-Encoding", "gzip"),
            ("User-Agent", GZIP_USER_AGENT),
        ],
    )
    .unwrap();

    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.error_code(), "NotFoundError");
}

#[test]
fn per_minute_quota_rejects_with_429() {
    let config = FakeVtConfig::default()
        .with_quota(KeyQuota::per_minute(3))
        .with_not_found("9.9.9.9");
    let server = FakeVt::start(config);

    // A 404 counts against the quota like a 200.
    assert_eq!(lookup(&server, "9.9.9.9").unwrap().status, 404);
    assert_eq!(lookup(&server, "8.8.8.8").unwrap().status, 200);
    assert_eq!(lookup(&server, "8.8.4.4").unwrap().status, 200);
    let rejected = lookup(&server, "1.1.1.1").unwrap();

    assert_eq!(rejected.status, 429);
    assert_eq!(rejected.error_code(), "QuotaExceededError");
    let stats = server.stats();
    assert_eq!(stats.quota_rejections.minute, 1);
    assert_eq!(stats.status_count(429), 1);
    assert_eq!(stats.successes("1.1.1.1"), 0);
}

#[test]
fn daily_budget_rejects_after_allowance() {
    let quota = KeyQuota {
        per_day: Some(3),
        used_today: 1,
        ..KeyQuota::default()
    };
    let server = FakeVt::start(FakeVtConfig::default().with_quota(quota));

    assert_eq!(lookup(&server, "8.8.8.8").unwrap().status, 200);
    assert_eq!(lookup(&server, "8.8.4.4").unwrap().status, 200);
    assert_eq!(lookup(&server, "1.1.1.1").unwrap().status, 429);

    assert_eq!(server.stats().quota_rejections.day, 1);
    server.reset_quotas();
    assert_eq!(lookup(&server, "1.1.1.1").unwrap().status, 200);
}

#[test]
fn quota_summary_reports_allowances_and_usage() {
    let quota = KeyQuota {
        per_minute: Some(4),
        per_day: Some(500),
        per_month: None,
        used_today: 10,
        used_this_month: 100,
    };
    let server = FakeVt::start(FakeVtConfig::default().with_quota(quota));
    lookup(&server, "8.8.8.8").unwrap();

    let reply = get(
        server.address(),
        &format!("/api/v3/users/{TEST_KEY}/overall_quotas"),
        &[("x-apikey", TEST_KEY)],
    )
    .unwrap();

    assert_eq!(reply.status, 200);
    let data = &reply.json()["data"];
    assert_eq!(data["api_requests_hourly"]["user"]["allowed"], 240);
    assert_eq!(data["api_requests_hourly"]["user"]["used"], 1);
    assert_eq!(data["api_requests_daily"]["user"]["allowed"], 500);
    assert_eq!(data["api_requests_daily"]["user"]["used"], 11);
    assert_eq!(
        data["api_requests_monthly"]["user"]["allowed"],
        1_000_000_000u64
    );
    assert_eq!(data["api_requests_monthly"]["user"]["used"], 101);
}

#[test]
fn reset_fault_sends_nothing() {
    let server =
        FakeVt::start(FakeVtConfig::default().with_faults(FaultPolicy::always(Fault::Reset)));

    let outcome = lookup(&server, "8.8.8.8");

    let error = outcome.expect_err("a reset connection yields no response");
    // A plain close would give UnexpectedEof: SO_LINGER 0 must turn it into
    // a RST.
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
    let stats = server.stats();
    assert_eq!(stats.faults.get("reset"), Some(&1));
    assert!(stats.status_counts.is_empty());
}

#[test]
fn truncated_fault_sends_half_the_body() {
    let server =
        FakeVt::start(FakeVtConfig::default().with_faults(FaultPolicy::always(Fault::Truncated)));

    let reply = lookup(&server, "8.8.8.8").unwrap();

    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.content_length,
        expected_document_bytes("8.8.8.8").len()
    );
    assert_eq!(reply.body.len(), reply.content_length / 2);
    assert_eq!(server.stats().successes("8.8.8.8"), 0);
}

#[test]
fn garbage_fault_sends_non_json() {
    let server =
        FakeVt::start(FakeVtConfig::default().with_faults(FaultPolicy::always(Fault::Garbage)));

    let reply = lookup(&server, "8.8.8.8").unwrap();

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), reply.content_length);
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());
    assert_eq!(server.stats().successes("8.8.8.8"), 0);
}

#[test]
fn bad_gzip_fault_claims_gzip() {
    let server =
        FakeVt::start(FakeVtConfig::default().with_faults(FaultPolicy::always(Fault::BadGzip)));

    let reply = lookup(&server, "8.8.8.8").unwrap();

    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    let mut decoded = Vec::new();
    assert!(
        GzDecoder::new(&reply.body[..])
            .read_to_end(&mut decoded)
            .is_err()
    );
}

#[test]
fn stall_fault_times_out_client() {
    let stall = Duration::from_millis(800);
    let server = FakeVt::start(
        FakeVtConfig::default().with_faults(FaultPolicy::always(Fault::Stall(stall))),
    );
    let mut stream = connect(server.address());
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    send_get(
        &mut stream,
        "/api/v3/ip_addresses/8.8.8.8",
        &[("x-apikey", TEST_KEY)],
    );
    let reply = read_reply(&mut stream).unwrap();

    // The head arrived, the body did not before the client's timeout.
    assert_eq!(reply.status, 200);
    assert!(reply.body.len() < reply.content_length);
    drop(stream);
    thread::sleep(stall + Duration::from_millis(300));
    let stats = server.stats();
    assert_eq!(stats.faults.get("stall"), Some(&1));
    assert_eq!(stats.successes("8.8.8.8"), 0);
}

#[test]
fn stall_fault_delivers_to_patient_client() {
    let stall = Duration::from_millis(300);
    let server = FakeVt::start(
        FakeVtConfig::default().with_faults(FaultPolicy::always(Fault::Stall(stall))),
    );

    let started = Instant::now();
    let reply = lookup(&server, "8.8.8.8").unwrap();

    assert!(started.elapsed() >= stall);
    assert_eq!(reply.body, expected_document_bytes("8.8.8.8"));
    assert_eq!(server.stats().successes("8.8.8.8"), 1);
}

#[test]
fn latency_delays_every_response() {
    let latency = Duration::from_millis(250);
    let server = FakeVt::start(FakeVtConfig::default().with_latency(latency));

    let started = Instant::now();
    let reply = lookup(&server, "8.8.8.8").unwrap();

    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() >= latency,
        "elapsed {:?}",
        started.elapsed()
    );
}

#[test]
fn first_attempts_fail_then_succeed() {
    let policy = FaultPolicy::first_attempts(2, Fault::TRANSIENT);
    let server = FakeVt::start(FakeVtConfig::default().with_faults(policy));

    let first = lookup(&server, "8.8.8.8").unwrap();
    let second = lookup(&server, "8.8.8.8").unwrap();
    let third = lookup(&server, "8.8.8.8").unwrap();
    let other = lookup(&server, "1.1.1.1").unwrap();

    assert_eq!(first.status, 503);
    assert_eq!(first.error_code(), "TransientError");
    assert_eq!(second.status, 503);
    assert_eq!(third.status, 200);
    assert_eq!(other.status, 503);
    let stats = server.stats();
    assert_eq!(stats.requests_for("8.8.8.8"), 3);
    assert_eq!(stats.successes("8.8.8.8"), 1);
    assert_eq!(stats.status_count(503), 3);
}

#[test]
fn mixed_policy_succeeds_by_fourth_attempt() {
    let policy = FaultPolicy::mixed(42);
    let mut faulted_first_attempts = 0;

    for i in 0..500u32 {
        let ip = format!("10.{}.{}.1", i / 256, i % 256);
        let info = |attempt| RequestInfo {
            ip: Some(ip.clone()),
            path: format!("/api/v3/ip_addresses/{ip}"),
            attempt,
            seq: u64::from(attempt),
        };
        assert_eq!(policy.decide(&info(4)), Fault::None, "attempt 4 of {ip}");
        assert_eq!(policy.decide(&info(9)), Fault::None, "attempt 9 of {ip}");
        assert_eq!(
            policy.decide(&info(1)),
            FaultPolicy::mixed(42).decide(&info(1)),
            "same seed, same fault for {ip}"
        );
        if policy.decide(&info(1)) != Fault::None {
            faulted_first_attempts += 1;
        }
    }

    // About 65% of first attempts are faulted; the bounds leave room for
    // chance while still failing if the mix is off or empty.
    assert!(
        (250..=400).contains(&faulted_first_attempts),
        "{faulted_first_attempts} of 500 first attempts faulted"
    );
}

#[test]
fn mixed_policy_over_http_ends_in_success() {
    let server = FakeVt::start(
        FakeVtConfig::default().with_faults(FaultPolicy::mixed_with_stall(7, Duration::ZERO)),
    );
    let ips: Vec<String> = (1..=20).map(|i| format!("203.0.113.{i}")).collect();

    for ip in &ips {
        let mut succeeded = false;
        for _ in 0..4 {
            if let Ok(reply) = lookup(&server, ip)
                && reply.status == 200
                && reply.body == expected_document_bytes(ip)
            {
                succeeded = true;
                break;
            }
        }
        assert!(succeeded, "{ip} did not succeed within 4 attempts");
    }

    let stats = server.stats();
    for ip in &ips {
        assert_eq!(stats.successes(ip), 1, "successes of {ip}");
    }
    assert!(stats.faults.values().sum::<u64>() > 0);
}

#[test]
fn keep_alive_serves_two_requests() {
    let server = FakeVt::start(FakeVtConfig::default());
    let mut stream = connect(server.address());

    send_get(
        &mut stream,
        "/api/v3/ip_addresses/8.8.8.8",
        &[("x-apikey", TEST_KEY)],
    );
    let first = read_reply(&mut stream).unwrap();
    send_get(
        &mut stream,
        "/api/v3/ip_addresses/1.1.1.1?relationships=resolutions",
        &[("x-apikey", TEST_KEY)],
    );
    let second = read_reply(&mut stream).unwrap();

    assert_eq!(first.body, expected_document_bytes("8.8.8.8"));
    assert_eq!(second.body, expected_document_bytes("1.1.1.1"));
    let stats = server.stats();
    assert_eq!(stats.total_requests, 2);
    assert_eq!(stats.connections, 1);
}

#[test]
fn connection_close_is_honoured() {
    let server = FakeVt::start(FakeVtConfig::default());
    let mut stream = connect(server.address());

    send_get(
        &mut stream,
        "/api/v3/ip_addresses/8.8.8.8",
        &[("x-apikey", TEST_KEY), ("Connection", "close")],
    );
    let reply = read_reply(&mut stream).unwrap();
    let mut rest = Vec::new();
    let after = stream.read_to_end(&mut rest);

    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(after.unwrap(), 0, "server closed after the response");
}

#[test]
fn stats_count_requests_and_headers() {
    let config = FakeVtConfig::default()
        .with_latency(Duration::from_millis(300))
        .with_not_found("9.9.9.9");
    let server = FakeVt::start(config);
    let address = server.address();

    let workers: Vec<_> = ["8.8.8.8", "8.8.8.8", "1.1.1.1", "9.9.9.9"]
        .into_iter()
        .map(|ip| {
            thread::spawn(move || {
                get(
                    address,
                    &format!("/api/v3/ip_addresses/{ip}"),
                    &[
                        ("x-apikey", TEST_KEY),
                        ("Accept-Encoding", "gzip"),
                        ("User-Agent", GZIP_USER_AGENT),
                    ],
                )
                .unwrap()
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }

    let stats = server.stats();
    assert_eq!(stats.total_requests, 4);
    assert_eq!(stats.requests_for("8.8.8.8"), 2);
    assert_eq!(stats.successes("8.8.8.8"), 2);
    assert_eq!(stats.successes("1.1.1.1"), 1);
    assert_eq!(stats.successes("9.9.9.9"), 0);
    assert_eq!(stats.status_count(200), 3);
    assert_eq!(stats.status_count(404), 1);
    assert_eq!(stats.max_in_flight, 4);
    assert_eq!(stats.arrivals.len(), 4);
    assert_eq!(stats.max_in_window(Duration::from_secs(60)), 4);
    assert_eq!(stats.requests.len(), 4);
    for record in &stats.requests {
        assert_eq!(record.header("X-Apikey"), Some(TEST_KEY));
        assert!(record.header("user-agent").unwrap().contains("gzip"));
        assert!(!record.path.contains(TEST_KEY));
    }

    server.reset_stats();
    assert_eq!(server.stats().total_requests, 0);
    assert_eq!(server.stats().max_in_flight, 0);
}

#[test]
fn ipv6_lookup_uses_canonical_id() {
    let server = FakeVt::start(FakeVtConfig::default());

    let reply = lookup(&server, "2001%3A4860%3A4860%3A%3A8888").unwrap();

    assert_eq!(reply.status, 200);
    let document = reply.json();
    assert_eq!(document["data"]["id"], "2001:4860:4860::8888");
    assert_eq!(document["data"]["attributes"]["network"], "2001:4860::/32");
    assert_eq!(server.stats().successes("2001:4860:4860::8888"), 1);
}

#[test]
fn configured_document_is_served_verbatim() {
    let body = br#"{"data": {"id": "8.8.8.8", "type": "ip_address", "attributes": {}}}"#;
    let server = FakeVt::start(FakeVtConfig::default().with_document("8.8.8.8", &body[..]));

    let reply = lookup(&server, "8.8.8.8").unwrap();

    assert_eq!(reply.body, body);
}

#[test]
fn unknown_path_is_not_found() {
    let server = FakeVt::start(FakeVtConfig::default());

    let reply = get(
        server.address(),
        "/api/v3/domains/example.com",
        &[("x-apikey", TEST_KEY)],
    )
    .unwrap();

    assert_eq!(reply.status, 404);
    assert_eq!(reply.error_code(), "NotFoundError");
}

#[test]
fn documents_vary_by_address() {
    let a = expected_document("8.8.8.8");
    let b = expected_document("8.8.4.4");
    let attributes = |doc: &Value| doc["data"]["attributes"].clone();

    assert_eq!(
        expected_document("8.8.8.8"),
        a,
        "generation is deterministic"
    );
    assert_ne!(attributes(&a)["asn"], attributes(&b)["asn"]);
    assert_eq!(
        a["data"]["links"]["self"],
        "https://www.virustotal.com/api/v3/ip_addresses/8.8.8.8"
    );

    // The stats are a count of the per-engine categories.
    for doc in [&a, &b] {
        let attributes = attributes(doc);
        let results = attributes["last_analysis_results"].as_object().unwrap();
        let malicious = results
            .values()
            .filter(|engine| engine["category"] == "malicious")
            .count();
        assert_eq!(
            attributes["last_analysis_stats"]["malicious"],
            malicious as u64
        );
        let total: u64 = attributes["last_analysis_stats"]
            .as_object()
            .unwrap()
            .values()
            .map(|count| count.as_u64().unwrap())
            .sum();
        assert_eq!(total, results.len() as u64);
    }
}

#[test]
fn drop_stops_the_server() {
    let server = FakeVt::start(FakeVtConfig::default());
    let address = server.address();
    let mut idle = connect(address);
    send_get(
        &mut idle,
        "/api/v3/ip_addresses/8.8.8.8",
        &[("x-apikey", TEST_KEY)],
    );
    read_reply(&mut idle).unwrap();

    let started = Instant::now();
    drop(server);

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "drop took {:?}",
        started.elapsed()
    );
    assert!(TcpStream::connect(address).is_err(), "listener still open");
    let mut rest = Vec::new();
    assert_eq!(
        idle.read_to_end(&mut rest).unwrap_or(0),
        0,
        "idle connection closed"
    );
}

#[test]
fn per_minute_window_slides() {
    let window = Duration::from_millis(600);
    let mut config = FakeVtConfig::default().with_quota(KeyQuota::per_minute(2));
    config.quota_minute = window;
    let server = FakeVt::start(config);

    let started = Instant::now();
    assert_eq!(lookup(&server, "8.8.8.8").unwrap().status, 200);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(lookup(&server, "8.8.4.4").unwrap().status, 200);
    assert_eq!(lookup(&server, "1.1.1.1").unwrap().status, 429);
    // Past one window after the first request, only the second one counts.
    thread::sleep(
        (started + window + Duration::from_millis(50)).saturating_duration_since(Instant::now()),
    );
    assert_eq!(lookup(&server, "1.1.1.1").unwrap().status, 200);
    assert_eq!(lookup(&server, "1.0.0.1").unwrap().status, 429);
}

#[test]
fn max_in_window_counts_inclusive_windows() {
    let t0 = Instant::now();
    let at = |seconds: u64| t0 + Duration::from_secs(seconds);
    let stats = crate::fake_vt::Stats {
        arrivals: vec![at(0), at(30), at(60), at(61), at(125)],
        ..crate::fake_vt::Stats::default()
    };

    assert_eq!(stats.max_in_window(Duration::from_secs(60)), 3);
    // 30, 60 and 61 span exactly 31 s.
    assert_eq!(stats.max_in_window(Duration::from_secs(31)), 3);
    assert_eq!(stats.max_in_window(Duration::from_secs(30)), 2);
    assert_eq!(stats.max_in_window(Duration::from_secs(1000)), 5);
    assert_eq!(
        crate::fake_vt::Stats::default().max_in_window(Duration::from_secs(60)),
        0
    );
}

#[tokio::test]
async fn reqwest_client_reuses_one_connection() {
    let server = FakeVt::start(FakeVtConfig::default());
    let client = reqwest::Client::new();

    for ip in ["8.8.8.8", "8.8.4.4", "1.1.1.1"] {
        let response = client
            .get(format!("{}/ip_addresses/{ip}", server.url()))
            .header("x-apikey", TEST_KEY)
            .header("Accept-Encoding", "gzip")
            .header("User-Agent", GZIP_USER_AGENT)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers().get("content-encoding").unwrap(),
            "gzip",
            "encoding for {ip}"
        );
        let body = response.bytes().await.unwrap();
        assert_eq!(gunzip(&body), expected_document_bytes(ip), "body for {ip}");
    }

    let stats = server.stats();
    assert_eq!(stats.total_requests, 3);
    assert_eq!(stats.connections, 1);
}

fn page(server: &FakeVt, path: &str) -> Reply {
    get(server.address(), path, &[("x-apikey", TEST_KEY)]).unwrap()
}

#[test]
fn relationship_pages_are_capped_and_chained_by_cursor() {
    let server = FakeVt::start(FakeVtConfig::default().with_relationship("resolutions", 25));

    let first = page(&server, "/api/v3/ip_addresses/8.8.8.8/resolutions?limit=40");
    assert_eq!(first.status, 200);
    let first = first.json();
    assert_eq!(first["data"].as_array().unwrap().len(), 10);
    assert_eq!(
        first["data"][0],
        crate::fake_vt::expected_related_item("8.8.8.8", "resolutions", 0)
    );
    assert_eq!(first["meta"]["count"], 25);
    let cursor = first["meta"]["cursor"].as_str().unwrap().to_string();
    assert!(cursor.contains('+') && cursor.contains('/'), "{cursor}");
    let next = first["links"]["next"].as_str().unwrap();
    assert!(next.contains("cursor=%2B%2F"), "{next}");

    // The cursor travels form-encoded, as clients send it.
    let encoded: String = reqwest::Url::parse_with_params("http://x/", &[("cursor", &cursor)])
        .unwrap()
        .query()
        .unwrap()
        .to_string();
    let last = page(
        &server,
        &format!("/api/v3/ip_addresses/8.8.8.8/resolutions?limit=5&{encoded}"),
    )
    .json();
    assert_eq!(last["data"].as_array().unwrap().len(), 5);
    assert_eq!(
        last["data"][0],
        crate::fake_vt::expected_related_item("8.8.8.8", "resolutions", 10)
    );
    assert!(last["meta"]["cursor"].is_string());

    let stats = server.stats();
    assert_eq!(stats.relationship_requests_for("8.8.8.8", "resolutions"), 2);
    assert_eq!(stats.requests_for("8.8.8.8"), 0);
}

#[test]
fn last_and_empty_relationship_pages_have_no_cursor() {
    let server = FakeVt::start(FakeVtConfig::default().with_relationship("graphs", 3));

    let whole = page(&server, "/api/v3/ip_addresses/8.8.8.8/graphs").json();
    assert_eq!(whole["data"].as_array().unwrap().len(), 3);
    assert_eq!(whole["meta"], json!({"count": 3}));
    assert!(whole["links"].get("next").is_none());

    // An empty list looks like VirusTotal's empty comments page: no `meta`.
    let empty = page(&server, "/api/v3/ip_addresses/8.8.8.8/comments?limit=10").json();
    assert_eq!(empty["data"], json!([]));
    assert!(empty.get("meta").is_none());
    assert!(empty["links"]["self"].is_string());
}

#[test]
fn relationship_descriptors_and_refusals() {
    let server = FakeVt::start(
        FakeVtConfig::default()
            .with_relationship("urls", 2)
            .with_relationship("referrer_files", 2)
            .with_item_error("referrer_files", 1),
    );

    let descriptors = page(
        &server,
        "/api/v3/ip_addresses/8.8.8.8/relationships/referrer_files",
    )
    .json();
    let full = crate::fake_vt::expected_related_item("8.8.8.8", "referrer_files", 0);
    assert_eq!(
        descriptors["data"][0],
        json!({"type": "file", "id": full["id"]})
    );
    assert_eq!(descriptors["data"][1]["error"]["code"], "NotFoundError");

    let forbidden = page(&server, "/api/v3/ip_addresses/8.8.8.8/urls");
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.error_code(), "ForbiddenError");

    for path in [
        "/api/v3/ip_addresses/8.8.8.8/resolutions?limit=41",
        "/api/v3/ip_addresses/8.8.8.8/resolutions?limit=0",
        "/api/v3/ip_addresses/8.8.8.8/resolutions?cursor=bm9wZQ==",
        "/api/v3/ip_addresses/8.8.8.8/passive_dns",
    ] {
        let reply = page(&server, path);
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.error_code(), "InvalidArgumentError", "{path}");
    }

    let unknown = page(&server, "/api/v3/ip_addresses/192.0.2.1/resolutions");
    assert_eq!(unknown.status, 404);
}

#[test]
fn cursor_only_in_links_next_when_asked() {
    let server = FakeVt::start(
        FakeVtConfig::default()
            .with_relationship("resolutions", 12)
            .with_cursor_in_links_only(),
    );
    let first = page(&server, "/api/v3/ip_addresses/8.8.8.8/resolutions").json();
    assert!(first.get("meta").is_none());
    assert!(first["links"]["next"].as_str().unwrap().contains("cursor="));
}
