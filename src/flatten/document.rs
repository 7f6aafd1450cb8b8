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
            match (self.top, key.as_str()) {
                (true, "data") => {
                    let data = map.next_value_seed(EnvelopeSeed { top: false })?;
                    envelope.data = Some(Box::new(data));
                }
                (true, "_id") => envelope.flat_id = Some(map.next_value::<Text>()?.0),
                (true, "_type") => envelope.flat_type = Some(map.next_value::<Text>()?.0),
                (true, _) => envelope.rest.push((key, map.next_value()?)),
                (false, "id") => envelope.id = Some(map.next_value::<Text>()?.0),
                (false, "type") => envelope.kind = Some(map.next_value::<Text>()?.0),
                (false, "attributes") => {
                    envelope.attributes = Some(map.next_value::<RawObject>()?.0);
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
