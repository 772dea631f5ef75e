//! The command line (../shared/CONFIG.md is the contract).

mod ctl;
mod demo;
mod import;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use xgate_control::config::{self, render_errors};
use xgate_control::replay::{self, Input};
use xgate_control::run;
use xgate_dataplane::worker::IdlePolicy;

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
    /// The appliance: AF_XDP sockets on the config's devices, one pinned worker
    /// per [dataplane] worker, until SIGINT or SIGTERM.
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Print a summary line every SECS seconds (default: quiet).
        #[arg(long, value_name = "SECS")]
        stats_interval: Option<u64>,
        /// On exit, write one `key=value` line per worker here (also printed to stderr).
        #[arg(long, value_name = "FILE")]
        stats_file: Option<PathBuf>,
        /// Back the UMEM with 2 MiB huge pages if some are reserved (vm.nr_hugepages).
        #[arg(long)]
        huge_pages: bool,
        /// Poll without ever sleeping (dedicated cores); default: adaptive back-off.
        #[arg(long)]
        busy_poll: bool,
        /// Time every pipeline stage (`xgate ctl stats` shows ns/packet and
        /// vectors/call per stage, like VPP's `show runtime`).
        #[arg(long)]
        profile: bool,
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
    /// A gateway site in network namespaces (two LAN hosts, a WAN server,
    /// masquerade and a port forward) with live traffic; root needed.
    Demo {
        /// Stop after SECS seconds (default: at Ctrl-C).
        #[arg(long, value_name = "SECS")]
        duration: Option<u64>,
    },
    /// Ask the running xgate (stats, conntrack, routes, rules, neigh, reload, trace).
    Ctl(ctl::CtlArgs),
    /// Convert iptables-save output (or an iptables script) to a [firewall] block.
    /// Fails, printing nothing, if any line cannot be converted.
    ImportIptables {
        file: PathBuf,
        /// Print the block even if lines could not be converted (kept in it
        /// as comments; `xgate check` warns about them).
        #[arg(long)]
        partial: bool,
        /// The family of iptables-save lines: 4 (iptables-save, the
        /// default unless they name only IPv6 addresses) or 6
        /// (ip6tables-save). `iptables`/`ip6tables` commands keep theirs.
        #[arg(long, value_parser = ["4", "6"])]
        family: Option<String>,
        /// Same as `--family 6`.
        #[arg(short = '6', conflicts_with = "family")]
        v6: bool,
        /// Run FILE, a firewall script, with ARGS in a sandbox (its own
        /// network, mount and PID namespaces; root needed) and import the
        /// rulesets it leaves, as iptables-save and ip6tables-save print
        /// them. For scripts built from functions, loops, `case "$1"` and
        /// variables; a command that fails there is refused.
        #[arg(long, conflicts_with_all = ["family", "v6"])]
        run: bool,
        /// Seconds the script may run (with --run).
        #[arg(long, value_name = "SECS", default_value_t = 60, requires = "run")]
        timeout: u64,
        /// The script's arguments (with --run), e.g. `start`.
        #[arg(requires = "run", trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config: path } => check(&path),
        Command::Run {
            config: path,
            stats_interval,
            stats_file,
            huge_pages,
            busy_poll,
            profile,
        } => {
            let opts = run::RunOptions {
                stats_interval: stats_interval.map(std::time::Duration::from_secs),
                stats_file,
                huge_pages,
                idle: if busy_poll {
                    IdlePolicy::Busy
                } else {
                    IdlePolicy::default()
                },
                profile,
            };
            run_cmd(&path, &opts)
        }
        Command::Demo { duration } => demo::main(duration),
        Command::Ctl(args) => ctl::run(args),
        Command::ImportIptables {
            file,
            partial,
            family: _,
            v6: _,
            run: true,
            timeout,
            args,
        } => import::run_script(
            &file,
            partial,
            &args,
            std::time::Duration::from_secs(timeout),
        ),
        Command::ImportIptables {
            file,
            partial,
            family,
            v6,
            ..
        } => {
            let family = match (family.as_deref(), v6) {
                (Some("6"), _) | (_, true) => Some(xgate_control::iptables::Family::V6),
                (Some(_), _) => Some(xgate_control::iptables::Family::V4),
                (None, false) => None,
            };
            import::run(&file, partial, family)
        }
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

/// Set by SIGINT / SIGTERM; the control loop polls it.
static STOP: AtomicBool = AtomicBool::new(false);
/// Set by SIGHUP: re-read the config.
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomic stores: async-signal-safe.
    if sig == libc::SIGHUP {
        RELOAD.store(true, Ordering::Relaxed);
    } else {
        STOP.store(true, Ordering::Relaxed);
    }
}

fn run_cmd(path: &std::path::Path, opts: &run::RunOptions) -> ExitCode {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs a handler that only stores to atomics.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let mut err = std::io::stderr();
    match run::run(path, opts, &STOP, &RELOAD, &mut err) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xgate run: {e}");
            ExitCode::FAILURE
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
    if let Some(w) = cfg
        .firewall
        .as_ref()
        .and_then(xgate_control::import::partial_warning)
    {
        eprintln!("{w}");
    }
    println!("{}", config::check_summary(&cfg));
    ExitCode::SUCCESS
}
