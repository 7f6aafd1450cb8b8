//! Columns taken from the `last_https_certificate` attribute.
//!
//! VirusTotal's certificate object nests the subject, issuer, validity, public key and
//! extensions. The useful leaves get columns. Everything else, including every extension other
//! than the subject alternative names, stays in a residual object with the original nesting,
//! so dotted extension keys such as `1.3.6.1.4.1.11129.2.4.2` are never split.

use serde_json::value::RawValue;

use super::json::{
    Leaf, Typed, integer, object_entries, split_nested, store, string, string_list,
    utc_date_time_text,
};

/// Typed leaves of `last_https_certificate`. Timestamps are microseconds since the Unix epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertificateColumns {
    pub subject_cn: Option<String>,
    pub issuer_c: Option<String>,
    pub issuer_cn: Option<String>,
    pub issuer_o: Option<String>,
    pub validity_not_before: Option<i64>,
    pub validity_not_after: Option<i64>,
    pub serial_number: Option<String>,
    pub thumbprint: Option<String>,
    pub thumbprint_sha256: Option<String>,
    pub subject_alternative_name: Option<Vec<String>>,
    pub public_key_algorithm: Option<String>,
    /// Key size in bits; see [`named_curve_bits`] for EC keys.
    pub public_key_size: Option<i64>,
    pub signature_algorithm: Option<String>,
    pub version: Option<String>,
    /// Size of the encoded certificate in bytes.
    pub size: Option<i64>,
}

/// Returns the field size in bits of a well-known named curve, matched by its SEC 2 name
/// (`secp256r1`), its OpenSSL alias (`prime256v1`) or its NIST name (`P-256`). Other curves
/// give `None`; their name stays in `extra_attributes` either way.
fn named_curve_bits(name: &str) -> Option<i64> {
    match name.to_ascii_lowercase().as_str() {
        "secp192r1" | "prime192v1" | "p-192" => Some(192),
        "secp224r1" | "p-224" => Some(224),
        "secp256r1" | "prime256v1" | "p-256" | "secp256k1" => Some(256),
        "secp384r1" | "p-384" => Some(384),
        "secp521r1" | "p-521" => Some(521),
        _ => None,
    }
}

impl CertificateColumns {
    /// Fills the columns from a certificate object and returns what has no column. A value
    /// that is not an object is returned as [`Leaf::Kept`] and fills nothing.
    pub(super) fn take(&mut self, raw: &RawValue) -> Leaf {
        split_nested(raw, |key, value| match key {
            "subject" => split_nested(value, |key, value| match key {
                "CN" => store(&mut self.subject_cn, string(value)).into(),
                _ => Leaf::Kept,
            }),
            "issuer" => split_nested(value, |key, value| match key {
                "C" => store(&mut self.issuer_c, string(value)).into(),
                "CN" => store(&mut self.issuer_cn, string(value)).into(),
                "O" => store(&mut self.issuer_o, string(value)).into(),
                _ => Leaf::Kept,
            }),
            "validity" => split_nested(value, |key, value| match key {
                "not_before" => {
                    store(&mut self.validity_not_before, utc_date_time_text(value)).into()
                }
                "not_after" => {
                    store(&mut self.validity_not_after, utc_date_time_text(value)).into()
                }
                _ => Leaf::Kept,
            }),
            "serial_number" => store(&mut self.serial_number, string(value)).into(),
            "thumbprint" => store(&mut self.thumbprint, string(value)).into(),
            "thumbprint_sha256" => store(&mut self.thumbprint_sha256, string(value)).into(),
            "signature_algorithm" => store(&mut self.signature_algorithm, string(value)).into(),
            "version" => store(&mut self.version, string(value)).into(),
            "size" => store(&mut self.size, integer(value)).into(),
            "extensions" => split_nested(value, |key, value| match key {
                "subject_alternative_name" => {
                    store(&mut self.subject_alternative_name, string_list(value)).into()
                }
                _ => Leaf::Kept,
            }),
            "public_key" => self.take_public_key(value),
            _ => Leaf::Kept,
        })
    }

    fn take_public_key(&mut self, raw: &RawValue) -> Leaf {
        split_nested(raw, |key, value| match key {
            "algorithm" => store(&mut self.public_key_algorithm, string(value)).into(),
            "rsa" => split_nested(value, |key, value| match key {
                "key_size" => store(&mut self.public_key_size, integer(value)).into(),
                _ => Leaf::Kept,
            }),
            "ec" => {
                // The size is derived from the curve name, which has no column, so the whole
                // `ec` object stays in the residual.
                let curve = json_object_string(value, "oid");
                if self.public_key_size.is_none() {
                    self.public_key_size = curve.as_deref().and_then(named_curve_bits);
                }
                Leaf::Kept
            }
            _ => Leaf::Kept,
        })
    }
}

/// Reads the string member `name` of an object value, if both exist.
fn json_object_string(raw: &RawValue, name: &str) -> Option<String> {
    let entries = object_entries(raw)?;
    let (_, value) = entries.into_iter().find(|(key, _)| key.as_str() == name)?;
    match string(value) {
        Typed::Value(text) => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::json::ExtraObject;
    use super::*;

    fn residual(leaf: Leaf, raw: &RawValue, key: &str, extra: &mut ExtraObject) {
        match leaf {
            Leaf::Taken => {}
            Leaf::Kept => extra.push_raw(key, raw),
            Leaf::Rest(rest) => extra.push_object(key, rest),
        }
    }

    fn take(text: &str) -> (CertificateColumns, Option<String>) {
        let raw = RawValue::from_string(text.to_string()).unwrap();
        let mut columns = CertificateColumns::default();
        let leaf = columns.take(&raw);
        let mut extra = ExtraObject::default();
        residual(leaf, &raw, "last_https_certificate", &mut extra);
        (columns, extra.finish())
    }

    #[test]
    fn rsa_certificate_leaves() {
        let (columns, extra) = take(
            r#"{"subject": {"CN": "dns.google", "O": "Google"},
                "issuer": {"C": "US", "O": "Google Trust Services", "CN": "WR2"},
                "validity": {"not_after": "2025-09-29 08:35:57", "not_before": "2025-07-07 08:35:58"},
                "public_key": {"algorithm": "RSA", "rsa": {"key_size": 2048, "exponent": "10001"}},
                "extensions": {"subject_alternative_name": ["dns.google", "8.8.8.8"],
                               "1.3.6.1.4.1.11129.2.4.2": "0481f1", "CA": false},
                "size": 1461, "version": "V3", "serial_number": "f6dd", "tags": []}"#,
        );
        assert_eq!(columns.subject_cn.as_deref(), Some("dns.google"));
        assert_eq!(columns.issuer_c.as_deref(), Some("US"));
        assert_eq!(columns.issuer_cn.as_deref(), Some("WR2"));
        assert_eq!(columns.issuer_o.as_deref(), Some("Google Trust Services"));
        assert_eq!(columns.validity_not_after, Some(1_759_134_957_000_000));
        assert_eq!(columns.public_key_algorithm.as_deref(), Some("RSA"));
        assert_eq!(columns.public_key_size, Some(2048));
        assert_eq!(
            columns.subject_alternative_name,
            Some(vec!["dns.google".to_string(), "8.8.8.8".to_string()])
        );
        assert_eq!(columns.size, Some(1461));
        assert_eq!(
            extra.as_deref(),
            Some(
                r#"{"last_https_certificate":{"subject":{"O":"Google"},"public_key":{"rsa":{"exponent":"10001"}},"extensions":{"1.3.6.1.4.1.11129.2.4.2":"0481f1","CA":false},"tags":[]}}"#
            )
        );
    }

    #[test]
    fn ec_key_size_from_curve() {
        let (columns, extra) = take(
            r#"{"public_key": {"algorithm": "EC", "ec": {"oid": "secp384r1", "pub": "04c5"}}}"#,
        );
        assert_eq!(columns.public_key_algorithm.as_deref(), Some("EC"));
        assert_eq!(columns.public_key_size, Some(384));
        assert_eq!(
            extra.as_deref(),
            Some(
                r#"{"last_https_certificate":{"public_key":{"ec":{"oid":"secp384r1","pub":"04c5"}}}}"#
            )
        );
    }

    #[test]
    fn wrong_leaf_types_stay_in_residual() {
        let (columns, extra) = take(
            r#"{"validity": {"not_before": "yesterday"}, "size": "big",
                "extensions": {"subject_alternative_name": "a.example"}, "subject": "CN=x"}"#,
        );
        assert_eq!(columns, CertificateColumns::default());
        assert_eq!(
            extra.as_deref(),
            Some(
                r#"{"last_https_certificate":{"validity":{"not_before":"yesterday"},"size":"big","extensions":{"subject_alternative_name":"a.example"},"subject":"CN=x"}}"#
            )
        );
    }

    #[test]
    fn non_object_certificate_is_kept() {
        let (columns, extra) = take(r#""not a certificate""#);
        assert_eq!(columns, CertificateColumns::default());
        assert_eq!(
            extra.as_deref(),
            Some(r#"{"last_https_certificate":"not a certificate"}"#)
        );
    }
}
