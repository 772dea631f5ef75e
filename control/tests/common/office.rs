//! The office gateway every in-memory and replay test of a LAN behind a
//! masquerading WAN starts from, as TOML text. It needs no crate, so the
//! root package's tests include it too (`#[path]` in tests/cli.rs).
// Each test binary uses a part of it.
#![allow(dead_code)]

/// The small office gateway of the in-memory tests: wan 203.0.113.2/24
/// (gateway 203.0.113.1, a static neighbour), lan 192.168.1.1/24. A test's
/// `[firewall]` section follows it.
pub const OFFICE_NET: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.1.1/24"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "wan"
"#;

/// `OFFICE_NET` followed by `rest` (neighbours, a `[firewall]` section...).
pub fn office_config(rest: &str) -> String {
    format!("{OFFICE_NET}{rest}")
}

/// `OFFICE_NET` with edits, its layout kept: what a test adds to a section
/// goes at the end of that section, so every line before it keeps its
/// number (golden traces print the file lines of the rules that matched,
/// errors the line of a field).
#[derive(Clone, Default)]
pub struct Office {
    head: String,
    wan: Option<(String, String)>,
    wan_lines: String,
    routes: String,
    neighbors: String,
}

impl Office {
    pub fn new() -> Office {
        Office::default()
    }

    /// Text before the interfaces (e.g. a `[dataplane]` section).
    pub fn head(mut self, text: &str) -> Office {
        self.head = text.into();
        self
    }

    /// Other wan addresses and default gateway (still the neighbour with
    /// the upstream MAC 02:bb:00:00:00:01).
    pub fn wan(mut self, addresses: &[&str], gateway: &str) -> Office {
        let quoted: Vec<String> = addresses.iter().map(|a| format!("{a:?}")).collect();
        self.wan = Some((quoted.join(", "), gateway.into()));
        self
    }

    /// One more key of the wan interface, e.g. `tap = "xg-wan"`.
    pub fn wan_line(mut self, line: &str) -> Office {
        self.wan_lines += &format!("{line}\n");
        self
    }

    /// A route after the default one.
    pub fn route(mut self, to: &str, via: &str) -> Office {
        self.routes += &format!("\n[[route]]\nto = {to:?}\nvia = {via:?}\n");
        self
    }

    /// A static neighbour after the gateway.
    pub fn neighbor(mut self, ip: &str, mac: &str, dev: &str) -> Office {
        self.neighbors += &format!("\n[[neighbor]]\nip = {ip:?}\nmac = {mac:?}\ndev = {dev:?}\n");
        self
    }

    /// The configuration text, followed by `rest`.
    pub fn config(&self, rest: &str) -> String {
        let mut text = OFFICE_NET.to_string();
        if let Some((addresses, gateway)) = &self.wan {
            text = text
                .replace("\"203.0.113.2/24\"", addresses)
                // The default route's `via` and the neighbour's `ip`.
                .replace("\"203.0.113.1\"", &format!("{gateway:?}"));
        }
        // At the end of the wan interface and of the default route: before
        // the empty line that closes each.
        let text = insert_before(&text, "\n[[interface]]\nname = \"lan\"", &self.wan_lines);
        let text = insert_before(&text, "\n[[neighbor]]", &self.routes);
        format!("{}{text}{}{rest}", self.head, self.neighbors)
    }
}

/// `text` with `what` inserted before the first `at`.
fn insert_before(text: &str, at: &str, what: &str) -> String {
    let i = text
        .find(at)
        .unwrap_or_else(|| panic!("{at:?} not in {text}"));
    format!("{}{what}{}", &text[..i], &text[i..])
}
