//! Recognition of the accepted document forms of an IP address object.
//!
//! Three forms carry the same object:
//! - the API response, `{"data": {"id", "type", "attributes": {...}}}`;
//! - the bare object, the value of that `data` member;
//! - the flat form of VirusTotal's `vt` command-line tool, whose `ObjectToMap` (in
//!   `utils/printer.go` of github.com/VirusTotal/vt-cli) puts the attributes at the top level
//!   beside two special keys, `_id` and `_type`. The tool prints a list of such maps, so a JSON
//!   array that contains exactly one object is accepted too.
//!
//! The API form and the flat form are read in one pass. Each attribute value is captured as
//! raw JSON text and is only parsed further if it has a column.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::FlattenError;
use super::json::{Entries, Key, RawObject};

/// The `type` of an IP address object.
const IP_ADDRESS_TYPE: &str = "ip_address";

/// An IP address object, with its attributes still as raw JSON.
#[derive(Debug)]
pub(super) struct Document<'a> {
    /// The object's `id`, which is the address text.
    pub id: Option<Cow<'a, str>>,
    pub attributes: Entries<'a>,
}

/// Members read from one JSON object of the envelope. At the top level every member but `data`,
/// `_id` and `_type` is kept in `rest`, because in the flat form those members are attributes.
#[derive(Debug, Default)]
struct Envelope<'a> {
    data: Option<Box<Envelope<'a>>>,
    flat_id: Option<Cow<'a, str>>,
    flat_type: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    attributes: Option<Entries<'a>>,
    rest: Entries<'a>,
}

/// Reads an envelope object. `top` distinguishes the document root from the `data` member.
struct EnvelopeSeed {
    top: bool,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed {
    type Value = Envelope<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        if self.top {
            deserializer.deserialize_any(self)
        } else {
            deserializer.deserialize_map(self)
        }
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a VirusTotal object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = Envelope::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            // A repeated envelope member is rejected instead of letting the last one win,
            // because a second `id` or `attributes` would silently replace the first.
            match (self.top, key.as_str()) {
                (true, "data") => {
                    let data = map.next_value_seed(EnvelopeSeed { top: false })?;
                    set_once(&mut envelope.data, Box::new(data), "data")?;
                }
                (true, "_id") => {
                    set_once(&mut envelope.flat_id, map.next_value::<Text>()?.0, "_id")?
                }
                (true, "_type") => set_once(
                    &mut envelope.flat_type,
                    map.next_value::<Text>()?.0,
                    "_type",
                )?,
                (true, _) => envelope.rest.push((key, map.next_value()?)),
                (false, "id") => set_once(&mut envelope.id, map.next_value::<Text>()?.0, "id")?,
                (false, "type") => {
                    set_once(&mut envelope.kind, map.next_value::<Text>()?.0, "type")?
                }
                (false, "attributes") => {
                    let attributes = map.next_value::<RawObject>()?.0;
                    set_once(&mut envelope.attributes, attributes, "attributes")?;
                }
                // `links`, `relationships` and any other member of the object itself.
                (false, _) => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Some(envelope) = seq.next_element_seed(EnvelopeSeed { top: true })? else {
            return Err(de::Error::custom(
                "the array is empty, expected one VirusTotal object",
            ));
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "the array contains more than one object, expected one VirusTotal object",
            ));
        }
        Ok(envelope)
    }
}

/// Fills `slot`, or fails with serde's duplicate-field error when it is already filled.
fn set_once<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}

/// A JSON string, borrowed from the input when it has no escape sequences.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Key::deserialize(deserializer).map(|key| Text(key.0))
    }
}

/// Removes the member `name` from `entries` and returns its value.
fn take_member<'a>(entries: &mut Entries<'a>, name: &str) -> Option<&'a RawValue> {
    let index = entries.iter().position(|(key, _)| key.as_str() == name)?;
    Some(entries.remove(index).1)
}

fn parse_string_member<'a>(
    entries: &mut Entries<'a>,
    name: &str,
) -> Result<Option<Cow<'a, str>>, FlattenError> {
    match take_member(entries, name) {
        Some(raw) => Ok(Some(serde_json::from_str::<Text>(raw.get())?.0)),
        None => Ok(None),
    }
}

/// Describes a top-level `{"error": {"code", "message"}}` body for the error message.
fn describe_error(raw: &RawValue) -> FlattenError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_str::<ErrorBody>(raw.get()) {
        Ok(body) => FlattenError::ErrorDocument {
            code: body.code.unwrap_or_default(),
            message: body.message.unwrap_or_default(),
        },
        Err(_) => FlattenError::ErrorDocument {
            code: String::new(),
            message: raw.get().to_string(),
        },
    }
}

/// Parses a document in any accepted form and checks that it is an IP address object.
pub(super) fn parse_document(bytes: &[u8]) -> Result<Document<'_>, FlattenError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let envelope = EnvelopeSeed { top: true }.deserialize(&mut deserializer)?;
    deserializer.end()?;

    let Envelope {
        data,
        flat_id,
        flat_type,
        mut rest,
        ..
    } = envelope;

    let (id, kind, attributes) = if let Some(data) = data {
        (data.id, data.kind, data.attributes.unwrap_or_default())
    } else if flat_id.is_some() || flat_type.is_some() {
        (flat_id, flat_type, rest)
    } else if rest
        .iter()
        .any(|(key, _)| matches!(key.as_str(), "id" | "type" | "attributes"))
    {
        let id = parse_string_member(&mut rest, "id")?;
        let kind = parse_string_member(&mut rest, "type")?;
        let attributes = match take_member(&mut rest, "attributes") {
            Some(raw) => serde_json::from_str::<RawObject>(raw.get())?.0,
            None => Entries::new(),
        };
        (id, kind, attributes)
    } else if let Some(error) = take_member(&mut rest, "error") {
        return Err(describe_error(error));
    } else {
        return Err(FlattenError::MissingType);
    };

    match kind.as_deref() {
        Some(IP_ADDRESS_TYPE) => Ok(Document { id, attributes }),
        Some(other) => Err(FlattenError::WrongType(other.to_string())),
        None => Err(FlattenError::MissingType),
    }
}

/// Returns the `id` of an IP address document in any accepted form, for indexing saved
/// responses by address.
pub fn document_id(bytes: &[u8]) -> Result<String, FlattenError> {
    let document = parse_document(bytes)?;
    match document.id {
        Some(id) if !id.is_empty() => Ok(id.into_owned()),
        _ => Err(FlattenError::MissingId),
    }
}

/// Longest `id` text quoted in an [`FlattenError::IdMismatch`] message, in characters, so a
/// hostile document cannot put megabytes into the `error_message` column.
const MAX_QUOTED_ID_CHARS: usize = 64;

/// Checks that `bytes` is the IP address object of `ip`, in any accepted form: its type is
/// `ip_address` and its `id` spells the same address. The `id` is compared as an address, so
/// `2001:DB8::1` and `::ffff:8.8.8.8` match `2001:db8::1` and `8.8.8.8`.
pub fn check_ip_document(bytes: &[u8], ip: &IpAddr) -> Result<(), FlattenError> {
    let document = parse_document(bytes)?;
    let id = match document.id {
        Some(id) if !id.is_empty() => id,
        _ => return Err(FlattenError::MissingId),
    };
    let found = id.parse::<IpAddr>().ok().map(unmap);
    if found == Some(unmap(*ip)) {
        return Ok(());
    }
    let mut quoted: String = id.chars().take(MAX_QUOTED_ID_CHARS).collect();
    if quoted.len() < id.len() {
        quoted.push('…');
    }
    Err(FlattenError::IdMismatch {
        requested: ip.to_string(),
        found: quoted,
    })
}

/// Turns IPv4-mapped IPv6 into IPv4, the form the input stage looks addresses up in.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(document: &Document) -> Vec<String> {
        document
            .attributes
            .iter()
            .map(|(key, _)| key.as_str().to_string())
            .collect()
    }

    #[test]
    fn api_response_form() {
        let body = br#"{"data": {"id": "8.8.8.8", "type": "ip_address", "links": {"self": "x"},
            "attributes": {"asn": 15169, "country": "US"}}}"#;
        let document = parse_document(body).unwrap();
        assert_eq!(document.id.as_deref(), Some("8.8.8.8"));
        assert_eq!(keys(&document), ["asn", "country"]);
    }

    #[test]
    fn bare_object_form() {
        let body = br#"{"attributes": {"asn": 15169}, "type": "ip_address", "id": "8.8.8.8"}"#;
        let document = parse_document(body).unwrap();
        assert_eq!(document.id.as_deref(), Some("8.8.8.8"));
        assert_eq!(keys(&document), ["asn"]);
    }

    #[test]
    fn vt_cli_flat_form() {
        let body = br#"{"_id": "8.8.8.8", "_type": "ip_address", "asn": 15169, "tags": []}"#;
        let document = parse_document(body).unwrap();
        assert_eq!(document.id.as_deref(), Some("8.8.8.8"));
        assert_eq!(keys(&document), ["asn", "tags"]);
    }

    #[test]
    fn vt_cli_list_of_one() {
        let body = br#"[{"_id": "1.1.1.1", "_type": "ip_address", "asn": 13335}]"#;
        assert_eq!(document_id(body).unwrap(), "1.1.1.1");
        let two = br#"[{"_id": "1.1.1.1", "_type": "ip_address"}, {"_id": "8.8.8.8"}]"#;
        assert!(document_id(two).is_err());
    }

    #[test]
    fn other_types_are_rejected() {
        let domain = br#"{"data": {"id": "example.com", "type": "domain", "attributes": {}}}"#;
        let error = parse_document(domain).unwrap_err();
        assert!(
            matches!(error, FlattenError::WrongType(ref t) if t == "domain"),
            "{error}"
        );
        let page = br#"{"data": [], "links": {"self": "x"}}"#;
        assert!(matches!(parse_document(page), Err(FlattenError::Json(_))));
        assert!(matches!(
            parse_document(b"{}"),
            Err(FlattenError::MissingType)
        ));
        assert!(matches!(
            parse_document(b"{\"data\": {"),
            Err(FlattenError::Json(_))
        ));
        assert!(matches!(
            parse_document(b"{} {}"),
            Err(FlattenError::Json(_))
        ));
    }

    #[test]
    fn repeated_envelope_members_are_rejected() {
        let cases: [&[u8]; 4] = [
            br#"{"data": {"id": "8.8.8.8", "id": "1.1.1.1", "type": "ip_address"}}"#,
            br#"{"data": {"id": "8.8.8.8", "type": "ip_address", "attributes": {"asn": 1},
                "attributes": {"asn": 2}}}"#,
            br#"{"data": {"id": "8.8.8.8", "type": "ip_address"},
                "data": {"id": "1.1.1.1", "type": "ip_address"}}"#,
            br#"{"_id": "8.8.8.8", "_type": "ip_address", "_id": "1.1.1.1"}"#,
        ];
        for body in cases {
            let error = parse_document(body).unwrap_err();
            assert!(
                error.to_string().contains("duplicate field"),
                "{}: {error}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn ip_document_check_compares_addresses() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let upper = br#"{"data": {"id": "2001:DB8::1", "type": "ip_address", "attributes": {}}}"#;
        assert!(check_ip_document(upper, &ip).is_ok());

        let v4: IpAddr = "8.8.8.8".parse().unwrap();
        let mapped = br#"{"_id": "::ffff:8.8.8.8", "_type": "ip_address"}"#;
        assert!(check_ip_document(mapped, &v4).is_ok());

        let other = br#"{"data": {"id": "1.1.1.1", "type": "ip_address", "attributes": {}}}"#;
        let error = check_ip_document(other, &v4).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the document is the object of `1.1.1.1`, not of the requested address `8.8.8.8`"
        );

        let long = format!(
            r#"{{"_id": "{}", "_type": "ip_address"}}"#,
            "x".repeat(10_000)
        );
        let error = check_ip_document(long.as_bytes(), &v4).unwrap_err();
        assert!(error.to_string().len() < 200, "{error}");

        let no_id = br#"{"data": {"type": "ip_address", "attributes": {}}}"#;
        assert!(matches!(
            check_ip_document(no_id, &v4),
            Err(FlattenError::MissingId)
        ));
        let domain = br#"{"data": {"id": "8.8.8.8", "type": "domain", "attributes": {}}}"#;
        assert!(matches!(
            check_ip_document(domain, &v4),
            Err(FlattenError::WrongType(_))
        ));
    }

    #[test]
    fn error_body_is_described() {
        let body = br#"{"error": {"message": "IP not found", "code": "NotFoundError"}}"#;
        let error = parse_document(body).unwrap_err();
        assert!(error.to_string().contains("NotFoundError"), "{error}");
        assert!(error.to_string().contains("IP not found"), "{error}");
    }

    #[test]
    fn document_id_needs_an_id() {
        let body = br#"{"data": {"type": "ip_address", "attributes": {}}}"#;
        assert!(matches!(document_id(body), Err(FlattenError::MissingId)));
    }
}
