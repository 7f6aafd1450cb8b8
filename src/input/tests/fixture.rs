//! Helpers shared by the tests that read real files.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use tempfile::TempDir;

use crate::input::{InputOptions, InputStats, read_inputs};
use crate::model::{InputItem, Location};

/// Files written into one temporary directory, read with options tweaked by each test.
pub struct Fixture {
    pub dir: TempDir,
    pub paths: Vec<PathBuf>,
}

impl Fixture {
    pub fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            paths: Vec::new(),
        }
    }

    pub fn file(mut self, name: &str, content: &[u8]) -> Self {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        self.paths.push(path);
        self
    }

    pub fn options(&self) -> InputOptions {
        InputOptions {
            paths: self.paths.clone(),
            ..InputOptions::default()
        }
    }

    pub fn read(&self) -> (Vec<InputItem>, InputStats) {
        read_all(&self.options())
    }

    pub fn name(&self, index: usize) -> String {
        self.paths[index].display().to_string()
    }
}

pub fn read_all(options: &InputOptions) -> (Vec<InputItem>, InputStats) {
    let mut items = Vec::new();
    let stats = read_inputs(options, &mut |item| {
        items.push(item);
        true
    })
    .unwrap();
    (items, stats)
}

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

pub fn at(file: &str, line: u64) -> Location {
    Location {
        file: file.to_string(),
        line,
    }
}

/// Renders items compactly (`lookup 8.8.8.8 @3`) so that whole outputs compare in one assert.
pub fn summary(items: &[InputItem]) -> Vec<String> {
    items
        .iter()
        .map(|item| match item {
            InputItem::Lookup { ip, location } => format!("lookup {ip} @{}", location.line),
            InputItem::Skipped { ip, location, .. } => format!("skipped {ip} @{}", location.line),
            InputItem::Invalid { raw, location, .. } => format!("invalid {raw} @{}", location.line),
        })
        .collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

pub fn zstd_compress(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

pub fn assert_counts_add_up(stats: &InputStats) {
    let parts = stats.blank_values
        + stats.invalid_values
        + stats.duplicate_values
        + stats.skipped_addresses
        + stats.lookup_addresses;
    assert_eq!(stats.values_read, parts, "{stats:?}");
}
