//! HTTPS trust: extra root certificates for TLS-inspecting proxies (`--ca-cert`), the one
//! builder every HTTP client of the program starts from, and the check that separates a
//! rejected server certificate from a passing network fault.
//!
//! Certificate checks are always on. The system's roots (read by rustls-platform-verifier,
//! which honours `SSL_CERT_FILE` and `SSL_CERT_DIR` on Linux) stay trusted, and `--ca-cert`
//! only adds roots to them. There is deliberately no option that turns verification off.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::client::{ClientSettings, USER_AGENT};

/// Root certificates trusted in addition to the system's, read from one PEM file.
#[derive(Clone, Default)]
pub struct ExtraRoots {
    /// The file they came from, for messages.
    path: Option<PathBuf>,
    certificates: Vec<reqwest::Certificate>,
}

impl fmt::Debug for ExtraRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtraRoots")
            .field("path", &self.path)
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

impl ExtraRoots {
    /// Returns the number of certificates added to the system's roots.
    pub fn len(&self) -> usize {
        self.certificates.len()
    }

    /// Returns true when no certificate is added.
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }
}

/// A `--ca-cert` file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaCertError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{path}` contains no PEM certificate (a `-----BEGIN CERTIFICATE-----` block); \
         convert a DER file with `openssl x509 -inform der -in FILE -out FILE.pem`"
    )]
    NoCertificate { path: PathBuf },
    #[error("certificate {index} in `{path}` is not a valid PEM certificate: {reason}")]
    Invalid {
        path: PathBuf,
        /// 1-based position of the certificate in the file.
        index: usize,
        reason: String,
    },
}

/// Reads every `CERTIFICATE` block of a PEM file and checks that each can serve as a trust
/// anchor. Other blocks, such as private keys, are skipped.
pub fn load_ca_file(path: &Path) -> Result<ExtraRoots, CaCertError> {
    let bytes = std::fs::read(path).map_err(|source| CaCertError::Read {
        path: path.to_path_buf(),
        source,
    })?;

    let mut certificates = Vec::new();
    for (position, parsed) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let index = position + 1;
        let invalid = |reason: String| CaCertError::Invalid {
            path: path.to_path_buf(),
            index,
            reason,
        };
        let der = parsed.map_err(|err| invalid(err.to_string()))?;
        // The same parse the verifier does later, so a bad file fails here, before any
        // request, with the certificate's position instead of a builder error.
        rustls::RootCertStore::empty()
            .add(der.clone())
            .map_err(|err| invalid(err.to_string()))?;
        let certificate =
            reqwest::Certificate::from_der(der.as_ref()).map_err(|err| invalid(err.to_string()))?;
        certificates.push(certificate);
    }

    if certificates.is_empty() {
        return Err(CaCertError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(ExtraRoots {
        path: Some(path.to_path_buf()),
        certificates,
    })
}

/// Starts every HTTP client of the program: User-Agent, timeouts and trust roots.
/// Proxies come from `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (and their
/// lower-case forms), which reqwest reads by default.
pub fn client_builder(settings: &ClientSettings) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.read_timeout);
    if !settings.extra_roots.is_empty() {
        tracing::debug!(
            path = ?settings.extra_roots.path,
            certificates = settings.extra_roots.len(),
            "trusting extra root certificates besides the system's"
        );
        builder = builder.tls_certs_merge(settings.extra_roots.certificates.iter().cloned());
    }
    builder
}

/// Returns the TLS error in `err`'s source chain when it reports that the server's certificate
/// failed verification (unknown issuer, expired, wrong name…). Such an error repeats on every
/// request until the trust roots change, so it is not worth a retry.
pub fn certificate_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(tls) = as_tls_error(current)
            && matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        {
            return Some(tls);
        }
        source = current.source();
    }
    None
}

/// Returns true when an error chain's text reports that a proxy refused a `CONNECT` with 407.
/// hyper-util's tunnel error type is private, so its message is matched: "proxy
/// authorization required" (hyper-util 0.1.21, `TunnelError::ProxyAuthRequired`). A 407 to a
/// plain-http request is a normal response and is classified by its status instead.
pub fn is_proxy_auth_error(chain: &str) -> bool {
    chain.contains("proxy authorization required")
}

/// Finds a rustls error in one link of a chain. TLS streams report it inside an
/// `io::Error`, which the connector may wrap in another `io::Error`, and `io::Error::source`
/// skips the wrapped error, so those layers are unwrapped here.
fn as_tls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = err;
    loop {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = current.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = load_ca_file(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(matches!(err, CaCertError::Read { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn bundle_keeps_every_certificate_and_skips_keys() {
        let dir = tempfile::tempdir().unwrap();
        let first = rcgen::generate_simple_self_signed(vec!["a.invalid".to_string()]).unwrap();
        let second = rcgen::generate_simple_self_signed(vec!["b.invalid".to_string()]).unwrap();
        let bundle = format!(
            "{}{}{}",
            first.cert.pem(),
            first.signing_key.serialize_pem(),
            second.cert.pem()
        );
        let path = write(dir.path(), "bundle.pem", bundle.as_bytes());
        let roots = load_ca_file(&path).unwrap();
        assert_eq!(roots.len(), 2);
    }

    #[test]
    fn file_without_pem_block_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "ca.der", &[0x30, 0x82, 0x01, 0x0a]);
        let err = load_ca_file(&path).unwrap_err();
        assert!(matches!(err, CaCertError::NoCertificate { .. }), "{err}");
        assert!(
            err.to_string().contains("openssl x509 -inform der"),
            "{err}"
        );
    }

    #[test]
    fn garbage_inside_a_pem_block_names_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let path = write(dir.path(), "bad.pem", pem);
        let err = load_ca_file(&path).unwrap_err();
        match &err {
            CaCertError::Invalid { index, .. } => assert_eq!(*index, 1),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn certificate_error_is_found_inside_an_io_error() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let outer = std::io::Error::other(io);
        let found = certificate_error(&outer).expect("found");
        assert!(found.to_string().contains("UnknownIssuer"), "{found}");
    }

    #[test]
    fn proxy_407_on_connect_is_recognised() {
        let chain = "error sending request: client error (Connect): tunnel error: proxy authorization required";
        assert!(is_proxy_auth_error(chain));
        assert!(!is_proxy_auth_error(
            "client error (Connect): tunnel error: unsuccessful"
        ));
    }

    #[test]
    fn other_errors_are_not_certificate_errors() {
        let tls = rustls::Error::General("handshake failed".into());
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        assert!(certificate_error(&io).is_none());
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(certificate_error(&reset).is_none());
    }
}
