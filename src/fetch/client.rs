//! One HTTP attempt against the API: build the request, read the body within a size cap, decode
//! it by its `Content-Encoding`, and describe what happened as an [`Attempt`].

use std::io::Read;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, HeaderMap, HeaderValue};
use serde::Deserialize;

use super::ApiKey;
use super::tls::{self, ExtraRoots};

/// The User-Agent must contain `gzip` for VirusTotal to compress responses, in addition to
/// `Accept-Encoding: gzip` (VirusTotal API v3 overview, "Response compression").
pub(crate) const USER_AGENT: &str = concat!("vt-enrich/", env!("CARGO_PKG_VERSION"), " (gzip)");

/// Settings of the HTTP client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// API root without a trailing slash, such as `https://www.virustotal.com/api/v3`.
    pub api_url: String,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response once the request is sent.
    pub read_timeout: Duration,
    /// Largest response body accepted, after decompression, in bytes.
    pub max_body_bytes: usize,
    /// Idle connections kept per host; sized to the concurrency so the pool is reused.
    pub pool_size: usize,
    /// Root certificates trusted besides the system's (`--ca-cert`).
    pub extra_roots: ExtraRoots,
    /// VirusTotal user ID for the quota endpoint's path. With `None` the API key goes there.
    pub user_id: Option<String>,
}

/// Outcome of one attempt, before any retry decision.
#[derive(Debug)]
pub enum Attempt {
    /// HTTP 200 with a complete, decoded body that parses as JSON.
    Success { body: Vec<u8> },
    /// Any other HTTP status, with VirusTotal's error code and message when the body had them.
    ApiError {
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
    /// No usable HTTP answer: connect error, timeout, reset, truncated or undecodable body.
    Transport {
        kind: TransportKind,
        /// The HTTP status when the failure happened while reading the body.
        status: Option<u16>,
        detail: String,
    },
}

/// Kind of transport failure, which becomes the row's `error_code` if retries run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Connect,
    Timeout,
    /// The connection broke, or the body ended before its announced length.
    Connection,
    /// The body could not be decompressed or did not parse as JSON.
    InvalidBody,
    /// The body was larger than the cap.
    BodyTooLarge,
    /// The server's TLS certificate failed verification (unknown issuer, expired, wrong name).
    TlsCertificate,
    /// The proxy rejected a `CONNECT` with 407 because its credentials are missing or wrong.
    ProxyAuth,
}

impl TransportKind {
    /// Returns the local error code written to the `error_code` column.
    pub fn code(self) -> &'static str {
        match self {
            TransportKind::Connect => "ConnectError",
            TransportKind::Timeout => "Timeout",
            TransportKind::Connection => "ConnectionError",
            TransportKind::InvalidBody => "InvalidResponse",
            TransportKind::BodyTooLarge => "ResponseTooLarge",
            TransportKind::TlsCertificate => "TlsCertificateError",
            TransportKind::ProxyAuth => "ProxyAuthenticationRequired",
        }
    }
}

/// VirusTotal's error body: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
}

/// HTTP client for the API's GET endpoints. Cheap to share: one connection pool for the run.
pub struct ApiClient {
    http: reqwest::Client,
    settings: ClientSettings,
    key_header: HeaderValue,
}

impl ApiClient {
    /// Builds the client, with the trust roots and proxies of [`tls::client_builder`].
    pub fn new(settings: ClientSettings, key: &ApiKey) -> anyhow::Result<ApiClient> {
        let mut key_header = HeaderValue::from_str(key.expose()).map_err(|_| {
            anyhow::anyhow!("the API key contains characters not allowed in an HTTP header")
        })?;
        key_header.set_sensitive(true);

        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));

        // A whole-request timeout on top of the read timeout stops a server that trickles one
        // byte at a time from holding a slot forever.
        let total_timeout = settings.connect_timeout + settings.read_timeout * 4;
        let http = tls::client_builder(&settings)
            .default_headers(headers)
            .timeout(total_timeout)
            .pool_max_idle_per_host(settings.pool_size)
            .build()
            .map_err(|err| {
                anyhow::anyhow!("cannot set up the HTTP client: {}", error_chain(&err))
            })?;

        Ok(ApiClient {
            http,
            settings,
            key_header,
        })
    }

    /// Returns the URL of the IP address object of `ip`.
    pub fn ip_url(&self, ip: &IpAddr) -> String {
        format!("{}/ip_addresses/{}", self.settings.api_url, ip)
    }

    /// Returns the API root, without a trailing slash.
    pub fn api_url(&self) -> &str {
        &self.settings.api_url
    }

    /// Sends one `GET url` (a URL under the API root) and reads the answer.
    pub async fn get(&self, url: &str) -> Attempt {
        let request = self
            .http
            .get(url)
            .header("x-apikey", self.key_header.clone());

        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => return transport_error(&err, None),
        };
        let status = response.status().as_u16();
        let encoding = response.headers().get(CONTENT_ENCODING).cloned();

        let raw = match read_capped(&mut response, self.settings.max_body_bytes).await {
            Ok(raw) => raw,
            Err(attempt) => return attempt.with_status(status),
        };

        let body = match decode_body(&raw, encoding.as_ref(), self.settings.max_body_bytes) {
            Ok(body) => body,
            Err(attempt) => return attempt.with_status(status),
        };

        if status == 200 {
            return parsed_success(status, body);
        }
        api_error(status, &body)
    }
}

impl Attempt {
    fn with_status(self, status: u16) -> Attempt {
        match self {
            Attempt::Transport { kind, detail, .. } => Attempt::Transport {
                kind,
                status: Some(status),
                detail,
            },
            other => other,
        }
    }
}

/// Reads the raw body chunk by chunk so that an oversized body is rejected before it is held.
async fn read_capped(response: &mut reqwest::Response, cap: usize) -> Result<Vec<u8>, Attempt> {
    let mut raw =
        Vec::with_capacity(response.content_length().unwrap_or(0).min(cap as u64) as usize);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if raw.len() + chunk.len() > cap {
                    return Err(too_large(cap));
                }
                raw.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(raw),
            Err(err) => return Err(transport_error(&err, None)),
        }
    }
}

/// Decodes the body by its `Content-Encoding` header, never by guessing from the bytes.
fn decode_body(raw: &[u8], encoding: Option<&HeaderValue>, cap: usize) -> Result<Vec<u8>, Attempt> {
    let encoding = encoding
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_ascii_lowercase());

    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(raw.to_vec()),
        Some("gzip") | Some("x-gzip") => {
            let mut decoded = Vec::with_capacity(raw.len() * 4);
            // Reading one byte past the cap tells a body that is exactly at the cap from a
            // decompression bomb.
            let mut reader = flate2::read::MultiGzDecoder::new(raw).take(cap as u64 + 1);
            if let Err(err) = reader.read_to_end(&mut decoded) {
                return Err(Attempt::Transport {
                    kind: TransportKind::InvalidBody,
                    status: None,
                    detail: format!("gzip body could not be decoded: {err}"),
                });
            }
            if decoded.len() > cap {
                return Err(too_large(cap));
            }
            Ok(decoded)
        }
        Some(other) => Err(Attempt::Transport {
            kind: TransportKind::InvalidBody,
            status: None,
            detail: format!("unsupported Content-Encoding `{other}` (only gzip was requested)"),
        }),
    }
}

fn parsed_success(status: u16, body: Vec<u8>) -> Attempt {
    // A 200 whose body is cut short or is not JSON is a transport fault, retried like a reset.
    match crate::json_check::check_json(&body) {
        Ok(_) => Attempt::Success { body },
        Err(err) => Attempt::Transport {
            kind: TransportKind::InvalidBody,
            status: Some(status),
            detail: format!(
                "response body is not valid JSON ({} bytes): {err}",
                body.len()
            ),
        },
    }
}

fn api_error(status: u16, body: &[u8]) -> Attempt {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => Attempt::ApiError {
            status,
            code: parsed.error.code,
            message: parsed.error.message,
        },
        Err(_) => Attempt::ApiError {
            status,
            code: None,
            message: Some(describe_unparsed_body(body)),
        },
    }
}

/// Keeps a short, printable excerpt of an error body that is not VirusTotal's JSON shape,
/// such as a proxy's HTML page.
fn describe_unparsed_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let excerpt: String = text
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if excerpt.trim().is_empty() {
        "empty error body".to_string()
    } else {
        format!("error body: {}", excerpt.trim())
    }
}

fn too_large(cap: usize) -> Attempt {
    Attempt::Transport {
        kind: TransportKind::BodyTooLarge,
        status: None,
        detail: format!(
            "response body larger than the {cap}-byte cap; raise `max_body_bytes` in the config \
             file if answers this large are expected"
        ),
    }
}

/// Describes a reqwest error by its whole cause chain (the TLS cause of a connect error, such
/// as an unknown issuer, sits several links down).
fn transport_error(err: &reqwest::Error, status: Option<u16>) -> Attempt {
    let detail = error_chain(err);
    let kind = if tls::certificate_error(err).is_some() {
        TransportKind::TlsCertificate
    } else if tls::is_proxy_auth_error(&detail) {
        TransportKind::ProxyAuth
    } else if err.is_timeout() {
        TransportKind::Timeout
    } else if err.is_connect() {
        TransportKind::Connect
    } else {
        TransportKind::Connection
    };

    Attempt::Transport {
        kind,
        status,
        detail,
    }
}

/// Joins the messages of an error and its sources with `: `, each text once, without URLs:
/// the request URL holds only the API root and the IP, but a proxy URL with credentials
/// could also appear in the chain.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut detail = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        let text = current.to_string();
        if !detail.contains(&text) {
            if !detail.is_empty() {
                detail.push_str(": ");
            }
            detail.push_str(&text);
        }
        source = current.source();
    }
    strip_urls(&detail)
}

/// Removes the ` for url (…)` part that reqwest appends to its messages.
fn strip_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(" for url (") {
        out.push_str(&rest[..start]);
        match rest[start..].find(')') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn plain_body_without_encoding_is_kept() {
        let body = decode_body(b"{}", None, 100).unwrap();
        assert_eq!(body, b"{}");
    }

    #[test]
    fn gzip_body_is_decoded_by_header() {
        let header = HeaderValue::from_static("gzip");
        let body = decode_body(&gzip(b"{\"a\":1}"), Some(&header), 100).unwrap();
        assert_eq!(body, b"{\"a\":1}");
    }

    #[test]
    fn gzip_header_on_plain_bytes_is_an_invalid_body() {
        let header = HeaderValue::from_static("gzip");
        let err = decode_body(b"{\"error\":{}}", Some(&header), 100).unwrap_err();
        assert!(matches!(
            err,
            Attempt::Transport {
                kind: TransportKind::InvalidBody,
                ..
            }
        ));
    }

    #[test]
    fn gzip_bomb_is_rejected_at_the_cap() {
        let header = HeaderValue::from_static("gzip");
        let bomb = gzip(&vec![b' '; 10_000]);
        let err = decode_body(&bomb, Some(&header), 1_000).unwrap_err();
        assert!(matches!(
            err,
            Attempt::Transport {
                kind: TransportKind::BodyTooLarge,
                ..
            }
        ));
    }

    #[test]
    fn error_body_keeps_code_and_message_in_any_key_order() {
        let body = br#"{"error": {"message": "Quota exceeded", "code": "QuotaExceededError"}}"#;
        match api_error(429, body) {
            Attempt::ApiError {
                status,
                code,
                message,
            } => {
                assert_eq!(status, 429);
                assert_eq!(code.as_deref(), Some("QuotaExceededError"));
                assert_eq!(message.as_deref(), Some("Quota exceeded"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn non_json_error_body_becomes_a_short_message() {
        match api_error(502, b"<html>\n<h1>Bad gateway</h1></html>") {
            Attempt::ApiError { code, message, .. } => {
                assert_eq!(code, None);
                let message = message.unwrap();
                assert!(message.contains("Bad gateway"), "{message}");
                assert!(!message.contains('\n'));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn truncated_json_is_an_invalid_body() {
        let attempt = parsed_success(200, b"{\"data\": {\"id\": \"8.8".to_vec());
        assert!(matches!(
            attempt,
            Attempt::Transport {
                kind: TransportKind::InvalidBody,
                status: Some(200),
                ..
            }
        ));
    }

    #[test]
    fn urls_are_removed_from_messages() {
        let text = "error sending request for url (http://user:pw@proxy/x): connection refused";
        assert_eq!(
            strip_urls(text),
            "error sending request: connection refused"
        );
    }
}
