//! Arrow builders that collect [`FlatRecord`]s into record batches.
//!
//! The builders are created once and reused: [`TableBuilder::finish`] hands out the batches and
//! leaves empty builders behind, so no schema or builder is built per row or per batch.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int8Builder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::engines::{ENGINE_NAMES, EngineResult, engine_index};
use super::json::ExtraObject;
use super::schema::{TIMESTAMP_TIMEZONE, engines_schema, main_schema};
use super::{EnginesMode, FlatRecord};

/// The batches of one [`TableBuilder::finish`] call.
#[derive(Debug, Clone)]
pub struct TableBatches {
    /// One row per pushed record, with [`main_schema`] for the builder's mode.
    pub main: RecordBatch,
    /// One row per engine result, with [`engines_schema`]; `Some` only for `EnginesMode::Long`.
    pub engines: Option<RecordBatch>,
}

fn timestamp_builder() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone(TIMESTAMP_TIMEZONE)
}

/// Builders of the main table's fixed columns, in schema order.
struct MainColumns {
    ip: StringBuilder,
    ip_version: Int8Builder,
    status: StringBuilder,
    error_code: StringBuilder,
    error_message: StringBuilder,
    fetched_at: TimestampMicrosecondBuilder,
    source: StringBuilder,
    as_owner: StringBuilder,
    asn: Int64Builder,
    continent: StringBuilder,
    country: StringBuilder,
    jarm: StringBuilder,
    network: StringBuilder,
    regional_internet_registry: StringBuilder,
    reputation: Int64Builder,
    tags: ListBuilder<StringBuilder>,
    whois: StringBuilder,
    whois_date: TimestampMicrosecondBuilder,
    last_analysis_date: TimestampMicrosecondBuilder,
    last_modification_date: TimestampMicrosecondBuilder,
    last_https_certificate_date: TimestampMicrosecondBuilder,
    first_seen_date: TimestampMicrosecondBuilder,
    /// harmless, malicious, suspicious, timeout, undetected.
    stats: [Int64Builder; 5],
    /// harmless, malicious.
    votes: [Int64Builder; 2],
    cert_subject_cn: StringBuilder,
    cert_issuer_c: StringBuilder,
    cert_issuer_cn: StringBuilder,
    cert_issuer_o: StringBuilder,
    cert_not_before: TimestampMicrosecondBuilder,
    cert_not_after: TimestampMicrosecondBuilder,
    cert_serial_number: StringBuilder,
    cert_thumbprint: StringBuilder,
    cert_thumbprint_sha256: StringBuilder,
    cert_subject_alternative_name: ListBuilder<StringBuilder>,
    cert_public_key_algorithm: StringBuilder,
    cert_public_key_size: Int64Builder,
    cert_signature_algorithm: StringBuilder,
    cert_version: StringBuilder,
    cert_size: Int64Builder,
    extra_attributes: StringBuilder,
}

fn append_list(builder: &mut ListBuilder<StringBuilder>, items: Option<Vec<String>>) {
    match items {
        Some(items) => {
            for item in items {
                builder.values().append_value(item);
            }
            builder.append(true);
        }
        None => builder.append(false),
    }
}

impl MainColumns {
    fn new() -> Self {
        MainColumns {
            ip: StringBuilder::new(),
            ip_version: Int8Builder::new(),
            status: StringBuilder::new(),
            error_code: StringBuilder::new(),
            error_message: StringBuilder::new(),
            fetched_at: timestamp_builder(),
            source: StringBuilder::new(),
            as_owner: StringBuilder::new(),
            asn: Int64Builder::new(),
            continent: StringBuilder::new(),
            country: StringBuilder::new(),
            jarm: StringBuilder::new(),
            network: StringBuilder::new(),
            regional_internet_registry: StringBuilder::new(),
            reputation: Int64Builder::new(),
            tags: ListBuilder::new(StringBuilder::new()),
            whois: StringBuilder::new(),
            whois_date: timestamp_builder(),
            last_analysis_date: timestamp_builder(),
            last_modification_date: timestamp_builder(),
            last_https_certificate_date: timestamp_builder(),
            first_seen_date: timestamp_builder(),
            stats: std::array::from_fn(|_| Int64Builder::new()),
            votes: std::array::from_fn(|_| Int64Builder::new()),
            cert_subject_cn: StringBuilder::new(),
            cert_issuer_c: StringBuilder::new(),
            cert_issuer_cn: StringBuilder::new(),
            cert_issuer_o: StringBuilder::new(),
            cert_not_before: timestamp_builder(),
            cert_not_after: timestamp_builder(),
            cert_serial_number: StringBuilder::new(),
            cert_thumbprint: StringBuilder::new(),
            cert_thumbprint_sha256: StringBuilder::new(),
            cert_subject_alternative_name: ListBuilder::new(StringBuilder::new()),
            cert_public_key_algorithm: StringBuilder::new(),
            cert_public_key_size: Int64Builder::new(),
            cert_signature_algorithm: StringBuilder::new(),
            cert_version: StringBuilder::new(),
            cert_size: Int64Builder::new(),
            extra_attributes: StringBuilder::new(),
        }
    }

    /// Appends the record's main-table values; the engine results are left in the record.
    fn append(&mut self, record: &mut FlatRecord) {
        self.ip.append_value(&record.ip);
        // The model only produces 4 and 6; anything else is stored as null, not wrapped.
        let version = record.ip_version.and_then(|v| i8::try_from(v).ok());
        self.ip_version.append_option(version);
        self.status.append_value(record.status.as_str());
        self.error_code.append_option(record.error_code.as_deref());
        self.error_message
            .append_option(record.error_message.as_deref());
        let fetched_at = record.fetched_at.map(|at| at.timestamp_micros());
        self.fetched_at.append_option(fetched_at);
        self.source.append_option(record.source.map(|s| s.as_str()));

        let attributes = std::mem::take(&mut record.attributes);
        self.as_owner.append_option(attributes.as_owner);
        self.asn.append_option(attributes.asn);
        self.continent.append_option(attributes.continent);
        self.country.append_option(attributes.country);
        self.jarm.append_option(attributes.jarm);
        self.network.append_option(attributes.network);
        self.regional_internet_registry
            .append_option(attributes.regional_internet_registry);
        self.reputation.append_option(attributes.reputation);
        append_list(&mut self.tags, attributes.tags);
        self.whois.append_option(attributes.whois);
        self.whois_date.append_option(attributes.whois_date);
        self.last_analysis_date
            .append_option(attributes.last_analysis_date);
        self.last_modification_date
            .append_option(attributes.last_modification_date);
        self.last_https_certificate_date
            .append_option(attributes.last_https_certificate_date);
        self.first_seen_date
            .append_option(attributes.first_seen_date);

        let stats = attributes.last_analysis_stats;
        let stat_values = [
            stats.harmless,
            stats.malicious,
            stats.suspicious,
            stats.timeout,
            stats.undetected,
        ];
        for (builder, value) in self.stats.iter_mut().zip(stat_values) {
            builder.append_option(value);
        }
        let vote_values = [
            attributes.total_votes.harmless,
            attributes.total_votes.malicious,
        ];
        for (builder, value) in self.votes.iter_mut().zip(vote_values) {
            builder.append_option(value);
        }

        let cert = attributes.last_https_certificate;
        self.cert_subject_cn.append_option(cert.subject_cn);
        self.cert_issuer_c.append_option(cert.issuer_c);
        self.cert_issuer_cn.append_option(cert.issuer_cn);
        self.cert_issuer_o.append_option(cert.issuer_o);
        self.cert_not_before.append_option(cert.validity_not_before);
        self.cert_not_after.append_option(cert.validity_not_after);
        self.cert_serial_number.append_option(cert.serial_number);
        self.cert_thumbprint.append_option(cert.thumbprint);
        self.cert_thumbprint_sha256
            .append_option(cert.thumbprint_sha256);
        append_list(
            &mut self.cert_subject_alternative_name,
            cert.subject_alternative_name,
        );
        self.cert_public_key_algorithm
            .append_option(cert.public_key_algorithm);
        self.cert_public_key_size
            .append_option(cert.public_key_size);
        self.cert_signature_algorithm
            .append_option(cert.signature_algorithm);
        self.cert_version.append_option(cert.version);
        self.cert_size.append_option(cert.size);
        self.extra_attributes
            .append_option(record.extra_attributes.take());
    }

    /// Finishes every builder into `arrays`, in schema order.
    fn finish_into(&mut self, arrays: &mut Vec<ArrayRef>) {
        let [h, m, s, t, u] = &mut self.stats;
        let [vh, vm] = &mut self.votes;
        arrays.extend([
            Arc::new(self.ip.finish()) as ArrayRef,
            Arc::new(self.ip_version.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.error_code.finish()),
            Arc::new(self.error_message.finish()),
            Arc::new(self.fetched_at.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.as_owner.finish()),
            Arc::new(self.asn.finish()),
            Arc::new(self.continent.finish()),
            Arc::new(self.country.finish()),
            Arc::new(self.jarm.finish()),
            Arc::new(self.network.finish()),
            Arc::new(self.regional_internet_registry.finish()),
            Arc::new(self.reputation.finish()),
            Arc::new(self.tags.finish()),
            Arc::new(self.whois.finish()),
            Arc::new(self.whois_date.finish()),
            Arc::new(self.last_analysis_date.finish()),
            Arc::new(self.last_modification_date.finish()),
            Arc::new(self.last_https_certificate_date.finish()),
            Arc::new(self.first_seen_date.finish()),
            Arc::new(h.finish()),
            Arc::new(m.finish()),
            Arc::new(s.finish()),
            Arc::new(t.finish()),
            Arc::new(u.finish()),
            Arc::new(vh.finish()),
            Arc::new(vm.finish()),
            Arc::new(self.cert_subject_cn.finish()),
            Arc::new(self.cert_issuer_c.finish()),
            Arc::new(self.cert_issuer_cn.finish()),
            Arc::new(self.cert_issuer_o.finish()),
            Arc::new(self.cert_not_before.finish()),
            Arc::new(self.cert_not_after.finish()),
            Arc::new(self.cert_serial_number.finish()),
            Arc::new(self.cert_thumbprint.finish()),
            Arc::new(self.cert_thumbprint_sha256.finish()),
            Arc::new(self.cert_subject_alternative_name.finish()),
            Arc::new(self.cert_public_key_algorithm.finish()),
            Arc::new(self.cert_public_key_size.finish()),
            Arc::new(self.cert_signature_algorithm.finish()),
            Arc::new(self.cert_version.finish()),
            Arc::new(self.cert_size.finish()),
            Arc::new(self.extra_attributes.finish()),
        ]);
    }
}

/// Builders of the `EnginesMode::Wide` columns: one category column per known engine and one
/// JSON column for the others.
struct WideEngineColumns {
    known: Vec<StringBuilder>,
    other: StringBuilder,
    /// Category of each known engine for the row being appended, reused between rows.
    row: Vec<Option<String>>,
}

impl WideEngineColumns {
    fn new() -> Self {
        WideEngineColumns {
            known: ENGINE_NAMES.iter().map(|_| StringBuilder::new()).collect(),
            other: StringBuilder::new(),
            row: vec![None; ENGINE_NAMES.len()],
        }
    }

    fn append(&mut self, engines: Vec<EngineResult>) {
        let mut other = ExtraObject::default();
        for engine in engines {
            match engine_index(&engine.engine_name) {
                Some(index) if self.row[index].is_none() => self.row[index] = engine.category,
                _ => match &engine.category {
                    Some(category) => other.push_string(&engine.engine_name, category),
                    None => other.push_null(&engine.engine_name),
                },
            }
        }
        for (builder, category) in self.known.iter_mut().zip(self.row.iter_mut()) {
            builder.append_option(category.take());
        }
        self.other.append_option(other.finish());
    }

    fn finish_into(&mut self, arrays: &mut Vec<ArrayRef>) {
        for builder in &mut self.known {
            arrays.push(Arc::new(builder.finish()));
        }
        arrays.push(Arc::new(self.other.finish()));
    }
}

/// Builders of the engines table of `EnginesMode::Long`.
struct LongEngineColumns {
    ip: StringBuilder,
    engine_name: StringBuilder,
    category: StringBuilder,
    method: StringBuilder,
    result: StringBuilder,
}

impl LongEngineColumns {
    fn new() -> Self {
        LongEngineColumns {
            ip: StringBuilder::new(),
            engine_name: StringBuilder::new(),
            category: StringBuilder::new(),
            method: StringBuilder::new(),
            result: StringBuilder::new(),
        }
    }

    fn append(&mut self, ip: &str, engines: Vec<EngineResult>) {
        for engine in engines {
            self.ip.append_value(ip);
            self.engine_name.append_value(engine.engine_name);
            self.category.append_option(engine.category);
            self.method.append_option(engine.method);
            self.result.append_option(engine.result);
        }
    }

    fn finish(&mut self, schema: SchemaRef) -> RecordBatch {
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(self.ip.finish()),
            Arc::new(self.engine_name.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.result.finish()),
        ];
        RecordBatch::try_new(schema, arrays).expect("engine builders match engines_schema()")
    }
}

/// Collects [`FlatRecord`]s into Arrow record batches with the fixed schema of one
/// [`EnginesMode`].
pub struct TableBuilder {
    mode: EnginesMode,
    main_schema: SchemaRef,
    engines_schema: SchemaRef,
    main: MainColumns,
    wide: Option<WideEngineColumns>,
    long: Option<LongEngineColumns>,
    rows: usize,
}

impl TableBuilder {
    pub fn new(mode: EnginesMode) -> Self {
        TableBuilder {
            mode,
            main_schema: main_schema(mode),
            engines_schema: engines_schema(),
            main: MainColumns::new(),
            wide: (mode == EnginesMode::Wide).then(WideEngineColumns::new),
            long: (mode == EnginesMode::Long).then(LongEngineColumns::new),
            rows: 0,
        }
    }

    pub fn mode(&self) -> EnginesMode {
        self.mode
    }

    /// Appends one record: one main-table row, and with `EnginesMode::Long` one engines-table
    /// row per engine result.
    pub fn push(&mut self, mut record: FlatRecord) {
        self.main.append(&mut record);
        let engines = std::mem::take(&mut record.engines);
        if let Some(wide) = &mut self.wide {
            wide.append(engines);
        } else if let Some(long) = &mut self.long {
            long.append(&record.ip, engines);
        }
        self.rows += 1;
    }

    /// Returns the number of main-table rows pushed since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Returns the batches of every record pushed so far and resets the builders for reuse.
    pub fn finish(&mut self) -> TableBatches {
        let mut arrays = Vec::with_capacity(self.main_schema.fields().len());
        self.main.finish_into(&mut arrays);
        if let Some(wide) = &mut self.wide {
            wide.finish_into(&mut arrays);
        }
        let main = RecordBatch::try_new(self.main_schema.clone(), arrays)
            .expect("main builders match main_schema()");
        let engines = self
            .long
            .as_mut()
            .map(|long| long.finish(self.engines_schema.clone()));
        self.rows = 0;
        TableBatches { main, engines }
    }
}
