//! The command line (../shared/CONFIG.md is the contract).

mod ctl;
mod import;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use xgate_control::config::{self, render_errors};
use xgate_control::replay::{self, Input};

#[derive(Parser, Debug)]
#[command(
    name = "xgate",
    version,
    about = "Poll-mode router, stateful firewall and NAT gateway on AF_XDP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a config: print every error with file:line and field; exit 1 if any.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the pipeline offline over pcap captures, one output pcap per interface.
    Replay {
        #[arg(long, short)]
        config: PathBuf,
        /// IFACE=FILE.pcap: frames received on IFACE (a logical interface or device name).
        #[arg(long = "input", required = true)]
        inputs: Vec<Input>,
        /// Where DIR/<interface>.pcap files are written.
        #[arg(long)]
        output_dir: PathBuf,
        /// Print one line per packet per stage.
        #[arg(long)]
        trace: bool,
    },
    /// Ask the running xgate (stats, conntrack, routes, rules, neigh, reload, trace).
    Ctl(ctl::CtlArgs),
    /// Convert iptables-save output (or an iptables script) to a [firewall] block.
    ImportIptables { file: PathBuf },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config: path } => check(&path),
        Command::Ctl(args) => ctl::run(args),
        Command::ImportIptables { file } => import::run(&file),
        Command::Replay {
            config: path,
            inputs,
            output_dir,
            trace,
        } => {
            let cfg = match config::load(&path) {
                Ok(c) => c,
                Err(errs) => {
                    eprint!("{}", render_errors(&errs));
                    return ExitCode::FAILURE;
                }
            };
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match replay::replay(&cfg, &inputs, &output_dir, trace, &mut out) {
                Ok(report) => {
                    eprintln!("{}", report.summary());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("xgate replay: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let cfg = match config::load(path) {
        Ok(c) => c,
        Err(errs) => {
            eprint!("{}", render_errors(&errs));
            return ExitCode::FAILURE;
        }
    };
    // Compile too: `check` must catch everything `run` would refuse.
    if let Err(e) = replay::compile_for_replay(&cfg) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    println!("{}", config::check_summary(&cfg));
    ExitCode::SUCCESS
}
