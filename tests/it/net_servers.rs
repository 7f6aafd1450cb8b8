//! Local stand-ins for the network between vt-enrich and the API, all on 127.0.0.1.
//!
//! [`TlsFront`] terminates HTTPS with a test certificate and forwards the plain bytes to the
//! fake VirusTotal server, as a TLS-inspecting proxy does. [`ForwardProxy`] serves
//! absolute-form `http://` requests and `CONNECT` tunnels for a fixed map of names.
//!
//! Each server runs its own tokio runtime on a background thread and stops when dropped.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Every I/O step of the test servers gives up after this long, so no test waits forever.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate authority made for one test, as a corporate proxy's root would be.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// Creates a root CA whose common name is `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// Returns the CA certificate as PEM, the form `--ca-cert` reads.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Issues a server certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> ServerIdentity {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let params = CertificateParams::new(names).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerIdentity {
            chain: vec![cert.der().clone()],
            key: key.serialize_der(),
        }
    }
}

/// A server certificate chain and its private key (PKCS#8 DER).
#[derive(Clone)]
pub struct ServerIdentity {
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: Vec<u8>,
}

impl ServerIdentity {
    /// Creates a self-signed certificate for `names`, with no CA behind it. Returns the
    /// identity and the certificate as PEM.
    pub fn self_signed(names: &[&str]) -> (ServerIdentity, String) {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let certified = rcgen::generate_simple_self_signed(names).unwrap();
        let identity = ServerIdentity {
            chain: vec![certified.cert.der().clone()],
            key: certified.signing_key.serialize_der(),
        };
        (identity, certified.cert.pem())
    }

    fn server_config(&self) -> rustls::ServerConfig {
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.key.clone().into());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .unwrap()
    }
}

/// Runs `serve` for every accepted connection on a background runtime until dropped.
struct Background {
    address: SocketAddr,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    fn start<F, Fut>(name: &str, serve: F) -> Background
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, mut shutdown_rx) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).unwrap();
                    let serve = Arc::new(serve);
                    loop {
                        let accepted = tokio::select! {
                            accepted = listener.accept() => accepted,
                            _ = shutdown_rx.changed() => return,
                        };
                        if let Ok((stream, _)) = accepted {
                            let _ = stream.set_nodelay(true);
                            tokio::spawn(serve(stream));
                        }
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .unwrap();
        Background {
            address,
            shutdown,
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Counters of a [`TlsFront`].
#[derive(Debug, Default, Clone)]
pub struct TlsFrontStats {
    /// TLS handshakes that completed.
    pub handshakes: u64,
    /// TLS handshakes that failed, such as a client rejecting the certificate.
    pub failed_handshakes: u64,
}

/// An HTTPS endpoint on 127.0.0.1 that forwards the decrypted bytes to `backend`.
pub struct TlsFront {
    background: Background,
    stats: Arc<Mutex<TlsFrontStats>>,
}

impl TlsFront {
    /// Serves TLS with `identity` and forwards each connection to `backend`.
    pub fn start(identity: &ServerIdentity, backend: SocketAddr) -> TlsFront {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(identity.server_config()));
        let stats = Arc::new(Mutex::new(TlsFrontStats::default()));
        let counters = stats.clone();
        let background = Background::start("tls-front", move |stream| {
            let acceptor = acceptor.clone();
            let counters = counters.clone();
            async move {
                let handshake = tokio::time::timeout(IO_TIMEOUT, acceptor.accept(stream)).await;
                let Ok(Ok(mut tls)) = handshake else {
                    counters.lock().unwrap().failed_handshakes += 1;
                    return;
                };
                counters.lock().unwrap().handshakes += 1;
                let Ok(mut upstream) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            }
        });
        TlsFront { background, stats }
    }

    pub fn address(&self) -> SocketAddr {
        self.background.address
    }

    pub fn stats(&self) -> TlsFrontStats {
        self.stats.lock().unwrap().clone()
    }
}

/// One request the proxy read from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    pub method: String,
    /// The request target as sent: `http://host/path` or `host:port` for `CONNECT`.
    pub target: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
}

/// A forward proxy on 127.0.0.1 that forwards only the names in its route map. Any other name
/// gets 502, so nothing is ever forwarded off this machine.
pub struct ForwardProxy {
    background: Background,
    seen: Arc<Mutex<Vec<ProxiedRequest>>>,
}

impl ForwardProxy {
    /// Starts a proxy that sends `host:port` (for `CONNECT`) or `host` (for absolute-form
    /// `http://` requests, any port) to the mapped address.
    pub fn start(routes: HashMap<String, SocketAddr>) -> ForwardProxy {
        ForwardProxy::start_with_auth(routes, None)
    }

    /// Like [`ForwardProxy::start`], but returns 407 to any request whose
    /// `Proxy-Authorization` header is not `required` (such as `Basic dXNlcjpwdw==`).
    pub fn start_with_auth(
        routes: HashMap<String, SocketAddr>,
        required: Option<&str>,
    ) -> ForwardProxy {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let routes = Arc::new(routes);
        let required = Arc::new(required.map(str::to_string));
        let background = Background::start("forward-proxy", move |stream| {
            let routes = routes.clone();
            let log = log.clone();
            let required = required.clone();
            async move {
                let serve = proxy_one(stream, &routes, required.as_deref(), &log);
                let _ = tokio::time::timeout(Duration::from_secs(30), serve).await;
            }
        });
        ForwardProxy { background, seen }
    }

    /// Returns the proxy URL for `HTTP_PROXY` and `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.background.address)
    }

    /// Returns every request read so far.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves one client connection: one absolute-form request, whose response closes the
/// connection, or one `CONNECT` tunnel.
async fn proxy_one(
    mut client: TcpStream,
    routes: &HashMap<String, SocketAddr>,
    required_auth: Option<&str>,
    log: &Mutex<Vec<ProxiedRequest>>,
) {
    let Some((request, head_len, mut buffer)) = read_head(&mut client).await else {
        return;
    };
    log.lock().unwrap().push(request.clone());
    let leftover = buffer.split_off(head_len);

    if let Some(required) = required_auth {
        let presented = request
            .headers
            .iter()
            .find(|(name, _)| name == "proxy-authorization")
            .map(|(_, value)| value.as_str());
        if presented != Some(required) {
            let rejection = "HTTP/1.1 407 Proxy Authentication Required\r\n\
                           Proxy-Authenticate: Basic realm=\"test\"\r\n\
                           Content-Length: 0\r\nConnection: close\r\n\r\n";
            let _ = client.write_all(rejection.as_bytes()).await;
            return;
        }
    }

    if request.method == "CONNECT" {
        let Some(&backend) = routes.get(&request.target) else {
            let _ = client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .await;
            return;
        };
        let Ok(mut upstream) = TcpStream::connect(backend).await else {
            return;
        };
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
            || upstream.write_all(&leftover).await.is_err()
        {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }

    // Absolute form: http://host[:port]/path
    let Some(rest) = request.target.strip_prefix("http://") else {
        let _ = client
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.split(':').next().unwrap_or_default();
    let Some(&backend) = routes.get(host) else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    };
    let Ok(mut upstream) = TcpStream::connect(backend).await else {
        return;
    };

    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, path);
    for (name, value) in &request.headers {
        if name != "connection" && !name.starts_with("proxy-") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("connection: close\r\n\r\n");
    if upstream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    // The origin closes after one response, and so does the proxy.
    let mut response = Vec::new();
    let _ = tokio::time::timeout(IO_TIMEOUT, upstream.read_to_end(&mut response)).await;
    let _ = client.write_all(&response).await;
    let _ = client.shutdown().await;
}

/// Reads one request head. Returns it with its length and every byte read so far.
async fn read_head(stream: &mut TcpStream) -> Option<(ProxiedRequest, usize, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);

        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head_len) = parsed.parse(&buffer).ok()? {
            let request = ProxiedRequest {
                method: parsed.method?.to_string(),
                target: parsed.path?.to_string(),
                headers: parsed
                    .headers
                    .iter()
                    .map(|header| {
                        (
                            header.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(header.value).into_owned(),
                        )
                    })
                    .collect(),
            };
            return Some((request, head_len, buffer));
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
    }
}
