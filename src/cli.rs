//! Command-line definitions. The doc comments here are the `--help` text.
//!
//! Every option is `Option<_>` without a clap default so that the settings layer can tell an
//! option the user gave (command line or `VT_ENRICH_…` environment variable) from one that should
//! come from the config file or the built-in default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::EXIT_CODES_HELP;
use crate::model::Relationship;

const ENRICH_EXAMPLES: &str = "\
Examples:
  Nightly job (firewall export back whole, answers beside each row, shared key, small quota):
    vt-enrich enrich fw.csv.gz --join --column src_ip --column dst_ip -o fw.parquet --summary-json run.json
  Data scientist (saved responses, no API call):
    vt-enrich enrich ips.txt --from responses.jsonl -o ips.parquet
  Analyst (pipe a list, CSV for a spreadsheet):
    cat ips.txt | vt-enrich enrich -o lookups.csv
    vt-enrich enrich ips.txt -o - > lookups.csv
  Pivot (the host names each address resolved to, in ips.resolutions.parquet):
    vt-enrich enrich ips.txt -o ips.parquet --relationships resolutions
  Every address in raw logs (syslog, iptables, Zeek conn.log, JSON Lines, defanged reports):
    vt-enrich enrich --extract /var/log/kern.log conn.log.gz -o seen.parquet
    vt-enrich enrich --extract --refang report.txt -o iocs.csv

The API key is read from --api-key-file, else VT_API_KEY, else `api_key` in the config file.
Settings precedence: command line, VT_ENRICH_* environment variables, config file, built-in defaults.";

fn enrich_after_help() -> String {
    format!("{ENRICH_EXAMPLES}\n\n{EXIT_CODES_HELP}")
}

/// Enrich IP addresses in bulk with VirusTotal API v3 IP address objects, written as typed
/// Parquet or CSV.
#[derive(Debug, Parser)]
#[command(name = "vt-enrich", version, about, after_help = concat!(
    "Examples:\n",
    "  VT_API_KEY=... vt-enrich enrich fw.csv.gz --column dst_ip -o enriched.parquet\n",
    "  vt-enrich flatten responses/ -o ips.parquet\n",
    "  vt-enrich schema\n\n",
    "Run `vt-enrich enrich --help` for the examples of each kind of use."
))]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted by every subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Less log output on stderr (errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,

    /// Config file (TOML). Default: `$XDG_CONFIG_HOME/vt-enrich/config.toml` if it exists.
    #[arg(long, env = "VT_ENRICH_CONFIG", global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Look up every address of the input and write one row per distinct address (or, with
    /// --join, every input row with its answers).
    #[command(after_help = enrich_after_help())]
    Enrich(Box<EnrichArgs>),

    /// Turn saved VirusTotal IP address documents into a table, without any input list or API call.
    #[command(after_help = "Example:\n  vt-enrich flatten responses/ saved.jsonl -o ips.parquet")]
    Flatten(FlattenArgs),

    /// Print every output column with its type and meaning.
    Schema(SchemaArgs),

    /// Print the account's request allowances and use, from the API, next to the local ledger.
    #[command(after_help = "Example:\n  VT_API_KEY=... vt-enrich quota")]
    Quota(Box<QuotaArgs>),

    /// Inspect, export or prune the answer cache.
    #[command(
        after_help = "Examples:\n  vt-enrich cache stats\n  vt-enrich cache export -o answers.jsonl   # readable by --from\n  vt-enrich cache prune --older-than 30d"
    )]
    Cache(CacheCommand),

    /// Print shell completions (bash, zsh, fish, elvish or powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff) generated from the same definitions as --help.
    #[command(hide = true)]
    Manpage,
}

/// Options of `vt-enrich enrich`.
#[derive(Debug, Args)]
pub struct EnrichArgs {
    /// Input files (CSV/TSV with a header, or one address per line; gzip and zstd are detected).
    /// None, or `-`, reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,

    /// CSV column holding addresses (repeatable). Default: every column whose values parse as IPs.
    #[arg(
        long = "column",
        value_name = "NAME",
        env = "VT_ENRICH_COLUMN",
        value_delimiter = ','
    )]
    pub columns: Vec<String>,

    /// How to read the input: `csv` (header row), `text` (one value per line) or `auto`.
    #[arg(long, value_enum, env = "VT_ENRICH_INPUT_FORMAT")]
    pub input_format: Option<InputFormatArg>,

    /// CSV delimiter, one character (default: detected among `,` `;` tab `|`).
    #[arg(long, env = "VT_ENRICH_DELIMITER", value_name = "CHAR")]
    pub delimiter: Option<char>,

    /// Also send private, loopback, link-local, CGNAT, multicast, documentation and reserved
    /// addresses (by default they get status `skipped`).
    #[arg(long, env = "VT_ENRICH_INCLUDE_PRIVATE")]
    pub include_private: bool,

    /// Write every input row, in order, with the answers for each IP column appended under that
    /// column's name (`src_ip_country`, `dst_ip_asn`, …) instead of one row per address. Needs
    /// one CSV or TSV input with a header row; stdin is copied to a temporary file first.
    #[arg(long, env = "VT_ENRICH_JOIN")]
    pub join: bool,
    #[command(flatten)]
    pub extract: ExtractArgs,

    /// Answer lookups from saved VirusTotal JSON documents instead of the API: a directory of
    /// `*.json` files or a JSON Lines file. Addresses without a document get `not_found`.
    #[arg(long, value_name = "PATH", env = "VT_ENRICH_FROM")]
    pub from: Option<PathBuf>,

    #[command(flatten)]
    pub api: ApiArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    #[command(flatten)]
    pub relationships: RelationshipArgs,
}

/// Options of the relationship tables.
#[derive(Debug, Args)]
pub struct RelationshipArgs {
    /// Also fetch these relationships of every address whose lookup is `ok`, each into its own
    /// table `<stem>.<relationship>.<ext>` next to --output (comma-separated). Without an
    /// Enterprise key, downloaded_files, related_references, related_threat_actors and urls
    /// get 403: that is reported once and the run goes on.
    #[arg(
        long,
        value_name = "NAME,…",
        value_enum,
        value_delimiter = ',',
        env = "VT_ENRICH_RELATIONSHIPS"
    )]
    pub relationships: Vec<Relationship>,

    /// Items per address and relationship, fetched page by page with up to 40 per request.
    /// Every page is one request [default: 10].
    #[arg(long, value_name = "N", env = "VT_ENRICH_RELATIONSHIP_LIMIT")]
    pub relationship_limit: Option<u32>,

    /// Fetch only the type and id of related objects (`/relationships/{name}`), without their
    /// attributes. Responses are smaller, and the number of requests is the same.
    #[arg(long, env = "VT_ENRICH_DESCRIPTORS_ONLY")]
    pub descriptors_only: bool,
}

/// Options of `--extract`, reading raw logs instead of lists and tables.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Read inputs as logs and look up every IPv4 and IPv6 address found in each line. The
    /// first line of each input picks its layout. A `#separator` or `#fields` header means
    /// Zeek TSV (its addr fields, or those named by --column). A line starting with `{` means
    /// JSON Lines (see --json-field). Anything else is free text (syslog, iptables, access logs).
    #[arg(long, env = "VT_ENRICH_EXTRACT")]
    pub extract: bool,

    /// With --extract, the dotted path of a JSON field holding addresses (repeatable; nested
    /// objects, dotted keys and arrays all match). Default: `source.ip`, `destination.ip`,
    /// `id.orig_h`, `id.resp_h`, `src_ip`, `dest_ip`.
    #[arg(
        long = "json-field",
        value_name = "PATH",
        env = "VT_ENRICH_JSON_FIELD",
        value_delimiter = ','
    )]
    pub json_fields: Vec<String>,

    /// With --extract, rewrite defanged addresses (`1[.]1[.]1[.]1`, `1.1.1(.)1`, `8[dot]8[dot]8[dot]8`,
    /// `2001:db8[:]:1`) before searching each line; without it they are not addresses.
    #[arg(long, env = "VT_ENRICH_REFANG")]
    pub refang: bool,
}

/// Options of the answer cache.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// SQLite file of cached answers and of the request ledger
    /// [default: `$XDG_CACHE_HOME/vt-enrich/cache.sqlite`].
    #[arg(long, value_name = "PATH", env = "VT_ENRICH_CACHE")]
    pub cache: Option<PathBuf>,

    /// Neither read nor write the cache; daily and monthly budgets then hold within this run only.
    #[arg(long, env = "VT_ENRICH_NO_CACHE", conflicts_with = "offline")]
    pub no_cache: bool,

    /// Reuse cached answers younger than this: a number with `s`, `m`, `h` or `d` [default: 7d].
    #[arg(long, value_name = "AGE", env = "VT_ENRICH_MAX_AGE")]
    pub max_age: Option<String>,

    /// Answer from the cache only and send no request; addresses not cached get `failed`
    /// with error code `NotCached`.
    #[arg(long, env = "VT_ENRICH_OFFLINE")]
    pub offline: bool,
}

/// Options that shape the output table(s), shared by `enrich` and `flatten`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output file (`.parquet`, `.csv`, `.tsv`), or `-` for CSV on stdout.
    #[arg(short, long, value_name = "PATH", env = "VT_ENRICH_OUTPUT")]
    pub output: PathBuf,

    /// Output format; default from the extension of --output.
    #[arg(long, value_enum, env = "VT_ENRICH_FORMAT")]
    pub format: Option<FormatArg>,

    /// Per-engine verdicts: `long` (a second table `<stem>.engines.<ext>`, one row per address and
    /// engine), `wide` (one column per engine) or `none`.
    #[arg(long, value_enum, env = "VT_ENRICH_ENGINES")]
    pub engines: Option<EnginesArg>,

    /// Path of the engines table in `long` mode (default: `<stem>.engines.<ext>` next to --output).
    #[arg(long, value_name = "PATH", env = "VT_ENRICH_ENGINES_OUTPUT")]
    pub engines_output: Option<PathBuf>,

    /// Write CSV cells that start with `=`, `+`, `-`, `@`, tab or CR as they are, instead of
    /// prefixing them with `'` so that spreadsheets do not run them as formulas.
    #[arg(long, env = "VT_ENRICH_NO_FORMULA_ESCAPE")]
    pub no_formula_escape: bool,

    /// Also write the run summary as JSON to this file (for schedulers).
    #[arg(long, value_name = "PATH", env = "VT_ENRICH_SUMMARY_JSON")]
    pub summary_json: Option<PathBuf>,

    /// Progress display on stderr: `auto` (a bar on a terminal, periodic log lines otherwise),
    /// `bar`, `log` or `none`.
    #[arg(long, value_enum, env = "VT_ENRICH_PROGRESS")]
    pub progress: Option<ProgressArg>,
}

/// Options of the fetch stage: where the API is, how fast and how hard to try.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// API root; paths such as `/ip_addresses/{ip}` are appended to it.
    #[arg(long, value_name = "URL", env = "VT_ENRICH_API_URL")]
    pub api_url: Option<String>,

    /// File whose first line is the API key (instead of VT_API_KEY or the config file).
    #[arg(long, value_name = "PATH", env = "VT_ENRICH_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,

    /// Quota profile from the config file (built in: `public`, `unlimited`).
    #[arg(long, value_name = "NAME", env = "VT_ENRICH_PROFILE")]
    pub profile: Option<String>,

    /// Requests per minute (0 = no limit). Default from the profile; public API: 4.
    #[arg(long, value_name = "N", env = "VT_ENRICH_PER_MINUTE")]
    pub per_minute: Option<u32>,

    /// Requests per UTC day (0 = no limit). Default from the profile; public API: 500.
    #[arg(long, value_name = "N", env = "VT_ENRICH_PER_DAY")]
    pub per_day: Option<u32>,

    /// Requests per UTC month (0 = no limit). Default from the profile; public API: 15500.
    #[arg(long, value_name = "N", env = "VT_ENRICH_PER_MONTH")]
    pub per_month: Option<u32>,

    /// Maximum requests in flight at once [default: 4].
    #[arg(long, value_name = "N", env = "VT_ENRICH_CONCURRENCY")]
    pub concurrency: Option<u32>,

    /// Retries after the first attempt of a lookup [default: 6].
    #[arg(long, value_name = "N", env = "VT_ENRICH_MAX_RETRIES")]
    pub max_retries: Option<u32>,

    /// First retry backoff in seconds, doubled at each retry, with full jitter [default: 1].
    #[arg(long, value_name = "SECS", env = "VT_ENRICH_BACKOFF_BASE")]
    pub backoff_base: Option<f64>,

    /// Longest backoff between two retries, in seconds [default: 60].
    #[arg(long, value_name = "SECS", env = "VT_ENRICH_BACKOFF_MAX")]
    pub backoff_max: Option<f64>,

    /// TCP and TLS connect timeout in seconds [default: 10].
    #[arg(long, value_name = "SECS", env = "VT_ENRICH_CONNECT_TIMEOUT")]
    pub connect_timeout: Option<f64>,

    /// Longest wait for the next bytes of a response, in seconds [default: 30].
    #[arg(long, value_name = "SECS", env = "VT_ENRICH_READ_TIMEOUT")]
    pub read_timeout: Option<f64>,

    /// Before the run, read the account's daily and monthly use from the API and lower the
    /// budgets to what is left of them (one extra request).
    #[arg(long, env = "VT_ENRICH_QUOTA_FROM_API")]
    pub quota_from_api: bool,

    /// PEM file of root certificates to trust besides the system's, such as the root of a
    /// TLS-inspecting corporate proxy. One file may hold several certificates.
    #[arg(long, value_name = "FILE", env = "VT_ENRICH_CA_CERT")]
    pub ca_cert: Option<PathBuf>,

    /// VirusTotal user ID (or service account) for the quota endpoint of `quota` and
    /// --quota-from-api. Without it the API key itself is the ID in that URL, as the API
    /// allows, and a proxy that logs URLs then records the key.
    #[arg(long, value_name = "ID", env = "VT_ENRICH_USER_ID")]
    pub user_id: Option<String>,

    /// Seconds a 429 `QuotaExceededError` must persist before the daily or monthly quota is
    /// taken as spent and the run stops sending [default: 60].
    #[arg(
        long,
        value_name = "SECS",
        env = "VT_ENRICH_QUOTA_PROBE_WINDOW",
        hide = true
    )]
    pub quota_probe_window: Option<f64>,
}

/// Options of `vt-enrich flatten`.
#[derive(Debug, Args)]
pub struct FlattenArgs {
    /// Saved documents: directories of `*.json` files, JSON files, or JSON Lines files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options of `vt-enrich quota`.
#[derive(Debug, Args)]
pub struct QuotaArgs {
    #[command(flatten)]
    pub api: ApiArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `vt-enrich cache` and its actions.
#[derive(Debug, Args)]
pub struct CacheCommand {
    /// SQLite cache file [default: `$XDG_CACHE_HOME/vt-enrich/cache.sqlite`].
    #[arg(long, value_name = "PATH", env = "VT_ENRICH_CACHE", global = true)]
    pub cache: Option<PathBuf>,

    #[command(subcommand)]
    pub action: CacheAction,
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Print the number of entries, their ages and sizes, and the requests in the ledger.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write every cached IP address object as JSON Lines, the form `--from` reads.
    Export {
        /// Output file, or `-` for stdout.
        #[arg(short, long, value_name = "PATH")]
        output: PathBuf,
    },
    /// Delete entries fetched longer ago than AGE, and give the space back.
    Prune {
        /// A number with `s`, `m`, `h` or `d`, such as `30d`.
        #[arg(long, value_name = "AGE")]
        older_than: String,
    },
}

/// Options of `vt-enrich schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// `text` (a table) or `json`.
    #[arg(long, value_enum, default_value = "text")]
    pub format: SchemaFormatArg,

    /// Engine mode whose columns to list.
    #[arg(long, value_enum, default_value = "long")]
    pub engines: EnginesArg,

    /// Also list the tables of these relationships (comma-separated).
    #[arg(long, value_name = "NAME,…", value_enum, value_delimiter = ',')]
    pub relationships: Vec<Relationship>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormatArg {
    Auto,
    Csv,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Parquet,
    Csv,
    Tsv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnginesArg {
    Long,
    Wide,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Bar,
    Log,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaFormatArg {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn enrich_help_lists_exit_codes() {
        let mut cmd = Cli::command();
        let enrich = cmd.find_subcommand_mut("enrich").expect("enrich exists");
        let help = enrich.render_long_help().to_string();
        for line in EXIT_CODES_HELP.lines().skip(1) {
            assert!(
                help.contains(line.trim()),
                "missing {line:?} in enrich --help"
            );
        }
    }

    #[test]
    fn help_never_mentions_a_key_value() {
        // The key is read from VT_API_KEY by the settings layer, not by clap, so clap can
        // never print its value in `[env: …=value]`.
        let help = Cli::command().render_long_help().to_string();
        assert!(!help.contains("[env: VT_API_KEY"));
    }
}
