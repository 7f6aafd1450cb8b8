//! HTTPS trust (`--ca-cert`) and proxies (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`), against a
//! TLS front and a forward proxy on 127.0.0.1 in front of the fake VirusTotal server.
//!
//! No test resolves a real name. Proxied URLs use `vt.invalid` (RFC 6761 reserves `.invalid`,
//! so it never resolves), and only the local proxy reads that name and maps it to a port.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::fake_vt::{FakeVt, FakeVtConfig, TEST_KEY, document_facts};
use crate::net_servers::{ForwardProxy, ServerIdentity, TestCa, TlsFront};
use crate::support::{self, count_status, describe, ints, read_parquet, rows_by_ip};
use crate::timed::run_within;

/// Maximum time a run in this file may take. Each needs well under a second.
const LIMIT: Duration = Duration::from_secs(60);

fn public_ips(count: usize) -> Vec<String> {
    support::public_ips(60, count)
}

/// Files of one test: the input list, and a PEM file with an unrelated CA that replaces the
/// system's roots, so the outcome does not depend on this machine's store.
struct Workspace {
    dir: tempfile::TempDir,
    ips: Vec<String>,
    input: PathBuf,
    system_roots: PathBuf,
}

impl Workspace {
    fn new(count: usize) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let ips = public_ips(count);
        let input = support::write_list(&dir.path().join("ips.txt"), &ips);
        let system_roots = dir.path().join("system-roots.pem");
        std::fs::create_dir(dir.path().join("empty-cert-dir")).unwrap();
        std::fs::write(&system_roots, TestCa::new("Unrelated Public Root").pem()).unwrap();
        Workspace {
            dir,
            ips,
            input,
            system_roots,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `enrich` against `api_url`, with the test key and this workspace's stand-in system roots.
    fn enrich(&self, api_url: &str, out: &Path) -> Command {
        let mut command = support::vt_enrich();
        command
            .env("VT_API_KEY", TEST_KEY)
            .env("SSL_CERT_FILE", &self.system_roots)
            .env("SSL_CERT_DIR", self.path("empty-cert-dir"))
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .arg("enrich")
            .arg(&self.input)
            .arg("-o")
            .arg(out)
            .arg("--no-cache")
            .args(["--api-url", api_url, "--profile", "unlimited"])
            .args(["--concurrency", "4", "--max-retries", "2"])
            .args(["--backoff-base", "0.01", "--backoff-max", "0.05"])
            .args(["--connect-timeout", "2", "--read-timeout", "2"]);
        command
    }

    /// Checks that `out` contains an `ok` row with the fake server's document for every address.
    fn assert_all_ok(&self, out: &Path) {
        let batch = read_parquet(out);
        assert_eq!(batch.num_rows(), self.ips.len());
        assert_eq!(count_status(&batch, "ok"), self.ips.len());
        let rows = rows_by_ip(&batch);
        let asn = ints(&batch, "asn");
        for ip in &self.ips {
            assert_eq!(asn[rows[ip]], Some(document_facts(ip).asn as i64), "{ip}");
        }
    }
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A fake server behind a TLS front whose certificate a test CA issued for 127.0.0.1.
struct HttpsApi {
    fake: FakeVt,
    front: TlsFront,
    ca: TestCa,
}

impl HttpsApi {
    fn start(names: &[&str]) -> HttpsApi {
        let fake = FakeVt::start(FakeVtConfig::default());
        let ca = TestCa::new("Corporate Inspection Root");
        let front = TlsFront::start(&ca.issue(names), fake.address());
        HttpsApi { fake, front, ca }
    }

    fn url(&self) -> String {
        format!("https://{}/api/v3", self.front.address())
    }
}

#[test]
fn unknown_issuer_stops_the_run_with_its_cause() {
    let api = HttpsApi::start(&["127.0.0.1"]);
    let work = Workspace::new(6);
    let out = work.path("out.parquet");

    let output = run_within(&mut work.enrich(&api.url(), &out), LIMIT);
    assert_exit(&output, 1);

    let text = stderr(&output);
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(text.contains("certificate"), "{text}");
    assert!(text.contains("--ca-cert"), "{text}");
    // The first request goes out alone and its certificate error is not retried.
    assert_eq!(api.front.stats().failed_handshakes, 1);
    assert_eq!(api.fake.stats().total_requests, 0);
    assert!(!out.exists());
}

#[test]
fn ca_cert_bundle_trusts_the_inspecting_proxy() {
    let api = HttpsApi::start(&["127.0.0.1"]);
    let work = Workspace::new(6);
    // One file, two certificates: an unrelated root first, the one that matters second.
    let bundle = format!("{}{}", TestCa::new("Other Root").pem(), api.ca.pem());
    let ca_file = work.write("corporate-roots.pem", &bundle);
    let out = work.path("out.parquet");

    let output = run_within(
        work.enrich(&api.url(), &out).arg("--ca-cert").arg(&ca_file),
        LIMIT,
    );
    assert_exit(&output, 0);

    work.assert_all_ok(&out);
    assert!(api.front.stats().handshakes >= 1);
    assert_eq!(api.front.stats().failed_handshakes, 0);
}

#[test]
fn ca_cert_comes_from_env_or_config_file() {
    let api = HttpsApi::start(&["127.0.0.1"]);
    let work = Workspace::new(3);
    let ca_file = work.write("root.pem", &api.ca.pem());

    let by_env = work.path("env.parquet");
    let output = run_within(
        work.enrich(&api.url(), &by_env)
            .env("VT_ENRICH_CA_CERT", &ca_file),
        LIMIT,
    );
    assert_exit(&output, 0);
    work.assert_all_ok(&by_env);

    let config = work.write(
        "config.toml",
        &format!("ca_cert = {:?}\n", ca_file.display().to_string()),
    );
    let by_file = work.path("file.parquet");
    let output = run_within(
        work.enrich(&api.url(), &by_file)
            .arg("--config")
            .arg(&config),
        LIMIT,
    );
    assert_exit(&output, 0);
    work.assert_all_ok(&by_file);
}

#[test]
fn ca_cert_trusts_self_signed_server() {
    let fake = FakeVt::start(FakeVtConfig::default());
    let (identity, pem) = ServerIdentity::self_signed(&["127.0.0.1"]);
    let front = TlsFront::start(&identity, fake.address());
    let work = Workspace::new(3);
    let url = format!("https://{}/api/v3", front.address());

    let rejected = run_within(&mut work.enrich(&url, &work.path("a.parquet")), LIMIT);
    assert_exit(&rejected, 1);
    assert!(
        stderr(&rejected).contains("UnknownIssuer"),
        "{}",
        stderr(&rejected)
    );

    let ca_file = work.write("server.pem", &pem);
    let out = work.path("b.parquet");
    let trusted = run_within(
        work.enrich(&url, &out).arg("--ca-cert").arg(&ca_file),
        LIMIT,
    );
    assert_exit(&trusted, 0);
    work.assert_all_ok(&out);
}

#[test]
fn certificate_for_another_name_is_rejected() {
    let api = HttpsApi::start(&["proxy.example.invalid"]);
    let work = Workspace::new(3);
    let ca_file = work.write("root.pem", &api.ca.pem());
    let out = work.path("out.parquet");

    let output = run_within(
        work.enrich(&api.url(), &out).arg("--ca-cert").arg(&ca_file),
        LIMIT,
    );
    assert_exit(&output, 1);
    let text = stderr(&output);
    assert!(text.contains("not valid for name"), "{text}");
    assert!(text.contains("proxy.example.invalid"), "{text}");
    assert_eq!(api.fake.stats().total_requests, 0);
}

#[test]
fn unusable_ca_cert_file_is_a_usage_error() {
    let fake = FakeVt::start(FakeVtConfig::default());
    let work = Workspace::new(3);
    let der_like = work.write("root.der", "not a PEM file\n");
    let out = work.path("out.parquet");

    let output = run_within(
        work.enrich(&fake.url(), &out)
            .arg("--ca-cert")
            .arg(&der_like),
        LIMIT,
    );
    assert_exit(&output, 2);
    let text = stderr(&output);
    assert!(text.contains("--ca-cert"), "{text}");
    assert!(text.contains("root.der"), "{text}");
    assert!(text.contains("BEGIN CERTIFICATE"), "{text}");
    assert_eq!(fake.stats().total_requests, 0);

    let missing = run_within(
        work.enrich(&fake.url(), &out)
            .arg("--ca-cert")
            .arg(work.path("missing.pem")),
        LIMIT,
    );
    assert_exit(&missing, 2);
    assert!(
        stderr(&missing).contains("missing.pem"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn no_option_turns_certificate_checks_off() {
    for command in ["enrich", "quota"] {
        let output = run_within(support::vt_enrich().args([command, "--help"]), LIMIT);
        assert_exit(&output, 0);
        let help = String::from_utf8_lossy(&output.stdout).to_lowercase();
        assert!(help.contains("--ca-cert"), "{command}: {help}");
        for word in [
            "insecure",
            "danger",
            "no-verify",
            "accept-invalid",
            "skip-verify",
        ] {
            assert!(!help.contains(word), "{command} --help mentions {word}");
        }
    }
}

#[test]
fn quota_honours_ca_cert() {
    let api = HttpsApi::start(&["127.0.0.1"]);
    let work = Workspace::new(1);
    let quota = |extra: &[&str]| {
        let mut command = support::vt_enrich();
        command
            .env("VT_API_KEY", TEST_KEY)
            .env("SSL_CERT_FILE", &work.system_roots)
            .env("SSL_CERT_DIR", work.path("empty-cert-dir"))
            .args(["quota", "--no-cache", "--json", "--user-id", "analyst"])
            .args([
                "--api-url",
                &api.url(),
                "--connect-timeout",
                "2",
                "--read-timeout",
                "2",
            ])
            .args(extra);
        run_within(&mut command, LIMIT)
    };

    let rejected = quota(&[]);
    assert_exit(&rejected, 1);
    assert!(
        stderr(&rejected).contains("UnknownIssuer"),
        "{}",
        stderr(&rejected)
    );

    let ca_file = work.write("root.pem", &api.ca.pem());
    let trusted = quota(&["--ca-cert", ca_file.to_str().unwrap()]);
    assert_exit(&trusted, 0);
    let json: serde_json::Value = serde_json::from_slice(&trusted.stdout).unwrap();
    assert!(
        json["api"]["api_requests_daily"]["user"]["allowed"].is_u64(),
        "{json}"
    );
}

/// Proxy environment for a command: both proxy variables at `proxy`, in both spellings.
fn through_proxy<'a>(command: &'a mut Command, proxy: &ForwardProxy) -> &'a mut Command {
    command
        .env("HTTP_PROXY", proxy.url())
        .env("HTTPS_PROXY", proxy.url())
        .env("http_proxy", proxy.url())
        .env("https_proxy", proxy.url())
}

#[test]
fn http_proxy_carries_plain_http_requests() {
    let fake = FakeVt::start(FakeVtConfig::default());
    let proxy = ForwardProxy::start(HashMap::from([("vt.invalid".to_string(), fake.address())]));
    let work = Workspace::new(5);
    let out = work.path("out.parquet");

    let output = run_within(
        through_proxy(&mut work.enrich("http://vt.invalid/api/v3", &out), &proxy),
        LIMIT,
    );
    assert_exit(&output, 0);
    work.assert_all_ok(&out);

    let seen = proxy.requests();
    assert_eq!(seen.len(), work.ips.len(), "{seen:?}");
    for request in &seen {
        assert_eq!(request.method, "GET");
        assert!(
            request
                .target
                .starts_with("http://vt.invalid/api/v3/ip_addresses/"),
            "{request:?}"
        );
    }
    assert_eq!(fake.stats().total_requests, work.ips.len() as u64);
    // Plain http to a host other than this machine exposes the key, and the run warns of it.
    assert!(
        stderr(&output).contains("plain http"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn https_proxy_tunnels_with_connect() {
    let fake = FakeVt::start(FakeVtConfig::default());
    let ca = TestCa::new("Corporate Inspection Root");
    let front = TlsFront::start(&ca.issue(&["vt.invalid"]), fake.address());
    let proxy = ForwardProxy::start(HashMap::from([(
        "vt.invalid:443".to_string(),
        front.address(),
    )]));
    let work = Workspace::new(5);
    let ca_file = work.write("root.pem", &ca.pem());
    let out = work.path("out.parquet");

    let output = run_within(
        through_proxy(
            work.enrich("https://vt.invalid/api/v3", &out)
                .arg("--ca-cert")
                .arg(&ca_file),
            &proxy,
        ),
        LIMIT,
    );
    assert_exit(&output, 0);
    work.assert_all_ok(&out);

    let seen = proxy.requests();
    assert!(!seen.is_empty());
    for request in &seen {
        assert_eq!(request.method, "CONNECT", "{request:?}");
        assert_eq!(request.target, "vt.invalid:443");
        // Inside the tunnel the key is encrypted, so the proxy never reads it.
        assert!(request.headers.iter().all(|(name, _)| name != "x-apikey"));
    }
    assert_eq!(fake.stats().total_requests, work.ips.len() as u64);
}

#[test]
fn no_proxy_bypasses_the_proxy() {
    let fake = FakeVt::start(FakeVtConfig::default());
    let proxy = ForwardProxy::start(HashMap::new());
    let work = Workspace::new(4);
    let out = work.path("out.parquet");

    let mut command = work.enrich(&fake.url(), &out);
    through_proxy(&mut command, &proxy)
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1");
    let output = run_within(&mut command, LIMIT);
    assert_exit(&output, 0);
    work.assert_all_ok(&out);

    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
    assert_eq!(fake.stats().total_requests, work.ips.len() as u64);
    // Plain http to this machine carries nothing off it, so it is not warned about.
    assert!(
        !stderr(&output).contains("plain http"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn proxy_is_used_for_loopback_without_no_proxy() {
    // The counterpart of the NO_PROXY test: the proxy variables alone do route a 127.0.0.1
    // URL through the proxy, so the bypass above is NO_PROXY's doing.
    let fake = FakeVt::start(FakeVtConfig::default());
    let host = fake.address().ip().to_string();
    let proxy = ForwardProxy::start(HashMap::from([(host, fake.address())]));
    let work = Workspace::new(2);
    let out = work.path("out.parquet");

    let output = run_within(
        through_proxy(&mut work.enrich(&fake.url(), &out), &proxy),
        LIMIT,
    );
    assert_exit(&output, 0);
    assert_eq!(proxy.requests().len(), 2, "{:?}", proxy.requests());
}

/// `Basic` credentials `analyst:s3cret-pw`, base64-encoded as RFC 7617 specifies.
const PROXY_AUTH: &str = "Basic YW5hbHlzdDpzM2NyZXQtcHc=";

/// A proxy that demands [`PROXY_AUTH`] in front of a fake server over plain http
/// (`vt.invalid`) and over HTTPS (`vt.invalid:443`), and the root that signs the HTTPS front.
struct AuthProxy {
    fake: FakeVt,
    _front: TlsFront,
    proxy: ForwardProxy,
    ca: TestCa,
}

impl AuthProxy {
    fn start() -> AuthProxy {
        let fake = FakeVt::start(FakeVtConfig::default());
        let ca = TestCa::new("Corporate Inspection Root");
        let front = TlsFront::start(&ca.issue(&["vt.invalid"]), fake.address());
        let routes = HashMap::from([
            ("vt.invalid".to_string(), fake.address()),
            ("vt.invalid:443".to_string(), front.address()),
        ]);
        let proxy = ForwardProxy::start_with_auth(routes, Some(PROXY_AUTH));
        AuthProxy {
            fake,
            _front: front,
            proxy,
            ca,
        }
    }

    /// Returns the proxy URL with `credentials` (`user:password`) in it.
    fn url_with(&self, credentials: &str) -> String {
        self.proxy
            .url()
            .replace("http://", &format!("http://{credentials}@"))
    }
}

#[test]
fn proxy_407_stops_the_run_after_one_request() {
    let setup = AuthProxy::start();
    let work = Workspace::new(5);
    let ca_file = work.write("root.pem", &setup.ca.pem());

    for api_url in ["http://vt.invalid/api/v3", "https://vt.invalid/api/v3"] {
        let before = setup.proxy.requests().len();
        let out = work.path("out.parquet");
        let output = run_within(
            through_proxy(
                work.enrich(api_url, &out).arg("--ca-cert").arg(&ca_file),
                &setup.proxy,
            ),
            LIMIT,
        );
        assert_exit(&output, 1);
        let text = stderr(&output);
        assert!(text.contains("407"), "{api_url}: {text}");
        assert!(
            text.contains("HTTPS_PROXY=http://USER:PASSWORD@"),
            "{api_url}: {text}"
        );
        assert_eq!(setup.proxy.requests().len() - before, 1, "{api_url}");
        assert!(!out.exists());
    }
    assert_eq!(setup.fake.stats().total_requests, 0);
}

#[test]
fn proxy_credentials_come_from_the_proxy_url() {
    let setup = AuthProxy::start();
    let work = Workspace::new(4);
    let ca_file = work.write("root.pem", &setup.ca.pem());
    let proxy_url = setup.url_with("analyst:s3cret-pw");

    for api_url in ["http://vt.invalid/api/v3", "https://vt.invalid/api/v3"] {
        let out = work.path("out.parquet");
        let mut command = work.enrich(api_url, &out);
        command
            .arg("--ca-cert")
            .arg(&ca_file)
            .arg("-vvv")
            .env("HTTP_PROXY", &proxy_url)
            .env("HTTPS_PROXY", &proxy_url);
        let output = run_within(&mut command, LIMIT);
        assert_exit(&output, 0);
        work.assert_all_ok(&out);
        // The proxy password is a secret too.
        assert!(!stderr(&output).contains("s3cret-pw"), "{api_url}");
    }
    assert_eq!(setup.fake.stats().total_requests, 8);
}
