//! Every address form that the input accepts or rejects, through the built binary and the fake
//! server, read back from the Parquet output: the status and the canonical form of each.

use crate::fake_vt::{FakeVt, FakeVtConfig};
use crate::support::{describe, enrich_command, read_parquet, run, strings};

/// One input cell, the `ip` column of its output row (the canonical form, or the raw value
/// for `invalid` rows), its status, and for `invalid` and `skipped` rows a phrase of the
/// reason.
struct Form {
    cell: &'static str,
    ip: &'static str,
    status: &'static str,
    reason: &'static str,
}

const fn form(
    cell: &'static str,
    ip: &'static str,
    status: &'static str,
    reason: &'static str,
) -> Form {
    Form {
        cell,
        ip,
        status,
        reason,
    }
}

/// The forms, in input order. Forms that spell an address already listed produce no row.
const FORMS: &[Form] = &[
    form("8.8.8.8", "8.8.8.8", "ok", ""),
    form(" 8.8.4.4 ", "8.8.4.4", "ok", ""),
    form("\"1.0.0.1\"", "1.0.0.1", "ok", ""),
    form(
        "010.8.8.8",
        "010.8.8.8",
        "invalid",
        "leading zero in octet `010`",
    ),
    form(
        "8.8.8.08",
        "8.8.8.08",
        "invalid",
        "leading zero in octet `08`",
    ),
    form("::ffff:9.9.9.9", "9.9.9.9", "ok", ""),
    form("::FFFF:8.8.8.8", "8.8.8.8", "", ""),
    form(
        "::ffff:192.168.0.1",
        "192.168.0.1",
        "skipped",
        "private address",
    ),
    form(
        "2001:4860:4860:0000:0000:0000:0000:8888",
        "2001:4860:4860::8888",
        "ok",
        "",
    ),
    form("2001:4860:4860::8888", "2001:4860:4860::8888", "", ""),
    form("2606:4700:4700::1111", "2606:4700:4700::1111", "ok", ""),
    form("[2606:4700:4700::1111]:443", "2606:4700:4700::1111", "", ""),
    form("[2620:fe::fe]", "2620:fe::fe", "ok", ""),
    form("2620:FE::9", "2620:fe::9", "ok", ""),
    form("fe80::1%eth0", "fe80::1", "skipped", "link-local"),
    form("fe80::2%", "fe80::2%", "invalid", "empty zone id"),
    form("149.112.112.112:53", "149.112.112.112", "ok", ""),
    form(
        "149.112.112.112:99999",
        "149.112.112.112:99999",
        "invalid",
        "invalid port `99999`",
    ),
    form(
        "[1.1.1.1]",
        "[1.1.1.1]",
        "invalid",
        "brackets are only used around IPv6",
    ),
    form("9.9.9.0/24", "9.9.9.0/24", "invalid", "CIDR block"),
    form("9.9.9.9/32", "9.9.9.9/32", "invalid", "CIDR block"),
    form("2001:db8::/32", "2001:db8::/32", "invalid", "CIDR block"),
    form("1.1.1.1-1.1.1.9", "1.1.1.1-1.1.1.9", "invalid", "range"),
    form("dns.google", "dns.google", "invalid", "hostname"),
    form("localhost", "localhost", "invalid", "hostname"),
    form(
        "256.1.1.1",
        "256.1.1.1",
        "invalid",
        "octet `256` out of range",
    ),
    form(
        "1.2.3.999",
        "1.2.3.999",
        "invalid",
        "octet `999` out of range",
    ),
    form("1.2.3", "1.2.3", "invalid", "3 octets"),
    form("16843009", "16843009", "invalid", "bare integer"),
    form(
        "2001:db8::1::2",
        "2001:db8::1::2",
        "invalid",
        "`::` appears more than once",
    ),
    form("10.0.0.1", "10.0.0.1", "skipped", "private address"),
    form(
        "100.64.0.1",
        "100.64.0.1",
        "skipped",
        "shared address space",
    ),
    form("127.0.0.1", "127.0.0.1", "skipped", "loopback"),
    form("224.0.0.251", "224.0.0.251", "skipped", "multicast"),
    form("192.0.2.10", "192.0.2.10", "skipped", "documentation"),
    form("2001:DB8::1", "2001:db8::1", "skipped", "documentation"),
    form("0.0.0.0", "0.0.0.0", "skipped", "unspecified"),
    form("", "", "", ""),
    form("   ", "", "", ""),
];

/// Writes the forms as the `ip` column of a CSV file, quoting each cell so that spaces and
/// commas survive, with a second column so that blank cells are still rows.
fn forms_csv() -> String {
    let mut text = String::from("ip,note\n");
    for (index, form) in FORMS.iter().enumerate() {
        let cell = form.cell.replace('"', "\"\"");
        text.push_str(&format!("\"{cell}\",form {index}\n"));
    }
    text
}

#[test]
fn address_forms_get_expected_status() {
    let server = FakeVt::start(FakeVtConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("forms.csv");
    std::fs::write(&input, forms_csv()).unwrap();
    let out = dir.path().join("out.parquet");
    let summary = dir.path().join("summary.json");

    let output = run(
        enrich_command(&server, &input, &out, &dir.path().join("c.sqlite"), 4)
            .args(["--column", "ip", "--engines", "none", "--summary-json"])
            .arg(&summary),
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let batch = read_parquet(&out);
    let ips = strings(&batch, "ip");
    let statuses = strings(&batch, "status");
    let messages = strings(&batch, "error_message");

    // Forms with a status make one row each, in input order; the others repeat an address
    // already listed, or are blank.
    let expected: Vec<&Form> = FORMS
        .iter()
        .filter(|form| !form.status.is_empty())
        .collect();
    assert_eq!(batch.num_rows(), expected.len(), "{ips:?}");
    for (row, form) in expected.iter().enumerate() {
        assert_eq!(ips[row].as_deref(), Some(form.ip), "cell {:?}", form.cell);
        assert_eq!(
            statuses[row].as_deref(),
            Some(form.status),
            "cell {:?}",
            form.cell
        );
        let message = messages[row].as_deref().unwrap_or_default();
        assert!(
            message.contains(form.reason),
            "cell {:?}: message {message:?} lacks {:?}",
            form.cell,
            form.reason
        );
    }

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(summary["input"]["blank_values"], 2);
    assert_eq!(summary["input"]["duplicate_values"], 3);
    assert_eq!(summary["input"]["values_read"], FORMS.len());
    let looked_up = FORMS.iter().filter(|form| form.status == "ok").count();
    assert_eq!(server.stats().total_requests, looked_up as u64);
}
