//! The `xgate ctl` protocol: one JSON object per line over a Unix socket.
//!
//! A request is `{"version":1,"command":"<name>", ...arguments}`; the
//! answer is one line `{"version":1,"ok":true,"text":"...","data":{...}}`
//! (`text`: what `xgate ctl` prints, in the style of the Linux tool it
//! mirrors; `data`: the same facts for `--json`), or `"ok":false` with
//! `"error"`. A server refuses a version it does not speak, so the client
//! and the daemon of another release fail loudly instead of misreading
//! each other. New commands and new optional arguments keep the version;
//! a change of meaning bumps it.
//!
//! The server ([`server::CtlServer`]) answers from a [`Runtime`]: the
//! publisher (tables, config), the shared state (connections, NAT,
//! neighbours) and each worker's counters, all read through atomics and
//! `Arc`s; it never stops or waits for a worker.

pub mod client;
mod commands;
pub mod server;

pub use crate::trace;

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub use crate::runtime::{Clock, Runtime};

/// The control plane's threads for `xgate run`: the ctl socket and,
/// unless `[control] metrics` is empty, the metrics endpoint. Dropping it
/// stops both and removes the socket.
#[derive(Debug)]
pub struct Services {
    pub ctl: server::CtlHandle,
    pub metrics: Option<crate::metrics::MetricsHandle>,
}

/// Starts the services of `control` (the config's `[control]`) answering
/// from `runtime`.
pub fn start(
    runtime: std::sync::Arc<Runtime>,
    control: &crate::config::Control,
) -> std::io::Result<Services> {
    let ctl =
        server::CtlServer::bind(std::path::Path::new(&control.socket))?.spawn(runtime.clone())?;
    let metrics = crate::metrics::serve(&control.metrics, runtime)?;
    Ok(Services { ctl, metrics })
}

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// Which connections a `conntrack` or `trace` command selects (all given
/// conditions must hold; addresses are the original direction's).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowFilter {
    /// `tcp`, `udp`, `icmp`, `icmpv6` or a protocol number.
    pub proto: Option<String>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
}

impl trace::Selector {
    /// The selector of a request's filter (its protocol name resolved).
    pub fn new(f: &FlowFilter) -> Result<Self, String> {
        Ok(trace::Selector {
            proto: f.proto.as_deref().map(trace::proto_number).transpose()?,
            src: f.src,
            dst: f.dst,
        })
    }
}

/// What `conntrack` does with the selected connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CtAction {
    /// `-L`
    #[default]
    List,
    /// `-D`: delete the selected connections.
    Delete,
    /// `-F`: delete every connection.
    Flush,
}

/// A command and its arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Stats,
    Conntrack {
        #[serde(default)]
        filter: FlowFilter,
        #[serde(default)]
        action: CtAction,
    },
    /// Every route of `table` (`all` or absent: every table).
    Routes {
        #[serde(default)]
        table: Option<String>,
    },
    RouteGet {
        dst: IpAddr,
        #[serde(default)]
        from: Option<IpAddr>,
        #[serde(default)]
        iif: Option<String>,
        #[serde(default)]
        mark: u32,
    },
    /// `ip route add` words: `10.9.0.0/16 via 192.168.1.2 [dev lan] ...`.
    RouteAdd {
        route: Vec<String>,
    },
    RouteDel {
        route: Vec<String>,
    },
    Rules,
    /// `ipset add|del NAME ELEMENT`, `ipset flush NAME`, `ipset list
    /// [NAME]`.
    Ipset {
        op: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        element: Option<String>,
    },
    Neigh,
    /// The bridges' MAC tables, as `bridge fdb show` (`bridge`: one
    /// bridge); `flush`: forget its learned entries (`bridge fdb flush`).
    Fdb {
        #[serde(default)]
        bridge: Option<String>,
        #[serde(default)]
        flush: bool,
    },
    /// Expectations of the connection-tracking helpers (`conntrack -L
    /// expect`).
    Expectations,
    Reload,
    /// The netlink mirror's state (`xgate ctl mirror`).
    Mirror,
    /// Trace the next `count` packets that match `filter`.
    TraceAdd {
        count: u32,
        #[serde(default)]
        filter: FlowFilter,
    },
    TraceShow,
    TraceClear,
}

/// One request line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    #[serde(flatten)]
    pub command: Command,
}

impl Request {
    pub fn new(command: Command) -> Self {
        Request {
            version: VERSION,
            command,
        }
    }
}

/// One answer line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub version: u32,
    pub ok: bool,
    /// Human-readable answer (tables like the Linux tools print).
    #[serde(default)]
    pub text: String,
    /// The same answer as data (`xgate ctl --json`).
    #[serde(default)]
    pub data: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub fn ok(text: String, data: serde_json::Value) -> Self {
        Response {
            version: VERSION,
            ok: true,
            text,
            data,
            error: None,
        }
    }

    pub fn error(msg: impl Into<String>) -> Self {
        Response {
            version: VERSION,
            ok: false,
            text: String::new(),
            data: serde_json::Value::Null,
            error: Some(msg.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let r = Request::new(Command::Stats);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"version":1,"command":"stats"}"#
        );
        let r: Request = serde_json::from_str(
            r#"{"version":1,"command":"conntrack","filter":{"proto":"tcp"},"action":"delete"}"#,
        )
        .unwrap();
        assert_eq!(
            r.command,
            Command::Conntrack {
                filter: FlowFilter {
                    proto: Some("tcp".into()),
                    ..FlowFilter::default()
                },
                action: CtAction::Delete
            }
        );
        let r: Request =
            serde_json::from_str(r#"{"version":1,"command":"route_get","dst":"10.1.2.3"}"#)
                .unwrap();
        assert!(matches!(r.command, Command::RouteGet { mark: 0, .. }));
    }
}
