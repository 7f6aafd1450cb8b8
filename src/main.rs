use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = vt_enrich::cli::Cli::parse();
    vt_enrich::app::run(cli).into()
}
