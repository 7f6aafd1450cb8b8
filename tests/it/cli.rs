//! The command line itself: help, version, schema, completions and usage errors.

use crate::support::{describe, run, vt_enrich};

#[test]
fn enrich_help_documents_exit_codes_and_examples() {
    let output = run(vt_enrich().args(["enrich", "--help"]));
    assert!(output.status.success(), "{}", describe(&output));
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("3  partial"), "{help}");
    assert!(help.contains("Nightly job"), "{help}");
    assert!(help.contains("--per-minute"), "{help}");
}

#[test]
fn version_prints_the_package_version() {
    let output = run(vt_enrich().arg("--version"));
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
}

#[test]
fn schema_lists_typed_columns_with_docs() {
    let output = run(vt_enrich().args(["schema", "--format", "json"]));
    assert!(output.status.success(), "{}", describe(&output));
    let tables: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    let main = tables[0]["columns"].as_array().unwrap();
    let find = |name: &str| {
        main.iter()
            .find(|column| column["name"] == name)
            .unwrap_or_else(|| panic!("column {name} listed"))
    };
    assert!(find("asn")["type"].as_str().unwrap().contains("int"));
    assert!(find("tags")["type"].as_str().unwrap().contains("list"));
    assert!(
        find("last_analysis_date")["type"]
            .as_str()
            .unwrap()
            .contains("timestamp")
    );
    for column in main {
        assert!(!column["doc"].as_str().unwrap().is_empty(), "{column}");
    }
    assert_eq!(tables[1]["table"], "engines");
}

#[test]
fn completions_are_printed_for_bash() {
    let output = run(vt_enrich().args(["completions", "bash"]));
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("vt-enrich"));
}

#[test]
fn missing_api_key_is_a_usage_error_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ips.txt");
    std::fs::write(&input, "8.8.8.8\n").unwrap();
    let output = run(vt_enrich()
        .arg("enrich")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("out.csv")));

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("VT_API_KEY"), "{stderr}");
    assert!(!dir.path().join("out.csv").exists());
}

#[test]
fn parquet_to_stdout_is_refused() {
    let output = run(vt_enrich().args([
        "flatten",
        "samples/responses",
        "-o",
        "-",
        "--format",
        "parquet",
    ]));
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("stdout"));
}

#[test]
fn unknown_output_extension_names_the_path() {
    let output = run(vt_enrich().args(["flatten", "samples/responses", "-o", "out.xlsx"]));
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("out.xlsx"));
}
