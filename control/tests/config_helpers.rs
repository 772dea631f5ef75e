//! `[conntrack] helpers`: the config shortcut that gives new connections
//! to a port a connection-tracking helper (for users without a raw
//! table), its defaults and its errors with file, line and field.

use xgate_control::config::{self, ConfigError};
use xgate_dataplane::conntrack::HelperKind;

fn errs(text: &str) -> Vec<ConfigError> {
    match config::parse(text, "x.toml") {
        Ok(_) => panic!("expected errors, config parsed"),
        Err(e) => e,
    }
}

#[test]
fn helpers_parse_with_default_ports() {
    let c = config::parse(
        "[conntrack]\nhelpers = [\n  { helper = \"ftp\", ports = [21, 2121] },\n  { helper = \"tftp\" },\n]\n",
        "x.toml",
    )
    .unwrap_or_else(|e| panic!("{}", config::render_errors(&e)));
    let h = &c.conntrack.helpers;
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[0].helper, h[0].ports.clone(), h[0].line),
        (HelperKind::Ftp, vec![21, 2121], 3)
    );
    assert_eq!(
        (h[1].helper, h[1].ports.clone()),
        (HelperKind::Tftp, vec![69])
    );
    // The [[table]] form works too.
    let c = config::parse("[[conntrack.helpers]]\nhelper = \"ftp\"\n", "x.toml").unwrap();
    assert_eq!(c.conntrack.helpers[0].ports, vec![21]);
}

#[test]
fn helper_errors_name_line_and_field() {
    let e = errs("[conntrack]\nhelpers = [\n  { helper = \"sip\" },\n]\n");
    assert_eq!(e.len(), 1, "{}", config::render_errors(&e));
    assert_eq!(
        e[0].to_string(),
        r#"x.toml:3: conntrack.helpers[0].helper: unknown helper "sip" (expected "ftp" or "tftp")"#
    );
    let e = errs("[conntrack]\nhelpers = [ { ports = [21] } ]\n");
    assert_eq!(
        (e[0].line, e[0].field.as_str()),
        (2, "conntrack.helpers[0].helper")
    );
    assert_eq!(e[0].message, "required key is missing");
    let e = errs("[conntrack]\nhelpers = [\n { helper = \"ftp\", ports = [0] } ]\n");
    assert_eq!(
        (e[0].line, e[0].field.as_str()),
        (3, "conntrack.helpers[0].ports[0]")
    );
    let e = errs("[conntrack]\nhelpers = [ { helper = \"ftp\", ports = 21 } ]\n");
    assert_eq!(e[0].field, "conntrack.helpers[0].ports");
    assert!(e[0].message.contains("an array of ports"), "{}", e[0]);
    let e = errs("[conntrack]\nhelpers = [ { helper = \"ftp\", port = [21] } ]\n");
    assert_eq!(e[0].field, "conntrack.helpers[0].port");
    assert!(e[0].message.contains("did you mean \"ports\"?"), "{}", e[0]);
    let e = errs("[conntrack]\nhelper = []\n");
    assert_eq!((e[0].line, e[0].field.as_str()), (2, "conntrack.helper"));
    let e = errs(
        "[conntrack]\nhelpers = [\n { helper = \"ftp\" },\n { helper = \"ftp\", ports = [21] },\n]\n",
    );
    assert_eq!(e.len(), 1, "{}", config::render_errors(&e));
    assert_eq!(
        (e[0].line, e[0].field.as_str()),
        (4, "conntrack.helpers[1].ports")
    );
    assert!(e[0].message.contains("already has a helper"), "{}", e[0]);
    // TFTP on 21 is another protocol: no clash.
    config::parse(
        "[conntrack]\nhelpers = [ { helper = \"ftp\" }, { helper = \"tftp\", ports = [21] } ]\n",
        "x.toml",
    )
    .unwrap();
}

#[test]
fn helpers_turn_tracking_on() {
    let text = "[[interface]]\nname = \"lan\"\ndevice = \"eth1\"\naddress = [\"10.0.0.1/24\"]\n\n[conntrack]\nhelpers = [ { helper = \"ftp\" } ]\n";
    let cfg = config::parse(text, "x.toml").unwrap();
    let c = xgate_control::compile::compile(&cfg, &|_, _| Some([2, 0, 0, 0, 0, 1]))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(c.tables.tracking);
    assert_eq!(c.tables.helper_ports.lookup(6, 21), Some(HelperKind::Ftp));
    assert_eq!(c.tables.helper_ports.lookup(17, 21), None);
}
