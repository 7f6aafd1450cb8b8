//! The relationship options merged from the command line, `VT_ENRICH_*` variables and the
//! config file, validated before the first request.

use std::path::{Path, PathBuf};

use crate::cache::PageForm;
use crate::cli::RelationshipArgs;
use crate::config::{ConfigError, ConfigFile, OutputSettings, file_identity};
use crate::model::Relationship;
use crate::output::{CsvOptions, OutputFormat, OutputTarget};

/// Items per address and relationship when neither the option nor the config file sets it.
/// 10 is also the API's own default `limit`.
pub const DEFAULT_LIMIT: u32 = 10;

/// Largest `--relationship-limit` accepted. Every page of at most 40 items is one request, so
/// 10,000 items cost 250 requests per address and relationship. A larger value is more likely
/// a typing error than a plan.
pub const MAX_LIMIT: u32 = 10_000;

/// Relationships to fetch and the tables to write them to.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationshipSettings {
    /// Distinct relationships in the order given.
    pub relationships: Vec<Relationship>,
    /// Items per address and relationship.
    pub limit: u32,
    pub form: PageForm,
    /// Table of each relationship, in the order of `relationships`.
    pub tables: Vec<(Relationship, PathBuf)>,
    pub format: OutputFormat,
    pub csv: CsvOptions,
}

/// Resolves the relationship options of an `enrich` run. Returns `None` when no relationship
/// is asked for.
pub fn resolve(
    args: &RelationshipArgs,
    file: &ConfigFile,
    output: &OutputSettings,
    inputs: &[PathBuf],
) -> Result<Option<RelationshipSettings>, ConfigError> {
    let relationships = names(args, file)?;
    let limit = args
        .relationship_limit
        .or(file.relationship_limit)
        .unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ConfigError::Invalid {
            setting: "--relationship-limit",
            message: format!("{limit} is outside 1..={MAX_LIMIT}"),
        });
    }
    if relationships.is_empty() {
        return Ok(None);
    }

    let main = match &output.target {
        OutputTarget::File(path) => path,
        OutputTarget::Stdout => {
            return Err(ConfigError::Invalid {
                setting: "--relationships",
                message: "each relationship is written to its own table next to --output, so \
                          it needs an output file such as `-o out.parquet` instead of `-o -`"
                    .into(),
            });
        }
    };
    let tables: Vec<(Relationship, PathBuf)> = relationships
        .iter()
        .map(|relationship| (*relationship, table_path(main, *relationship)))
        .collect();
    check_paths(&tables, output, inputs)?;

    let descriptors_only = args.descriptors_only || file.descriptors_only.unwrap_or(false);
    Ok(Some(RelationshipSettings {
        relationships,
        limit,
        form: if descriptors_only {
            PageForm::Descriptors
        } else {
            PageForm::Objects
        },
        tables,
        format: output.format,
        csv: output.csv.clone(),
    }))
}

/// Returns the distinct relationships asked for, from the command line or else the config file.
fn names(args: &RelationshipArgs, file: &ConfigFile) -> Result<Vec<Relationship>, ConfigError> {
    let requested = if !args.relationships.is_empty() {
        args.relationships.clone()
    } else {
        let mut parsed = Vec::new();
        for name in file.relationships.iter().flatten() {
            let relationship =
                Relationship::from_name(name.trim()).ok_or_else(|| ConfigError::Invalid {
                    setting: "relationships (config file)",
                    message: format!(
                        "`{name}` is not a relationship of IP addresses; use one of {}",
                        Relationship::names()
                    ),
                })?;
            parsed.push(relationship);
        }
        parsed
    };

    let mut distinct = Vec::with_capacity(requested.len());
    for relationship in requested {
        if !distinct.contains(&relationship) {
            distinct.push(relationship);
        }
    }
    Ok(distinct)
}

/// Returns the path of a relationship's table next to the main table at `main`:
/// `out.parquet` gives `out.resolutions.parquet`, and `out` gives `out.resolutions`.
pub fn table_path(main: &Path, relationship: Relationship) -> PathBuf {
    let stem = main.file_stem().unwrap_or_default().to_string_lossy();
    let name = match main.extension() {
        Some(extension) => format!(
            "{stem}.{}.{}",
            relationship.as_str(),
            extension.to_string_lossy()
        ),
        None => format!("{stem}.{}", relationship.as_str()),
    };
    main.with_file_name(name)
}

/// Rejects a relationship table that would overwrite an input or another output.
fn check_paths(
    tables: &[(Relationship, PathBuf)],
    output: &OutputSettings,
    inputs: &[PathBuf],
) -> Result<(), ConfigError> {
    let mut others: Vec<&Path> = inputs
        .iter()
        .filter(|input| input.as_os_str() != "-")
        .map(PathBuf::as_path)
        .collect();
    for target in [Some(&output.target), output.engines_target.as_ref()]
        .into_iter()
        .flatten()
    {
        if let OutputTarget::File(path) = target {
            others.push(path);
        }
    }
    if let Some(path) = &output.summary_json {
        others.push(path);
    }

    for (relationship, path) in tables {
        let identity = file_identity(path);
        if let Some(other) = others.iter().find(|other| file_identity(other) == identity) {
            return Err(ConfigError::Invalid {
                setting: "--relationships",
                message: format!(
                    "the {relationship} table `{}` would overwrite `{}`; choose another --output name",
                    path.display(),
                    other.display()
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::EnginesMode;

    fn output(target: OutputTarget) -> OutputSettings {
        OutputSettings {
            target,
            format: OutputFormat::Parquet,
            engines: EnginesMode::None,
            engines_target: None,
            csv: CsvOptions::default(),
            summary_json: None,
            progress: crate::cli::ProgressArg::None,
        }
    }

    fn args(relationships: &[Relationship], limit: Option<u32>) -> RelationshipArgs {
        RelationshipArgs {
            relationships: relationships.to_vec(),
            relationship_limit: limit,
            descriptors_only: false,
        }
    }

    #[test]
    fn table_path_inserts_the_relationship() {
        assert_eq!(
            table_path(Path::new("out/r.parquet"), Relationship::Resolutions),
            PathBuf::from("out/r.resolutions.parquet")
        );
        assert_eq!(
            table_path(Path::new("r"), Relationship::HistoricalWhois),
            PathBuf::from("r.historical_whois")
        );
    }

    #[test]
    fn names_are_distinct_and_keep_their_order() {
        let file = ConfigFile::default();
        let out = output(OutputTarget::File("o.parquet".into()));
        let settings = resolve(
            &args(
                &[
                    Relationship::Urls,
                    Relationship::Resolutions,
                    Relationship::Urls,
                ],
                None,
            ),
            &file,
            &out,
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            settings.relationships,
            [Relationship::Urls, Relationship::Resolutions]
        );
        assert_eq!(settings.limit, DEFAULT_LIMIT);
        assert_eq!(settings.form, PageForm::Objects);
        assert_eq!(settings.tables[0].1, PathBuf::from("o.urls.parquet"));
    }

    #[test]
    fn config_file_names_are_validated() {
        let out = output(OutputTarget::File("o.csv".into()));
        let file = ConfigFile {
            relationships: Some(vec!["resolutions".into(), "dns".into()]),
            ..ConfigFile::default()
        };
        let err = resolve(&args(&[], None), &file, &out, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`dns`"), "{err}");
        assert!(err.contains("historical_ssl_certificates"), "{err}");

        let file = ConfigFile {
            relationships: Some(vec!["historical_whois".into()]),
            relationship_limit: Some(25),
            descriptors_only: Some(true),
            ..ConfigFile::default()
        };
        let settings = resolve(&args(&[], None), &file, &out, &[])
            .unwrap()
            .unwrap();
        assert_eq!(settings.relationships, [Relationship::HistoricalWhois]);
        assert_eq!(settings.limit, 25);
        assert_eq!(settings.form, PageForm::Descriptors);
    }

    #[test]
    fn command_line_overrides_the_config_file() {
        let out = output(OutputTarget::File("o.csv".into()));
        let file = ConfigFile {
            relationships: Some(vec!["historical_whois".into()]),
            relationship_limit: Some(25),
            ..ConfigFile::default()
        };
        let settings = resolve(&args(&[Relationship::Graphs], Some(3)), &file, &out, &[])
            .unwrap()
            .unwrap();
        assert_eq!(settings.relationships, [Relationship::Graphs]);
        assert_eq!(settings.limit, 3);
    }

    #[test]
    fn limits_outside_the_range_are_rejected() {
        let out = output(OutputTarget::File("o.csv".into()));
        let file = ConfigFile::default();
        for limit in [0, MAX_LIMIT + 1] {
            let result = resolve(&args(&[Relationship::Urls], Some(limit)), &file, &out, &[]);
            assert!(result.is_err(), "{limit}");
        }
    }

    #[test]
    fn stdout_and_clashing_paths_are_rejected() {
        let file = ConfigFile::default();
        let requested = args(&[Relationship::Resolutions], None);
        assert!(resolve(&requested, &file, &output(OutputTarget::Stdout), &[]).is_err());

        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("o.resolutions.csv");
        std::fs::write(&input, "ip\n").unwrap();
        let out = output(OutputTarget::File(dir.path().join("o.csv")));
        let err = resolve(&requested, &file, &out, &[input])
            .unwrap_err()
            .to_string();
        assert!(err.contains("would overwrite"), "{err}");
    }

    #[test]
    fn nothing_asked_means_no_settings() {
        let out = output(OutputTarget::Stdout);
        let result = resolve(&args(&[], None), &ConfigFile::default(), &out, &[]).unwrap();
        assert_eq!(result, None);
    }
}
