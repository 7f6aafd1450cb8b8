//! Opening one input (a file or stdin) as a buffered byte stream, decompressed when needed.
//!
//! Compression is recognised by magic bytes, never by the file name, because stdin has no name
//! and exports are often renamed without changing their content.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const UTF8_BOM: &[u8] = &[0xef, 0xbb, 0xbf];

/// Large enough to amortise read calls on decompressed data, small enough to keep memory flat.
const BUFFER_SIZE: usize = 64 * 1024;

/// Compression of one input stream, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Returns the format name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// The raw handle of an input, opened before any input is read so that a missing file fails
/// the run before anything is emitted.
pub enum RawInput {
    Stdin,
    File(File),
}

/// Opens `path`, or prepares stdin when `path` is `-`.
pub fn open_raw(path: &Path) -> io::Result<RawInput> {
    if path.as_os_str() == "-" {
        return Ok(RawInput::Stdin);
    }

    let file = File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory, not a file",
        ));
    }
    Ok(file.into())
}

impl From<File> for RawInput {
    fn from(file: File) -> Self {
        RawInput::File(file)
    }
}

/// Wraps an input in the matching decoder.
///
/// Returns the stream and the compression it was read with, so that the caller can tell a
/// decoding failure from a read failure when a later read returns an error. Nothing is
/// decompressed yet, so a corrupt stream fails on the first read, not here.
pub fn decode(raw: RawInput) -> io::Result<(Box<dyn BufRead>, Compression)> {
    let source: Box<dyn Read> = match raw {
        RawInput::Stdin => Box::new(io::stdin().lock()),
        RawInput::File(file) => Box::new(file),
    };
    decode_reader(source)
}

/// Same as [`decode`], for any reader (tests use in-memory bytes).
pub fn decode_reader(mut source: Box<dyn Read>) -> io::Result<(Box<dyn BufRead>, Compression)> {
    let head = read_prefix(&mut source, ZSTD_MAGIC.len())?;
    let compression = detect_compression(&head);
    let rejoined = Cursor::new(head).chain(source);

    let decoded: Box<dyn Read> = match compression {
        Compression::None => Box::new(rejoined),
        Compression::Gzip => Box::new(MultiGzDecoder::new(rejoined)),
        Compression::Zstd => Box::new(zstd::Decoder::new(rejoined)?),
    };
    let reader: Box<dyn BufRead> = Box::new(BufReader::with_capacity(BUFFER_SIZE, decoded));
    Ok((reader, compression))
}

fn detect_compression(head: &[u8]) -> Compression {
    if head.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Reads up to `len` bytes, looping because pipes may return fewer bytes than are coming.
fn read_prefix(source: &mut dyn Read, len: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(len);
    source.take(len as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Consumes a UTF-8 byte order mark, which spreadsheet exports put before the header.
pub fn skip_bom(reader: &mut Box<dyn BufRead>) -> io::Result<()> {
    let mut seen = Vec::with_capacity(UTF8_BOM.len());
    while seen.len() < UTF8_BOM.len() {
        let available = reader.fill_buf()?;
        let Some(&byte) = available.first() else {
            break;
        };
        if byte != UTF8_BOM[seen.len()] {
            break;
        }
        seen.push(byte);
        reader.consume(1);
    }

    if seen.is_empty() || seen == UTF8_BOM {
        return Ok(());
    }
    // A partial BOM is data: put those bytes back in front of the rest.
    let rest = std::mem::replace(reader, Box::new(io::empty()));
    *reader = Box::new(Cursor::new(seen).chain(rest));
    Ok(())
}
