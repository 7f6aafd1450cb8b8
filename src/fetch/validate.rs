//! Checks that a 200 answer is the IP address object that was requested, before it is cached.
//!
//! A body that parses as JSON but is another object (a domain, an error document sent with
//! status 200, the object of another address) would otherwise be cached as `ok` and served on
//! every later run. Such an answer will not change on a retry, so it is not retried either: the
//! address becomes `failed` with `InvalidResponse`, and the next run asks again.

use std::net::IpAddr;

use chrono::Utc;
use tracing::error;

use crate::flatten::{INVALID_RESPONSE_CODE, check_ip_document};
use crate::model::{AnswerSource, Lookup, Status};

/// Returns the `failed` row for `ip` when `body` is not its IP address object, or `None` when
/// it is.
pub(super) fn reject_wrong_document(ip: &IpAddr, body: &[u8]) -> Option<Lookup> {
    let problem = check_ip_document(body, ip).err()?;
    error!(%ip, error = %problem, "the API answered 200 with a document that is not this address's object; not caching it");

    let mut lookup = Lookup::without_body(ip, Status::Failed);
    lookup.source = Some(AnswerSource::Api);
    lookup.fetched_at = Some(Utc::now());
    lookup.error_code = Some(INVALID_RESPONSE_CODE.to_string());
    lookup.error_message = Some(format!(
        "the API answered 200 for {ip} with a document that is not its IP address object: \
         {problem}; not cached, so the next run asks again"
    ));
    Some(lookup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_document_passes() {
        let ip: IpAddr = "8.8.8.8".parse().unwrap();
        let body = br#"{"data": {"id": "8.8.8.8", "type": "ip_address", "attributes": {}}}"#;
        assert_eq!(reject_wrong_document(&ip, body), None);
    }

    #[test]
    fn other_address_names_both() {
        let ip: IpAddr = "8.8.8.8".parse().unwrap();
        let body = br#"{"data": {"id": "1.1.1.1", "type": "ip_address", "attributes": {}}}"#;
        let lookup = reject_wrong_document(&ip, body).expect("a mismatch is rejected");
        assert_eq!(lookup.status, Status::Failed);
        assert_eq!(lookup.error_code.as_deref(), Some("InvalidResponse"));
        let message = lookup.error_message.unwrap();
        assert!(message.contains("`1.1.1.1`"), "{message}");
        assert!(message.contains("`8.8.8.8`"), "{message}");
        assert_eq!(lookup.body, None);
    }
}
