//! Integration tests: the built binary against real files, the real Parquet reader, and the
//! fake VirusTotal server over real HTTP on 127.0.0.1.

#[path = "../fake_vt/mod.rs"]
mod fake_vt;

mod address_forms;
mod cache;
mod child;
mod cli;
mod compressed;
mod enrich_api;
mod enrich_saved;
mod extract;
mod fake_vt_server;
mod fault_matrix;
mod flatten_golden;
mod hostile_inputs;
mod hostile_responses;
mod join;
mod messy_csv;
mod net_servers;
mod properties;
mod quota;
mod relationships;
mod resource_limits;
mod secrets;
mod storm;
mod support;
mod timed;
mod tls_proxy;
