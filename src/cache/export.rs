//! Export of the stored documents as JSON Lines, which `--from` reads back.

use std::io::Write;

use super::Cache;
use super::error::{CacheError, SqliteResultExt};

/// Answers read per lock. Bounds memory (a few MB of compressed bodies) and how long other
/// users of this handle wait.
const EXPORT_BATCH_ROWS: i64 = 256;

impl Cache {
    /// Writes every `ok` answer's document to `out` as JSON Lines, one document per line in
    /// insertion order, and returns the number of lines written. Answers of all API roots are
    /// included, so an address cached from two roots gives two lines.
    ///
    /// A document without line breaks is written byte for byte as received. A document with
    /// line breaks (pretty-printed) loses the whitespace between its tokens so it fits on one
    /// line, and it parses to the same value, with key order and number text unchanged.
    ///
    /// Streams in batches of short read transactions, so memory stays flat and concurrent
    /// runs keep working. Answers stored or replaced during the export may be left out.
    pub fn export(&self, out: &mut dyn Write) -> Result<u64, CacheError> {
        const OPERATION: &str = "export";
        let path = &self.path;
        let write_error = |source| CacheError::ExportWrite {
            path: path.clone(),
            source,
        };

        let mut after_id: i64 = 0;
        let mut written: u64 = 0;
        let mut line = Vec::new();
        loop {
            // Keyset pagination by row id: each batch is its own short query, and rows
            // updated in place by `put` keep their id, so none is written twice.
            let batch: Vec<(i64, String, Vec<u8>)> = {
                let guard = self.lock();
                let mut statement = guard
                    .conn
                    .prepare_cached(
                        "SELECT id, ip, body FROM answers \
                         WHERE id > ?1 AND status = 'ok' AND body IS NOT NULL \
                         ORDER BY id LIMIT ?2",
                    )
                    .during(path, OPERATION)?;
                statement
                    .query_map((after_id, EXPORT_BATCH_ROWS), |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })
                    .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
                    .during(path, OPERATION)?
            };
            let Some((last_id, _, _)) = batch.last() else {
                break;
            };
            after_id = *last_id;

            for (_, ip, compressed) in batch {
                let document = zstd::stream::decode_all(compressed.as_slice()).map_err(|err| {
                    CacheError::InvalidEntry {
                        path: path.clone(),
                        ip,
                        reason: format!("failed to decompress the body: {err}"),
                    }
                })?;
                line.clear();
                if document.contains(&b'\n') || document.contains(&b'\r') {
                    compact_json(&document, &mut line);
                } else {
                    line.extend_from_slice(&document);
                }
                line.push(b'\n');
                out.write_all(&line).map_err(write_error)?;
                written += 1;
            }
        }
        out.flush().map_err(write_error)?;
        Ok(written)
    }
}

/// Appends `document` to `out` without the whitespace between tokens.
///
/// `document` must be valid JSON, which `put` checks for `ok` bodies. JSON strings cannot
/// contain raw whitespace other than spaces, and spaces inside strings are kept, so the
/// result parses to the same value.
fn compact_json(document: &[u8], out: &mut Vec<u8>) {
    let mut in_string = false;
    let mut escaped = false;
    for &byte in document {
        if in_string {
            out.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b'"' => {
                in_string = true;
                out.push(byte);
            }
            _ => out.push(byte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::compact_json;

    #[test]
    fn compact_json_keeps_string_content() {
        let pretty = b"{\n  \"a b\": \"x \\\" \\\\ y\",\n  \"n\": [1, 2.50, -3e2]\n}\n";
        let mut compact = Vec::new();
        compact_json(pretty, &mut compact);
        assert_eq!(
            String::from_utf8(compact).unwrap(),
            r#"{"a b":"x \" \\ y","n":[1,2.50,-3e2]}"#
        );
    }
}
