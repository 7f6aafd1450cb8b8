//! Integration tests: the built binary against real files, the real Parquet reader, and the
//! fake VirusTotal server over real HTTP on 127.0.0.1.

#[path = "../fake_vt/mod.rs"]
mod fake_vt;

mod address_forms;
mod cache;
mod cli;
mod compressed;
mod enrich_api;
mod enrich_saved;
mod extract;
mod fake_vt_server;
mod flatten_golden;
mod messy_csv;
mod quota;
mod support;
