//! The check that a response body is one complete JSON value, shared by the fetch stage and the
//! cache so that both accept exactly the same bodies.

use serde::de::IgnoredAny;

/// Checks that `body` is exactly one valid JSON value, with only whitespace around it.
///
/// serde_json deserializes `IgnoredAny` by skipping over the value without building numbers or
/// strings. It checks the syntax and escapes but not the UTF-8 inside strings, and it accepts
/// an escaped lone surrogate such as `"\ud800"`; the flattener's own parse rejects both.
pub fn check_json(body: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<IgnoredAny>(body).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_complete_values() {
        let cases: [&[u8]; 8] = [
            b"{}",
            b" {\"a\": [1, 2.5e3, -0, true, null]}\n",
            b"\"text with \\u00e9 and \\\"quotes\\\"\"",
            b"[]",
            b"1",
            "{\"name\": \"caf\u{e9}\"}".as_bytes(),
            b"{\"nested\": {\"deep\": [[[]]]}}",
            b"{\"escaped\\nkey\": 1}",
        ];
        for case in cases {
            assert!(
                check_json(case).is_ok(),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn rejects_truncated_and_invalid_bodies() {
        let cases: [&[u8]; 9] = [
            b"",
            b"{\"data\": {\"id\": \"8.8",
            b"{\"a\": 1} trailing",
            b"{\"a\": 1}{}",
            b"<html>Bad gateway</html>",
            b"{\"a\": 01}",
            b"{\"a\": \"unescaped \x01 control\"}",
            b"{\"a\": \"bad \\q escape\"}",
            b"{a: 1}",
        ];
        for case in cases {
            assert!(
                check_json(case).is_err(),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }
}
