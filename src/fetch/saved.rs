//! Saved responses as the source of answers (`--from`): a directory of `*.json` files, a JSON
//! file holding one document or an array of documents, or a JSON Lines file.
//!
//! The index keeps only where each document is (file and byte span), never the documents
//! themselves, so a million saved responses cost tens of megabytes, not gigabytes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{debug, info, warn};

use crate::flatten::document_id;
use crate::model::{AnswerSource, Lookup, Status};

/// Location of one saved document.
#[derive(Debug, Clone)]
enum DocRef {
    /// A whole file is the document.
    File(u32),
    /// A line of a JSON Lines file.
    Span { file: u32, offset: u64, len: u32 },
    /// An element of a JSON array file, kept in memory (such files are small exports).
    Inline(Arc<[u8]>),
}

/// Failure to read the saved documents. Fatal: the run cannot answer anything without them.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("cannot read saved responses at `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no saved VirusTotal IP address document found under `{0}`")]
    Empty(PathBuf),
}

/// Counts from building the index, for the log and the summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct IndexStats {
    pub documents: u64,
    /// Documents that are not IP address objects (error bodies, other object types, bad JSON).
    pub ignored: u64,
}

/// Index of saved documents by address.
pub struct SavedIndex {
    /// Directory or file given to `--from`, for messages.
    root: PathBuf,
    files: Vec<PathBuf>,
    entries: HashMap<IpAddr, DocRef>,
    /// Addresses in the order their first document was found, for `vt-enrich flatten`.
    order: Vec<IpAddr>,
    pub stats: IndexStats,
}

impl SavedIndex {
    /// Indexes every document under `root`. A later document for the same address replaces an
    /// earlier one, so files are read in name order to make that choice repeatable.
    pub fn open(root: &Path) -> Result<SavedIndex, SavedError> {
        let files = list_files(root)?;
        let mut index = SavedIndex {
            root: root.to_path_buf(),
            files: Vec::new(),
            entries: HashMap::new(),
            order: Vec::new(),
            stats: IndexStats::default(),
        };

        for path in files {
            index.add_file(path)?;
        }

        if index.entries.is_empty() {
            return Err(SavedError::Empty(root.to_path_buf()));
        }
        info!(
            documents = index.stats.documents,
            ignored = index.stats.ignored,
            addresses = index.entries.len(),
            "indexed saved responses"
        );
        Ok(index)
    }

    /// Returns the number of distinct addresses with a document.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns the addresses in the order their first document was found.
    pub fn addresses(&self) -> impl Iterator<Item = &IpAddr> {
        self.order.iter()
    }

    /// Returns whether the index contains no document.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Answers one address: `ok` with the saved document, or `not_found` when there is none.
    pub fn lookup(&self, ip: &IpAddr) -> Lookup {
        let Some(doc) = self.entries.get(ip) else {
            let mut lookup = Lookup::without_body(ip, Status::NotFound);
            lookup.source = Some(AnswerSource::File);
            lookup.error_code = Some("NotFoundError".to_string());
            lookup.error_message = Some(format!(
                "no saved document for this address in `{}`",
                self.root.display()
            ));
            return lookup;
        };

        match self.read(doc) {
            Ok(body) => {
                let mut lookup = Lookup::without_body(ip, Status::Ok);
                lookup.source = Some(AnswerSource::File);
                lookup.body = Some(body);
                lookup
            }
            Err(err) => {
                let mut lookup = Lookup::without_body(ip, Status::Failed);
                lookup.source = Some(AnswerSource::File);
                lookup.error_code = Some("SavedDocumentUnreadable".to_string());
                lookup.error_message = Some(err.to_string());
                lookup
            }
        }
    }

    fn read(&self, doc: &DocRef) -> Result<Vec<u8>, SavedError> {
        match doc {
            DocRef::Inline(bytes) => Ok(bytes.to_vec()),
            DocRef::File(file) => {
                let path = &self.files[*file as usize];
                std::fs::read(path).map_err(|source| io_error(path, source))
            }
            DocRef::Span { file, offset, len } => {
                let path = &self.files[*file as usize];
                let mut handle = File::open(path).map_err(|source| io_error(path, source))?;
                handle
                    .seek(SeekFrom::Start(*offset))
                    .map_err(|source| io_error(path, source))?;
                let mut bytes = vec![0; *len as usize];
                handle
                    .read_exact(&mut bytes)
                    .map_err(|source| io_error(path, source))?;
                Ok(bytes)
            }
        }
    }

    fn add_file(&mut self, path: PathBuf) -> Result<(), SavedError> {
        let file_number = self.files.len() as u32;
        let is_json_lines = matches!(
            path.extension().and_then(|ext| ext.to_str()),
            Some("jsonl" | "ndjson")
        );

        if is_json_lines {
            self.add_json_lines(&path, file_number)?;
        } else {
            let bytes = std::fs::read(&path).map_err(|source| io_error(&path, source))?;
            self.add_json_file(&path, &bytes, file_number);
        }

        self.files.push(path);
        Ok(())
    }

    fn add_json_file(&mut self, path: &Path, bytes: &[u8], file_number: u32) {
        let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
        if first == Some(&b'[') {
            // An array of documents, as `vt ip … --format json` prints.
            match serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(bytes) {
                Ok(items) => {
                    for item in items {
                        let bytes: Arc<[u8]> = Arc::from(item.get().as_bytes());
                        self.insert(path, &bytes, DocRef::Inline(bytes.clone()));
                    }
                }
                Err(err) => {
                    warn!(path = %path.display(), error = %err, "ignoring a file that is not a JSON array of documents");
                    self.stats.ignored += 1;
                }
            }
            return;
        }
        self.insert(path, bytes, DocRef::File(file_number));
    }

    fn add_json_lines(&mut self, path: &Path, file_number: u32) -> Result<(), SavedError> {
        let file = File::open(path).map_err(|source| io_error(path, source))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::new();
        let mut offset = 0u64;

        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|source| io_error(path, source))?;
            if read == 0 {
                return Ok(());
            }
            let start = offset;
            offset += read as u64;

            let trimmed_len = line.trim_ascii_end().len();
            if line.trim_ascii().is_empty() {
                continue;
            }
            let span = DocRef::Span {
                file: file_number,
                offset: start,
                len: trimmed_len as u32,
            };
            let document = line[..trimmed_len].to_vec();
            self.insert(path, &document, span);
        }
    }

    fn insert(&mut self, path: &Path, bytes: &[u8], doc: DocRef) {
        let id = match document_id(bytes) {
            Ok(id) => id,
            Err(err) => {
                debug!(path = %path.display(), error = %err, "ignoring a document that is not an IP address object");
                self.stats.ignored += 1;
                return;
            }
        };
        match id.parse::<IpAddr>() {
            Ok(ip) => {
                self.stats.documents += 1;
                let ip = canonical(ip);
                if self.entries.insert(ip, doc).is_none() {
                    self.order.push(ip);
                }
            }
            Err(_) => {
                warn!(path = %path.display(), id = %id, "ignoring a document whose id is not an IP address");
                self.stats.ignored += 1;
            }
        }
    }
}

/// Maps IPv4-mapped IPv6 ids to IPv4, as the input stage does with addresses.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Lists the files to index: `root` itself, or the `*.json`/`*.jsonl`/`*.ndjson` files directly
/// in it, sorted by name.
fn list_files(root: &Path) -> Result<Vec<PathBuf>, SavedError> {
    let metadata = std::fs::metadata(root).map_err(|source| io_error(root, source))?;
    if !metadata.is_dir() {
        return Ok(vec![root.to_path_buf()]);
    }

    let mut files = Vec::new();
    let entries = std::fs::read_dir(root).map_err(|source| io_error(root, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| io_error(root, source))?;
        let path = entry.path();
        let wanted = matches!(
            path.extension().and_then(|ext| ext.to_str()),
            Some("json" | "jsonl" | "ndjson")
        );
        if wanted && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn io_error(path: &Path, source: std::io::Error) -> SavedError {
    SavedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(ip: &str) -> String {
        format!(r#"{{"data": {{"id": "{ip}", "type": "ip_address", "attributes": {{"asn": 1}}}}}}"#)
    }

    #[test]
    fn json_lines_are_indexed_by_id_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("saved.jsonl");
        let text = format!(
            "{}\n\n{}\r\n{{\"error\": {{\"code\": \"NotFoundError\"}}}}\n",
            doc("8.8.8.8"),
            doc("2001:4860::8888")
        );
        std::fs::write(&path, text).unwrap();

        let index = SavedIndex::open(&path).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(index.stats.ignored, 1);

        let lookup = index.lookup(&"2001:4860::8888".parse().unwrap());
        assert_eq!(lookup.status, Status::Ok);
        assert_eq!(lookup.body.unwrap(), doc("2001:4860::8888").into_bytes());
    }

    #[test]
    fn directory_and_array_files_are_indexed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), doc("1.1.1.1")).unwrap();
        std::fs::write(
            dir.path().join("b.json"),
            format!("[{}, {}]", doc("9.9.9.9"), doc("::ffff:8.8.4.4")),
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a document").unwrap();

        let index = SavedIndex::open(dir.path()).unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!(index.lookup(&"8.8.4.4".parse().unwrap()).status, Status::Ok);
        assert_eq!(index.lookup(&"9.9.9.9".parse().unwrap()).status, Status::Ok);
    }

    #[test]
    fn missing_address_is_not_found_with_the_source_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), doc("1.1.1.1")).unwrap();
        let index = SavedIndex::open(dir.path()).unwrap();

        let lookup = index.lookup(&"8.8.8.8".parse().unwrap());
        assert_eq!(lookup.status, Status::NotFound);
        assert_eq!(lookup.source, Some(AnswerSource::File));
        assert!(lookup.error_message.unwrap().contains("no saved document"));
    }

    #[test]
    fn empty_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            SavedIndex::open(dir.path()),
            Err(SavedError::Empty(_))
        ));
    }
}
