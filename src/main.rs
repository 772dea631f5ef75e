//! xgate: a poll-mode router, stateful firewall and NAT gateway on AF_XDP.
//! This binary only parses the command line and wires the crates together.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
