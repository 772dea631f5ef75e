//! xgate-control: everything that is not per packet (config, compile, publish, api).

#![forbid(unsafe_code)]

pub mod api;
pub mod compile;
pub mod config;
pub mod host;
pub mod import;
pub mod iptables;
pub mod metrics;
pub mod mirror;
pub mod nft;
pub mod offload;
pub mod publish;
pub mod replay;
pub mod routes;
pub mod run;
pub mod runtime;
pub mod trace;
pub use config::{Config, ConfigError, check_summary, load, parse};
