//! Minimal HTTP/1.1 framing on top of `httparse`: enough to read GET requests
//! and write `Content-Length` responses byte by byte.

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Largest request head accepted, in bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest request body accepted (and discarded), in bytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;
const MAX_HEADERS: usize = 64;

/// A request head, with header names lower-cased.
#[derive(Clone, Debug)]
pub(super) struct Request {
    pub(super) method: String,
    pub(super) target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(super) minor_version: u8,
    pub(super) headers: Vec<(String, String)>,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Applies the HTTP/1.x persistence rules: 1.1 keeps the connection
    /// unless `Connection: close`, 1.0 closes it unless `keep-alive`.
    pub(super) fn keep_alive(&self) -> bool {
        let has_token = |token: &str| {
            self.header("connection").is_some_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        };
        if self.minor_version == 0 {
            has_token("keep-alive")
        } else {
            !has_token("close")
        }
    }

    /// Checks for both `Accept-Encoding: gzip` and a User-Agent containing
    /// `gzip`, the two conditions under which VirusTotal compresses. The API
    /// runs on Google App Engine, which applies that rule, as the comment in
    /// `newRequest` of VirusTotal's Go client explains
    /// (github.com/VirusTotal/vt-go, client.go).
    pub(super) fn negotiates_gzip(&self) -> bool {
        let contains_gzip = |name: &str| {
            self.header(name)
                .is_some_and(|value| value.to_ascii_lowercase().contains("gzip"))
        };
        contains_gzip("accept-encoding") && contains_gzip("user-agent")
    }
}

/// Failure to read a request.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The client closed the connection or the server is shutting down.
    Closed,
    /// The bytes are not an acceptable HTTP/1.x request, so the server replies
    /// 400 and closes the connection.
    Invalid(&'static str),
    Io(io::Error),
}

/// Reads the next request from `stream`, keeping bytes of any pipelined
/// request in `buffer`. A request body is read and discarded.
pub(super) async fn read_request(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Request, ReadError> {
    loop {
        if !buffer.is_empty()
            && let Some((request, head_len, body_len)) = parse_head(buffer)?
        {
            read_until(stream, buffer, head_len + body_len, shutdown).await?;
            buffer.drain(..head_len + body_len);
            return Ok(request);
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(ReadError::Invalid("request head too large"));
        }
        let target_len = buffer.len() + 1;
        read_until(stream, buffer, target_len, shutdown).await?;
    }
}

fn parse_head(buffer: &[u8]) -> Result<Option<(Request, usize, usize)>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buffer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ReadError::Invalid("malformed request head")),
    };

    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|header| {
            (
                header.name.to_ascii_lowercase(),
                String::from_utf8_lossy(header.value).into_owned(),
            )
        })
        .collect();
    let request = Request {
        method: parsed.method.unwrap_or_default().to_string(),
        target: parsed.path.unwrap_or_default().to_string(),
        minor_version: parsed.version.unwrap_or(1),
        headers,
    };

    if request.header("transfer-encoding").is_some() {
        // Clients send GET without a body, so chunked request bodies are not
        // decoded here.
        return Err(ReadError::Invalid(
            "Transfer-Encoding in a request is not supported",
        ));
    }
    let body_len = match request.header("content-length") {
        None => 0,
        Some(value) => match value.trim().parse::<usize>() {
            Ok(len) if len <= MAX_BODY_BYTES => len,
            _ => return Err(ReadError::Invalid("invalid Content-Length")),
        },
    };
    Ok(Some((request, head_len, body_len)))
}

/// Reads until `buffer` contains at least `len` bytes.
async fn read_until(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    len: usize,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ReadError> {
    let mut chunk = [0u8; 8192];
    while buffer.len() < len {
        if *shutdown.borrow() {
            return Err(ReadError::Closed);
        }
        let read = tokio::select! {
            read = stream.read(&mut chunk) => read,
            _ = shutdown.changed() => return Err(ReadError::Closed),
        };
        match read {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(error) => return Err(ReadError::Io(error)),
        }
    }
    Ok(())
}

/// A response before delivery.
#[derive(Clone, Debug)]
pub(super) struct Response {
    pub(super) status: u16,
    /// Body bytes as sent, already compressed when `gzip` is set.
    pub(super) body: Vec<u8>,
    pub(super) gzip: bool,
}

impl Response {
    /// Builds a JSON response, compressed when the request negotiated gzip.
    pub(super) fn json(status: u16, body: Vec<u8>, gzip: bool) -> Self {
        if gzip {
            Response {
                status,
                body: gzip_bytes(&body),
                gzip: true,
            }
        } else {
            Response {
                status,
                body,
                gzip: false,
            }
        }
    }

    /// Builds a VirusTotal error response. It is never compressed, because the
    /// real API may send error bodies (429 above all) uncompressed even to
    /// gzip clients, and clients must cope with that.
    pub(super) fn error(status: u16, code: &str, message: &str) -> Self {
        let body = json!({ "error": { "code": code, "message": message } });
        Response::json(status, body.to_string().into_bytes(), false)
    }

    /// Formats the status line and headers.
    pub(super) fn head(&self, close: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n",
            self.status,
            reason_phrase(self.status),
            self.body.len()
        );
        if self.gzip {
            head.push_str("Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

pub(super) fn gzip_bytes(bytes: &[u8]) -> Vec<u8> {
    // The fastest level: tests and benchmarks care about throughput, not size.
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .expect("writing into a Vec cannot fail")
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Decodes `%XX` escapes, which clients may use for the colons of IPv6
/// addresses. Returns `None` for a malformed escape or non-UTF-8 result.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).ok()
}
