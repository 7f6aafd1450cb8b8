//! Settings: the built-in defaults, the user's config file, `VT_ENRICH_*` variables and the
//! command line, merged once into validated, typed settings for the stages.
//!
//! Precedence, highest first: command line, environment (both arrive through clap), config
//! file, built-in defaults (`config/default.toml`, compiled in).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{
    ApiArgs, CacheArgs, EnginesArg, ExtractArgs, FormatArg, InputFormatArg, OutputArgs, ProgressArg,
};
use crate::fetch::client::ClientSettings;
use crate::fetch::pacing::QuotaSettings;
use crate::fetch::retry::RetryPolicy;
use crate::fetch::tls::{self, CaCertError, ExtraRoots};
use crate::fetch::{ApiKey, FetchSettings};
use crate::flatten::EnginesMode;
use crate::input::{ExtractOptions, InputFormat};
use crate::output::{self, CsvOptions, OutputFormat, OutputTarget};

const BUILT_IN: &str = include_str!("../config/default.toml");

/// A settings problem the user must fix; reported with exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file `{path}`: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for {setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
    #[error("unknown quota profile `{name}`; known profiles: {known}")]
    UnknownProfile { name: String, known: String },
    #[error(
        "no VirusTotal API key: set VT_API_KEY, put `api_key` in the config file, or pass \
         --api-key-file PATH (or use --from to answer from saved responses)"
    )]
    MissingKey,
    #[error("cannot read the API key file `{path}`: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid value for --ca-cert: {0}")]
    CaCert(CaCertError),
}

/// Contents of a config file (the built-in one or the user's). Every field is optional so a
/// user file may set only what it changes.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub profile: Option<String>,
    pub api_url: Option<String>,
    pub api_key: Option<String>,
    pub concurrency: Option<u32>,
    pub max_retries: Option<u32>,
    pub backoff_base_secs: Option<f64>,
    pub backoff_max_secs: Option<f64>,
    pub connect_timeout_secs: Option<f64>,
    pub read_timeout_secs: Option<f64>,
    pub max_body_bytes: Option<u64>,
    pub engines: Option<String>,
    pub include_private: Option<bool>,
    /// Join mode (`--join`) for every `enrich` run.
    pub join: Option<bool>,
    /// `--extract`: read inputs as logs.
    pub extract: Option<bool>,
    /// `--json-field`: dotted paths of JSON fields holding addresses.
    pub json_fields: Option<Vec<String>>,
    /// `--refang`: rewrite defanged addresses before searching.
    pub refang: Option<bool>,
    /// Cache file; `--cache` and `VT_ENRICH_CACHE` override it.
    pub cache_path: Option<PathBuf>,
    /// Cache age limit such as `7d`.
    pub max_age: Option<String>,
    /// PEM file of extra root certificates. `--ca-cert` and `VT_ENRICH_CA_CERT` override it.
    pub ca_cert: Option<PathBuf>,
    /// VirusTotal user ID for the quota endpoint. `--user-id` overrides it.
    pub user_id: Option<String>,
    /// Relationship names, as `--relationships` takes them.
    pub relationships: Option<Vec<String>>,
    pub relationship_limit: Option<u32>,
    pub descriptors_only: Option<bool>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// A named quota tier. 0 means no limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub description: Option<String>,
    pub per_minute: u32,
    pub per_day: u32,
    pub per_month: u32,
}

impl ConfigFile {
    fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
        // The error names the line, but never quotes it: the line may hold the API key.
        toml::from_str(text).map_err(|err: toml::de::Error| {
            let line = err
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let detail = without_quoted_values(err.message().trim());
            let message = match line {
                Some(line) => format!("line {line}: {detail}"),
                None => detail,
            };
            ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            }
        })
    }

    /// Returns `self` with every value that `over` sets replaced, and `over`'s profiles added.
    fn overlay(mut self, over: ConfigFile) -> ConfigFile {
        macro_rules! take {
            ($($field:ident),*) => { $( if over.$field.is_some() { self.$field = over.$field; } )* };
        }
        take!(
            profile,
            api_url,
            api_key,
            concurrency,
            max_retries,
            backoff_base_secs,
            backoff_max_secs,
            connect_timeout_secs,
            read_timeout_secs,
            max_body_bytes,
            engines,
            include_private,
            join,
            extract,
            json_fields,
            refang,
            cache_path,
            max_age,
            ca_cert,
            user_id,
            relationships,
            relationship_limit,
            descriptors_only
        );
        self.profiles.extend(over.profiles);
        self
    }
}

/// Replaces the text between double quotes in a parser message with `…`: a key pasted into
/// the wrong setting would otherwise be echoed in an error.
fn without_quoted_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if !inside {
                out.push_str("\"…\"");
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// Loads the built-in defaults overlaid with the user's config file: `explicit` if given (it
/// must exist), else the platform config path if a file is there.
pub fn load(explicit: Option<&Path>) -> Result<ConfigFile, ConfigError> {
    let built_in = ConfigFile::parse(BUILT_IN, Path::new("<built-in config/default.toml>"))?;

    let path = match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => dirs::config_dir()
            .map(|dir| dir.join("vt-enrich").join("config.toml"))
            .filter(|path| path.is_file()),
    };
    let Some(path) = path else {
        return Ok(built_in);
    };

    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let user = ConfigFile::parse(&text, &path)?;
    tracing::debug!(path = %path.display(), "loaded config file");
    Ok(built_in.overlay(user))
}

/// Where the rows go and in what shape.
#[derive(Debug, Clone)]
pub struct OutputSettings {
    pub target: OutputTarget,
    pub format: OutputFormat,
    pub engines: EnginesMode,
    /// The engines table in `long` mode; `None` when it is not written.
    pub engines_target: Option<OutputTarget>,
    pub csv: CsvOptions,
    pub summary_json: Option<PathBuf>,
    pub progress: ProgressArg,
}

/// Resolves the output options shared by `enrich` and `flatten`.
pub fn output_settings(
    args: &OutputArgs,
    file: &ConfigFile,
) -> Result<OutputSettings, ConfigError> {
    let is_stdout = args.output.as_os_str() == "-";
    let target = if is_stdout {
        OutputTarget::Stdout
    } else {
        OutputTarget::File(args.output.clone())
    };

    let format = match (args.format, is_stdout) {
        (Some(FormatArg::Parquet), true) => {
            return Err(ConfigError::Invalid {
                setting: "--format",
                message: "Parquet cannot be written to stdout (`-o -`); give a file name such as `-o out.parquet`".into(),
            });
        }
        (Some(FormatArg::Parquet), false) => {
            if OutputFormat::from_path(&args.output).is_some_and(|by_name| by_name != OutputFormat::Parquet) {
                tracing::warn!(path = %args.output.display(), "writing Parquet to a file whose extension says otherwise");
            }
            OutputFormat::Parquet
        }
        (Some(FormatArg::Csv), _) => OutputFormat::Csv,
        (Some(FormatArg::Tsv), _) => OutputFormat::Tsv,
        (None, true) => OutputFormat::Csv,
        (None, false) => OutputFormat::from_path(&args.output).ok_or_else(|| ConfigError::Invalid {
            setting: "--output",
            message: format!(
                "cannot tell the format of `{}` from its extension; use .parquet, .csv or .tsv, or pass --format",
                args.output.display()
            ),
        })?,
    };

    let engines = match args.engines {
        Some(arg) => engines_mode(arg),
        None => match file.engines.as_deref() {
            None | Some("long") => EnginesMode::Long,
            Some("wide") => EnginesMode::Wide,
            Some("none") => EnginesMode::None,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    setting: "engines (config file)",
                    message: format!("`{other}` is not one of long, wide, none"),
                });
            }
        },
    };

    let engines_target = match (engines, &args.engines_output, &target) {
        (EnginesMode::Long, Some(path), _) => Some(OutputTarget::File(path.clone())),
        (EnginesMode::Long, None, OutputTarget::File(path)) => {
            Some(OutputTarget::File(output::engines_path(path)))
        }
        (EnginesMode::Long, None, OutputTarget::Stdout) => {
            tracing::warn!(
                "the engines table is not written with `-o -`; pass --engines-output PATH to keep it, or --engines none"
            );
            None
        }
        _ => None,
    };

    Ok(OutputSettings {
        target,
        format,
        engines,
        engines_target,
        csv: CsvOptions {
            escape_formulas: !args.no_formula_escape,
        },
        summary_json: args.summary_json.clone(),
        progress: args.progress.unwrap_or(ProgressArg::Auto),
    })
}

/// Rejects paths that would make one file overwrite another (an output that is also an input,
/// the engines table on the main table, the summary on either), and a summary whose directory
/// does not exist, before any request is spent.
pub fn check_paths(inputs: &[PathBuf], output: &OutputSettings) -> Result<(), ConfigError> {
    let mut written: Vec<(&'static str, &Path)> = Vec::new();
    if let OutputTarget::File(path) = &output.target {
        written.push(("--output", path));
    }
    if let Some(OutputTarget::File(path)) = &output.engines_target {
        written.push(("--engines-output", path));
    }
    if let Some(path) = &output.summary_json {
        written.push(("--summary-json", path));
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(ConfigError::Invalid {
                setting: "--summary-json",
                message: format!("directory `{}` does not exist", dir.display()),
            });
        }
    }

    for (index, (setting, path)) in written.iter().enumerate() {
        let identity = file_identity(path);
        for input in inputs.iter().filter(|input| input.as_os_str() != "-") {
            if file_identity(input) == identity {
                return Err(ConfigError::Invalid {
                    setting,
                    message: format!(
                        "`{}` is also an input; write the output to another file",
                        path.display()
                    ),
                });
            }
        }
        for (other_setting, other) in &written[index + 1..] {
            if file_identity(other) == identity {
                return Err(ConfigError::Invalid {
                    setting: other_setting,
                    message: format!(
                        "`{}` is also given to {setting}; give each output its own file",
                        other.display()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Returns a path that is equal for two spellings of one file, whether it exists yet or not.
pub(crate) fn file_identity(path: &Path) -> PathBuf {
    if let Ok(canonical) = path.canonicalize() {
        return canonical;
    }
    let parent = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

fn engines_mode(arg: EnginesArg) -> EnginesMode {
    match arg {
        EnginesArg::Long => EnginesMode::Long,
        EnginesArg::Wide => EnginesMode::Wide,
        EnginesArg::None => EnginesMode::None,
    }
}

/// Maps the schema subcommand's engine option.
pub fn schema_engines(arg: EnginesArg) -> EnginesMode {
    engines_mode(arg)
}

/// Maps the input format option.
pub fn input_format(arg: Option<InputFormatArg>) -> InputFormat {
    match arg {
        None | Some(InputFormatArg::Auto) => InputFormat::Auto,
        Some(InputFormatArg::Csv) => InputFormat::Csv,
        Some(InputFormatArg::Text) => InputFormat::Text,
    }
}

/// Resolves `--extract`, `--json-field` and `--refang`. Returns `None` when inputs are read as
/// lists and tables, and rejects the options that have no meaning in the chosen mode.
pub fn extract_options(
    args: &ExtractArgs,
    input_format: Option<InputFormatArg>,
    file: &ConfigFile,
) -> Result<Option<ExtractOptions>, ConfigError> {
    let extract = args.extract || file.extract.unwrap_or(false);
    let refang = args.refang || file.refang.unwrap_or(false);
    let json_fields = if args.json_fields.is_empty() {
        file.json_fields.clone().unwrap_or_default()
    } else {
        args.json_fields.clone()
    };

    if !extract {
        let setting = match (refang, json_fields.is_empty()) {
            (true, _) => "--refang",
            (false, false) => "--json-field",
            (false, true) => return Ok(None),
        };
        return Err(ConfigError::Invalid {
            setting,
            message: "it applies only to logs read with --extract; add --extract".into(),
        });
    }
    if let Some(format @ (InputFormatArg::Csv | InputFormatArg::Text)) = input_format {
        return Err(ConfigError::Invalid {
            setting: "--input-format",
            message: format!(
                "`{}` contradicts --extract, which reads every input as a log; drop one of them",
                if format == InputFormatArg::Csv {
                    "csv"
                } else {
                    "text"
                }
            ),
        });
    }
    if let Some(empty) = json_fields.iter().find(|path| path.trim().is_empty()) {
        return Err(ConfigError::Invalid {
            setting: "--json-field",
            message: format!(
                "`{empty}` is not a field path; write a dotted path such as `source.ip`"
            ),
        });
    }
    Ok(Some(ExtractOptions {
        json_fields: json_fields
            .iter()
            .map(|path| path.trim().to_string())
            .collect(),
        refang,
    }))
}

/// Validates a delimiter option: one ASCII character.
pub fn delimiter(arg: Option<char>) -> Result<Option<u8>, ConfigError> {
    match arg {
        None => Ok(None),
        Some(c) if c.is_ascii() && !c.is_ascii_alphanumeric() && c != '"' => Ok(Some(c as u8)),
        Some(c) => Err(ConfigError::Invalid {
            setting: "--delimiter",
            message: format!(
                "`{c}` cannot be a delimiter; use one ASCII punctuation character or a tab"
            ),
        }),
    }
}

/// Resolves the fetch settings and the API key for an API run.
pub fn fetch_settings(
    args: &ApiArgs,
    file: &ConfigFile,
) -> Result<(FetchSettings, ApiKey), ConfigError> {
    let profile = resolve_profile(args, file)?;
    let quota = QuotaSettings {
        per_minute: limit(args.per_minute.unwrap_or(profile.per_minute)),
        per_day: limit(args.per_day.unwrap_or(profile.per_day)),
        per_month: limit(args.per_month.unwrap_or(profile.per_month)),
        probe_window: positive_seconds(
            "--quota-probe-window",
            args.quota_probe_window.unwrap_or(60.0),
        )?,
        spent_at_start: None,
        probe_base: seconds(
            "--backoff-base",
            args.backoff_base.or(file.backoff_base_secs).unwrap_or(1.0),
        )?,
    };

    let concurrency = args.concurrency.or(file.concurrency).unwrap_or(4);
    if concurrency == 0 || concurrency > 1024 {
        return Err(ConfigError::Invalid {
            setting: "--concurrency",
            message: format!("{concurrency} is outside 1..=1024"),
        });
    }

    let retry = RetryPolicy {
        max_retries: args.max_retries.or(file.max_retries).unwrap_or(6),
        base: seconds(
            "--backoff-base",
            args.backoff_base.or(file.backoff_base_secs).unwrap_or(1.0),
        )?,
        cap: seconds(
            "--backoff-max",
            args.backoff_max.or(file.backoff_max_secs).unwrap_or(60.0),
        )?,
    };

    let api_url = api_url(args, file)?;

    let client = ClientSettings {
        api_url,
        connect_timeout: positive_seconds(
            "--connect-timeout",
            args.connect_timeout
                .or(file.connect_timeout_secs)
                .unwrap_or(10.0),
        )?,
        read_timeout: positive_seconds(
            "--read-timeout",
            args.read_timeout.or(file.read_timeout_secs).unwrap_or(30.0),
        )?,
        max_body_bytes: file.max_body_bytes.unwrap_or(16 << 20).min(1 << 30) as usize,
        pool_size: concurrency as usize,
        extra_roots: extra_roots(args, file)?,
        user_id: user_id(args, file)?,
    };

    let key = api_key(args, file)?;
    let settings = FetchSettings {
        client,
        quota,
        retry,
        concurrency: concurrency as usize,
    };
    Ok((settings, key))
}

/// Returns the validated API root, without a trailing slash.
pub fn api_url(args: &ApiArgs, file: &ConfigFile) -> Result<String, ConfigError> {
    let url = args
        .api_url
        .clone()
        .or_else(|| file.api_url.clone())
        .unwrap_or_else(|| "https://www.virustotal.com/api/v3".to_string());
    validate_api_url(&url)
}

/// Loads the `--ca-cert` file (or the config file's `ca_cert`), so a bad file stops the run
/// before any request.
fn extra_roots(args: &ApiArgs, file: &ConfigFile) -> Result<ExtraRoots, ConfigError> {
    match args.ca_cert.as_ref().or(file.ca_cert.as_ref()) {
        Some(path) => tls::load_ca_file(path).map_err(ConfigError::CaCert),
        None => Ok(ExtraRoots::default()),
    }
}

/// Returns the `--user-id` (or the config file's `user_id`), trimmed, or `None`.
fn user_id(args: &ApiArgs, file: &ConfigFile) -> Result<Option<String>, ConfigError> {
    let Some(id) = args.user_id.as_ref().or(file.user_id.as_ref()) else {
        return Ok(None);
    };
    let id = id.trim();
    if id.is_empty() || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ConfigError::Invalid {
            setting: "--user-id",
            message: "it is empty or contains spaces or control characters; give the user ID \
                      shown on the account's VirusTotal profile page"
                .into(),
        });
    }
    Ok(Some(id.to_string()))
}

fn resolve_profile(args: &ApiArgs, file: &ConfigFile) -> Result<Profile, ConfigError> {
    let name = args
        .profile
        .clone()
        .or_else(|| file.profile.clone())
        .unwrap_or_else(|| "public".to_string());
    file.profiles
        .get(&name)
        .cloned()
        .ok_or_else(|| ConfigError::UnknownProfile {
            name,
            known: file.profiles.keys().cloned().collect::<Vec<_>>().join(", "),
        })
}

/// Cache settings of an `enrich` run.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `None` with `--no-cache`.
    pub path: Option<PathBuf>,
    pub max_age: Duration,
    pub offline: bool,
}

/// Resolves the cache options.
pub fn cache_settings(args: &CacheArgs, file: &ConfigFile) -> Result<CacheSettings, ConfigError> {
    let max_age_text = args
        .max_age
        .clone()
        .or_else(|| file.max_age.clone())
        .unwrap_or_else(|| "7d".to_string());
    let max_age = parse_age(&max_age_text).map_err(|message| ConfigError::Invalid {
        setting: "--max-age",
        message,
    })?;

    let path = if args.no_cache {
        None
    } else {
        Some(cache_path(args.cache.as_deref(), file)?)
    };
    Ok(CacheSettings {
        path,
        max_age,
        offline: args.offline,
    })
}

/// Returns the cache file: the option, the config file's `cache_path`, or the platform default.
pub fn cache_path(option: Option<&Path>, file: &ConfigFile) -> Result<PathBuf, ConfigError> {
    option
        .map(Path::to_path_buf)
        .or_else(|| file.cache_path.clone())
        .or_else(crate::cache::Cache::default_path)
        .ok_or(ConfigError::Invalid {
            setting: "--cache",
            message: "no cache directory is known on this system; pass --cache PATH or --no-cache"
                .into(),
        })
}

/// Parses an age such as `90s`, `30m`, `12h`, `7d`, or a plain number of seconds.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_secs) = match text.char_indices().last() {
        Some((at, 's')) => (&text[..at], 1),
        Some((at, 'm')) => (&text[..at], 60),
        Some((at, 'h')) => (&text[..at], 3600),
        Some((at, 'd')) => (&text[..at], 86_400),
        _ => (text, 1),
    };
    let value: u64 = number.trim().parse().map_err(|_| {
        format!("`{text}` is not an age; write a whole number with s, m, h or d, such as `7d`")
    })?;
    value
        .checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long an age"))
}

fn limit(value: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(value)
}

fn seconds(setting: &'static str, value: f64) -> Result<Duration, ConfigError> {
    if !value.is_finite() || !(0.0..=86_400.0).contains(&value) {
        return Err(ConfigError::Invalid {
            setting,
            message: format!("{value:?} is not a number of seconds between 0 and 86400"),
        });
    }
    Ok(Duration::from_secs_f64(value))
}

/// Like [`seconds`], for timeouts and windows, where 0 would fail every request at once.
fn positive_seconds(setting: &'static str, value: f64) -> Result<Duration, ConfigError> {
    let duration = seconds(setting, value)?;
    if duration < Duration::from_millis(10) {
        return Err(ConfigError::Invalid {
            setting,
            message: format!("{value:?} s is too short; use at least 0.01"),
        });
    }
    Ok(duration)
}

fn validate_api_url(url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed).map_err(|err| ConfigError::Invalid {
        setting: "--api-url",
        message: format!("`{trimmed}` is not a URL: {err}"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid {
            setting: "--api-url",
            message: format!(
                "`{trimmed}` must start with https:// (or http://, for a local fake or proxy)"
            ),
        });
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConfigError::Invalid {
            setting: "--api-url",
            message: format!(
                "`{trimmed}` has a query or fragment; give only the API root, such as https://www.virustotal.com/api/v3"
            ),
        });
    }
    if parsed.scheme() == "http" && !is_loopback(&parsed) {
        tracing::warn!(api_url = %trimmed, "the API root uses plain http, so the API key and the responses cross the network unencrypted; use https://");
    }
    if !parsed.path().ends_with("/api/v3") {
        tracing::warn!(api_url = %trimmed, "the API root does not end with /api/v3; VirusTotal's is https://www.virustotal.com/api/v3");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ConfigError::Invalid {
            setting: "--api-url",
            message: "credentials in the URL are not supported; the key goes in VT_API_KEY".into(),
        });
    }
    Ok(trimmed.to_string())
}

/// Returns true when the URL's host is this machine (`localhost`, 127.0.0.0/8 or `::1`).
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// Reads the key from `--api-key-file`, then `VT_API_KEY`, then the config file.
fn api_key(args: &ApiArgs, file: &ConfigFile) -> Result<ApiKey, ConfigError> {
    let key = if let Some(path) = &args.api_key_file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::KeyFile {
            path: path.clone(),
            source,
        })?;
        text.lines().next().unwrap_or("").trim().to_string()
    } else if let Ok(value) = std::env::var("VT_API_KEY") {
        value.trim().to_string()
    } else {
        file.api_key.clone().unwrap_or_default().trim().to_string()
    };

    if key.is_empty() {
        return Err(ConfigError::MissingKey);
    }
    // The message names the rule, never the key.
    if key
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || !c.is_ascii())
    {
        return Err(ConfigError::Invalid {
            setting: "API key",
            message: "it contains spaces, control or non-ASCII characters; check how it was copied"
                .into(),
        });
    }
    Ok(ApiKey::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_config_parses_with_the_public_profile() {
        let config = load(Some(Path::new("/nonexistent-vt-enrich-config.toml")));
        assert!(matches!(config, Err(ConfigError::Read { .. })));

        let built_in = ConfigFile::parse(BUILT_IN, Path::new("built-in")).unwrap();
        let public = &built_in.profiles["public"];
        assert_eq!(
            (public.per_minute, public.per_day, public.per_month),
            (4, 500, 15_500)
        );
        assert_eq!(built_in.profile.as_deref(), Some("public"));
    }

    #[test]
    fn user_file_overrides_values_and_adds_profiles() {
        let built_in = ConfigFile::parse(BUILT_IN, Path::new("built-in")).unwrap();
        let user = ConfigFile::parse(
            "concurrency = 16\nprofile = \"premium\"\n[profiles.premium]\nper_minute = 1000\nper_day = 0\nper_month = 0\n",
            Path::new("user"),
        )
        .unwrap();
        let merged = built_in.overlay(user);
        assert_eq!(merged.concurrency, Some(16));
        assert_eq!(merged.max_retries, Some(6));
        assert!(merged.profiles.contains_key("public"));
        assert_eq!(merged.profiles["premium"].per_minute, 1000);
    }

    #[test]
    fn config_syntax_errors_never_quote_the_line() {
        let err = ConfigFile::parse(
            "profile = \"public\"\napi_key = \"SECRET-KEY-123\n",
            Path::new("user.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("SECRET-KEY-123"), "{err}");
    }

    #[test]
    fn outputs_may_not_overwrite_inputs_or_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, "ip\n8.8.8.8\n").unwrap();
        let settings = |target: &Path, engines: &Path| OutputSettings {
            target: OutputTarget::File(target.to_path_buf()),
            format: OutputFormat::Csv,
            engines: EnginesMode::Long,
            engines_target: Some(OutputTarget::File(engines.to_path_buf())),
            csv: CsvOptions {
                escape_formulas: true,
            },
            summary_json: None,
            progress: ProgressArg::Auto,
        };

        let same_as_input = settings(&dir.path().join("./in.csv"), &dir.path().join("e.csv"));
        assert!(check_paths(std::slice::from_ref(&input), &same_as_input).is_err());

        let engines_on_main = settings(&dir.path().join("out.csv"), &dir.path().join("out.csv"));
        assert!(check_paths(std::slice::from_ref(&input), &engines_on_main).is_err());

        let fine = settings(
            &dir.path().join("out.csv"),
            &dir.path().join("out.engines.csv"),
        );
        assert!(check_paths(std::slice::from_ref(&input), &fine).is_ok());
    }

    #[test]
    fn config_type_errors_never_echo_the_value() {
        let err = ConfigFile::parse("concurrency = \"SECRET-KEY-123\"\n", Path::new("user.toml"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET-KEY-123"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn zero_timeouts_are_rejected() {
        assert!(positive_seconds("--read-timeout", 0.0).is_err());
        assert!(positive_seconds("--read-timeout", 0.5).is_ok());
    }

    #[test]
    fn unknown_config_keys_are_rejected() {
        let err = ConfigFile::parse("concurency = 3\n", Path::new("user.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("user.toml"), "{text}");
        assert!(text.contains("concurency"), "{text}");
    }

    #[test]
    fn api_url_must_be_http_without_credentials() {
        assert_eq!(
            validate_api_url("http://127.0.0.1:8080/api/v3/").unwrap(),
            "http://127.0.0.1:8080/api/v3"
        );
        assert!(validate_api_url("ftp://example.invalid/").is_err());
        assert!(validate_api_url("https://user:secret@example.invalid/").is_err());
        assert!(validate_api_url("not a url").is_err());
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for url in [
            "http://127.0.0.1:1/",
            "http://[::1]:1/",
            "http://LOCALHOST/",
        ] {
            assert!(is_loopback(&reqwest::Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "http://vt.invalid/",
            "http://10.0.0.1/",
            "http://[2001:db8::1]/",
        ] {
            assert!(!is_loopback(&reqwest::Url::parse(url).unwrap()), "{url}");
        }
    }

    #[test]
    fn ages_accept_units_and_reject_junk() {
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_age("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(parse_age("90").unwrap(), Duration::from_secs(90));
        assert!(parse_age("7 days").is_err());
        assert!(parse_age("-1d").is_err());
        assert!(parse_age("").is_err());
    }

    #[test]
    fn seconds_reject_negative_and_nan() {
        assert!(seconds("--x", -1.0).is_err());
        assert!(seconds("--x", f64::NAN).is_err());
        assert_eq!(seconds("--x", 0.25).unwrap(), Duration::from_millis(250));
    }
}
