//! `xgate ctl`: one command to the running xgate over its control socket.

use clap::{Args, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use xgate_control::api::{Command, CtAction, FlowFilter, client};
use xgate_control::config::DEFAULT_SOCKET;

#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The control socket ([control] socket of the running config).
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print the answer as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Args, Debug, Default)]
struct Filter {
    /// Protocol: tcp, udp, icmp, icmpv6 or a number.
    #[arg(short = 'p', long = "proto")]
    proto: Option<String>,
    /// Original source address.
    #[arg(short = 's', long = "src")]
    src: Option<IpAddr>,
    /// Original destination address.
    #[arg(short = 'd', long = "dst")]
    dst: Option<IpAddr>,
}

impl Filter {
    fn into_filter(self) -> FlowFilter {
        FlowFilter {
            proto: self.proto,
            src: self.src,
            dst: self.dst,
        }
    }
}

#[derive(Subcommand, Debug)]
enum CtlCommand {
    /// Port, worker, drop, connection and NAT counters.
    Stats,
    /// Connections, like `conntrack -L` (-D deletes the selected, -F flushes all).
    Conntrack {
        #[command(flatten)]
        filter: Filter,
        /// Delete the selected connections.
        #[arg(short = 'D', long, conflicts_with = "flush")]
        delete: bool,
        /// Delete every connection.
        #[arg(short = 'F', long)]
        flush: bool,
        /// List (the default).
        #[arg(short = 'L', long)]
        list: bool,
    },
    /// Every route, `ip route show table all` style (`routes table T` for one table).
    Routes {
        #[arg(num_args = 0..=2)]
        words: Vec<String>,
    },
    /// `route get ADDR [from ADDR] [iif NAME] [mark N]`, `route add|del` like `ip route`.
    Route {
        #[command(subcommand)]
        command: RouteCommand,
    },
    /// The ruleset as `iptables-save -c` prints it.
    Rules,
    /// ipsets of `-m set`: `ipset add|del NAME ELEMENT`, `ipset flush NAME`,
    /// `ipset list [NAME]` (changes are kept across reloads, not restarts).
    Ipset {
        /// add, del, flush or list.
        op: String,
        name: Option<String>,
        element: Option<String>,
    },
    /// The neighbour table, `ip neigh` style.
    Neigh,
    /// The bridges' MAC tables, `bridge fdb show` style: `fdb [BRIDGE]`;
    /// `fdb flush [BRIDGE]` forgets the learned entries.
    Fdb {
        #[arg(num_args = 0..=2)]
        words: Vec<String>,
    },
    /// Expectations of the connection-tracking helpers, like `conntrack -L expect`.
    #[command(alias = "expect")]
    Expectations,
    /// Re-read the config file; prints the errors if it does not validate.
    Reload,
    /// The netlink mirror: what it follows, routes mirrored, shadowed and unusable, resyncs.
    Mirror,
    /// Per-stage decisions for the next packets.
    Trace {
        #[command(subcommand)]
        command: TraceCommand,
    },
}

#[derive(Subcommand, Debug)]
enum RouteCommand {
    /// The route a packet to ADDR takes.
    Get {
        #[arg(trailing_var_arg = true, required = true)]
        words: Vec<String>,
    },
    /// Add a route: `10.9.0.0/16 via 192.168.1.2 [dev lan] [metric N] [table T]`.
    Add {
        #[arg(trailing_var_arg = true, required = true)]
        route: Vec<String>,
    },
    /// Delete a route (same syntax).
    Del {
        #[arg(trailing_var_arg = true, required = true)]
        route: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TraceCommand {
    /// Trace the next N packets that match the filter.
    Add {
        count: u32,
        #[command(flatten)]
        filter: Filter,
    },
    /// Print what was traced.
    Show,
    /// Stop tracing and forget the records.
    Clear,
}

fn route_get(words: &[String]) -> Result<Command, String> {
    let mut it = words.iter();
    let dst = it.next().ok_or("route get: missing address")?;
    let dst: IpAddr = dst
        .parse()
        .map_err(|_| format!("route get: invalid address {dst:?}"))?;
    let (mut from, mut iif, mut mark) = (None, None, 0);
    while let Some(w) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| format!("route get: `{w}` needs a value"))?;
        match w.as_str() {
            "from" => from = Some(v.parse().map_err(|_| format!("invalid address {v:?}"))?),
            "iif" => iif = Some(v.clone()),
            "mark" => mark = v.parse().map_err(|_| format!("invalid mark {v:?}"))?,
            _ => return Err(format!("route get: unknown word {w:?}")),
        }
    }
    Ok(Command::RouteGet {
        dst,
        from,
        iif,
        mark,
    })
}

fn command(c: CtlCommand) -> Result<Command, String> {
    Ok(match c {
        CtlCommand::Stats => Command::Stats,
        CtlCommand::Conntrack {
            filter,
            delete,
            flush,
            list: _,
        } => Command::Conntrack {
            filter: filter.into_filter(),
            action: if flush {
                CtAction::Flush
            } else if delete {
                CtAction::Delete
            } else {
                CtAction::List
            },
        },
        CtlCommand::Routes { words } => match words.as_slice() {
            [] => Command::Routes { table: None },
            [t, id] if t == "table" => Command::Routes {
                table: Some(id.clone()),
            },
            _ => return Err("usage: routes [table T|all]".into()),
        },
        CtlCommand::Route { command } => match command {
            RouteCommand::Get { words } => route_get(&words)?,
            RouteCommand::Add { route } => Command::RouteAdd { route },
            RouteCommand::Del { route } => Command::RouteDel { route },
        },
        CtlCommand::Rules => Command::Rules,
        CtlCommand::Ipset { op, name, element } => Command::Ipset { op, name, element },
        CtlCommand::Expectations => Command::Expectations,
        CtlCommand::Neigh => Command::Neigh,
        CtlCommand::Fdb { words } => match words.as_slice() {
            [] => Command::Fdb {
                bridge: None,
                flush: false,
            },
            [f] if f == "flush" => Command::Fdb {
                bridge: None,
                flush: true,
            },
            [f, b] if f == "flush" => Command::Fdb {
                bridge: Some(b.clone()),
                flush: true,
            },
            [b] => Command::Fdb {
                bridge: Some(b.clone()),
                flush: false,
            },
            _ => return Err("usage: fdb [BRIDGE] | fdb flush [BRIDGE]".into()),
        },
        CtlCommand::Reload => Command::Reload,
        CtlCommand::Mirror => Command::Mirror,
        CtlCommand::Trace { command } => match command {
            TraceCommand::Add { count, filter } => Command::TraceAdd {
                count,
                filter: filter.into_filter(),
            },
            TraceCommand::Show => Command::TraceShow,
            TraceCommand::Clear => Command::TraceClear,
        },
    })
}

/// Route words swallow everything after them: `--json` among them is
/// still the flag.
fn take_json(c: &mut CtlCommand) -> bool {
    let words = match c {
        CtlCommand::Route {
            command:
                RouteCommand::Get { words: w }
                | RouteCommand::Add { route: w }
                | RouteCommand::Del { route: w },
        } => w,
        _ => return false,
    };
    let n = words.len();
    words.retain(|w| w != "--json");
    words.len() != n
}

pub fn run(mut args: CtlArgs) -> ExitCode {
    args.json |= take_json(&mut args.command);
    let cmd = match command(args.command) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xgate ctl: {e}");
            return ExitCode::from(2);
        }
    };
    let resp = match client::request(&args.socket, cmd) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xgate ctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        if !resp.data.is_null() {
            println!(
                "{}",
                serde_json::to_string_pretty(&resp.data).unwrap_or_default()
            );
        }
    } else {
        print!("{}", resp.text);
    }
    match resp.error {
        Some(e) if !resp.ok => {
            eprintln!("{}", e.trim_end());
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
