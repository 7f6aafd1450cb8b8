//! Runs the fake VirusTotal API server until killed, for benchmarks and
//! manual runs of the product against it.
//!
//! Example: `cargo run --example fake_vt -- --port 8300 --per-minute 4 --mixed 7`

#[path = "../tests/fake_vt/mod.rs"]
mod fake_vt;

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use fake_vt::{FakeVt, FakeVtConfig, FaultPolicy, FaultRates, KeyQuota, TEST_KEY};

const USAGE: &str = "\
Usage: fake_vt [OPTIONS]

Serves a fake VirusTotal API v3 on 127.0.0.1 until killed, and prints its URL.

Options:
  --port N                 port on 127.0.0.1, 0 for any free one [default: 0]
  --key KEY                accepted API key, repeatable [default: test-key]
  --latency-ms N           delay before every response, in milliseconds [default: 0]
  --per-minute N           requests per sliding 60 s per key, 0 for no limit [default: 0]
  --per-day N              requests per day per key, 0 for no limit [default: 0]
  --per-month N            requests per month per key, 0 for no limit [default: 0]
  --not-found IP           answer 404 for this address, repeatable
  --relationship NAME=N    give every address N items of relationship NAME, repeatable
  --enterprise             let the keys read the Enterprise-only relationships
  --mixed SEED             the standard fault mix on attempts 1-3 of each address
  --seed N                 seed of the rate-based faults below [default: 0]
  --server-error-rate P    probability of a 500/502/503/504 per attempt [default: 0]
  --too-many-requests-rate P  probability of a 429 TooManyRequestsError [default: 0]
  --reset-rate P           probability of a connection reset [default: 0]
  --truncated-rate P       probability of a truncated body [default: 0]
  --garbage-rate P         probability of a non-JSON 200 body [default: 0]
  --bad-gzip-rate P        probability of a 200 body that is not gzip [default: 0]
  --stall-rate P           probability of a stall after the headers [default: 0]
  --stall-ms N             length of a stall, in milliseconds [default: 2000]
  --faulty-attempts N      attempts after the Nth of an address never fail, 0 for no limit [default: 0]
  --worker-threads N       threads of the server runtime [default: 2]
  -h, --help               print this help
";

/// Settings read from the command line.
struct Options {
    config: FakeVtConfig,
    keys: Vec<String>,
    quota: KeyQuota,
    mixed_seed: Option<u64>,
    seed: u64,
    rates: FaultRates,
    enterprise: bool,
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("fake_vt: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let mut config = options.config;
    let keys = if options.keys.is_empty() {
        vec![TEST_KEY.to_string()]
    } else {
        options.keys
    };
    config.keys = keys
        .iter()
        .map(|key| (key.clone(), options.quota))
        .collect();
    if options.enterprise {
        config.enterprise_keys = keys.iter().cloned().collect();
    }
    config.faults = match options.mixed_seed {
        Some(seed) => FaultPolicy::mixed_with_stall(seed, options.rates.stall_for),
        None => FaultPolicy::rates(options.seed, options.rates),
    };

    let server = FakeVt::start(config);
    println!("{}", server.url());
    eprintln!(
        "fake_vt: listening at {} (keys: {}); stop it with Ctrl-C or kill",
        server.url(),
        keys.join(", ")
    );

    let mut last_total = 0;
    loop {
        std::thread::sleep(Duration::from_secs(10));
        let stats = server.stats();
        if stats.total_requests != last_total {
            last_total = stats.total_requests;
            eprintln!(
                "fake_vt: {} requests, statuses {:?}, faults {:?}, quota rejections {}, max in flight {}",
                stats.total_requests,
                stats.status_counts,
                stats.faults,
                stats.quota_rejections.total(),
                stats.max_in_flight
            );
        }
    }
}

/// Parses the arguments. Returns `Ok(None)` when help was requested.
fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        config: FakeVtConfig::default(),
        keys: Vec::new(),
        quota: KeyQuota::unlimited(),
        mixed_seed: None,
        seed: 0,
        rates: FaultRates::default(),
        enterprise: false,
    };

    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("option {flag} needs a value"))
        };
        match flag.as_str() {
            "--port" => options.config.port = number(&flag, &value()?)?,
            "--key" => options.keys.push(value()?),
            "--latency-ms" => options.config.latency = millis(&flag, &value()?)?,
            "--per-minute" => options.quota.per_minute = limit(number(&flag, &value()?)?),
            "--per-day" => options.quota.per_day = limit(number(&flag, &value()?)?),
            "--per-month" => options.quota.per_month = limit(number(&flag, &value()?)?),
            "--not-found" => {
                let ip = value()?;
                options.config = options.config.with_not_found(&ip);
            }
            "--relationship" => {
                let text = value()?;
                let (name, items) = text.split_once('=').ok_or_else(|| {
                    format!(
                        "invalid value {text:?} for {flag}: expected NAME=N, such as resolutions=25"
                    )
                })?;
                options.config = options
                    .config
                    .with_relationship(name, number(&flag, items)?);
            }
            "--enterprise" => options.enterprise = true,
            "--mixed" => options.mixed_seed = Some(number(&flag, &value()?)?),
            "--seed" => options.seed = number(&flag, &value()?)?,
            "--server-error-rate" => options.rates.server_error = rate(&flag, &value()?)?,
            "--too-many-requests-rate" => {
                options.rates.too_many_requests = rate(&flag, &value()?)?;
            }
            "--reset-rate" => options.rates.reset = rate(&flag, &value()?)?,
            "--truncated-rate" => options.rates.truncated = rate(&flag, &value()?)?,
            "--garbage-rate" => options.rates.garbage = rate(&flag, &value()?)?,
            "--bad-gzip-rate" => options.rates.bad_gzip = rate(&flag, &value()?)?,
            "--stall-rate" => options.rates.stall = rate(&flag, &value()?)?,
            "--stall-ms" => options.rates.stall_for = millis(&flag, &value()?)?,
            "--faulty-attempts" => {
                options.rates.faulty_attempts = limit(number(&flag, &value()?)?);
            }
            "--worker-threads" => options.config.worker_threads = number(&flag, &value()?)?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let rates = &options.rates;
    let total = rates.server_error
        + rates.too_many_requests
        + rates.reset
        + rates.truncated
        + rates.garbage
        + rates.bad_gzip
        + rates.stall
        + rates.latency;
    if total > 1.0 {
        return Err(format!(
            "the fault rates add up to {total}: their sum must not exceed 1"
        ));
    }
    Ok(Some(options))
}

fn number<T: FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("invalid value {text:?} for {flag}: expected a whole number"))
}

fn millis(flag: &str, text: &str) -> Result<Duration, String> {
    number(flag, text).map(Duration::from_millis)
}

fn rate(flag: &str, text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "invalid value {text:?} for {flag}: expected a probability from 0 to 1"
        )),
    }
}

/// Maps 0 to "no limit".
fn limit<T: Default + PartialEq>(value: T) -> Option<T> {
    (value != T::default()).then_some(value)
}
