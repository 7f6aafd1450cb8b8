//! vt-enrich: enrich IP addresses in bulk with VirusTotal API v3 IP address objects.
//!
//! Layout, one module per pipeline stage:
//! - [`input`]: reads files or stdin, normalises, validates and de-duplicates addresses;
//! - [`fetch`]: looks each address up in the API (paced, retried) or in saved documents;
//! - [`flatten`]: turns each IP address object into one typed row and its engine rows;
//! - [`output`]: writes Arrow batches as Parquet or CSV, atomically;
//! - [`join`]: with `--join`, writes every input row with its answers beside it;
//! - [`relationships`]: fetches relationships of the addresses found into one table each;
//! - [`pipeline`]: wires the stages with bounded channels;
//! - [`report`]: progress display and the final summary;
//! - [`app`], [`cli`], [`config`], [`exit`], [`logging`]: the command-line program around them.

pub mod app;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod exit;
pub mod fetch;
pub mod flatten;
pub mod input;
pub mod join;
pub mod json_check;
pub mod logging;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod relationships;
pub mod report;
