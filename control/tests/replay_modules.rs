//! iptables match modules and targets through replay, each against the
//! behaviour users know from the kernel: hashlimit, recent, connlimit,
//! ipsets (`-m set`), NFLOG/ULOG, `--ctstate DNAT`. (The nft forms of the
//! same ideas are in replay_nft.rs.)

mod common;
use common::*;

const GW_WAN: &str = "02:00:00:00:00:01";
const UPSTREAM: &str = "02:bb:00:00:00:01";
const SERVER: &str = "02:aa:00:00:00:10";

/// The compile errors of the office gateway with `fw` appended.
fn errors(fw: &str) -> String {
    compile_errors(
        &Office::new()
            .neighbor("192.168.1.10", SERVER, "lan")
            .config(fw),
    )
}

#[test]
fn hashlimit_keeps_a_budget_per_source_like_the_nft_meter() {
    // The same meter in iptables form: 3 SYNs per source pass.
    let cfg = Office::new()
        .neighbor("192.168.1.10", SERVER, "lan")
        .config(
            r#"
[firewall]
rules = """
*filter
-A FORWARD -p tcp --dport 22 -m hashlimit --hashlimit-above 10/sec --hashlimit-burst 3 --hashlimit-mode srcip --hashlimit-name ssh -j DROP
COMMIT
"""
"#,
        );
    let mut frames = Vec::new();
    for i in 0..10u16 {
        for (k, src) in ["198.51.100.8", "198.51.100.9"].iter().enumerate() {
            frames.push((
                f64::from(i) * 0.01 + k as f64 * 0.001,
                syn(UPSTREAM, GW_WAN, src, "192.168.1.10", 40000 + i, 22),
            ));
        }
    }
    let o = run("ipt_hashlimit", &cfg, &[("wan", frames)]);
    let lan: Vec<String> = o.frames("lan").iter().map(|f| flow4(f)).collect();
    let per = |p: &str| lan.iter().filter(|f| f.starts_with(p)).count();
    assert_eq!(
        (per("198.51.100.8:"), per("198.51.100.9:")),
        (3, 3),
        "{lan:?}"
    );
    // Round trip: the rule prints back with every option.
    let rs = xgate_control::iptables::parse(
        "*filter\n-A INPUT -m hashlimit --hashlimit-upto 5/min --hashlimit-mode srcip,dstport --hashlimit-name x -j ACCEPT\nCOMMIT\n",
        "r",
        1,
    )
    .unwrap();
    let text = rs.to_string();
    assert!(
        text.contains("-m hashlimit --hashlimit-upto 5/min --hashlimit-burst 5 --hashlimit-mode srcip,dstport --hashlimit-name x"),
        "{text}"
    );
    for (bad, needle) in [
        ("--hashlimit-upto 5/sec", "needs --hashlimit-name"),
        ("--hashlimit-name x", "needs --hashlimit-upto"),
        ("--hashlimit-upto 1mb/s --hashlimit-name x", "byte rates"),
        (
            "--hashlimit-upto 5/s --hashlimit-name x --hashlimit-srcmask 24",
            "prefix",
        ),
    ] {
        let e = xgate_control::iptables::parse(
            &format!("*filter\n-A INPUT -m hashlimit {bad} -j ACCEPT\nCOMMIT\n"),
            "r",
            1,
        )
        .unwrap_err();
        assert!(e[0].message.contains(needle), "{bad}: {e:?}");
    }
}

#[test]
fn recent_blocks_a_source_after_its_hitcount() {
    // The SSH guard of many guides, as iptables-save prints it: the 4th
    // new connection within 60 s from one source is dropped (and keeps
    // being: --update records the dropped attempts too), another source
    // is not affected.
    let cfg = Office::new()
        .neighbor("192.168.1.10", SERVER, "lan")
        .config(
            r#"
[firewall]
rules = """
*filter
-A FORWARD -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name SSH --mask 255.255.255.255 --rsource
-A FORWARD -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --update --seconds 60 --hitcount 4 --name SSH --mask 255.255.255.255 --rsource -j DROP
COMMIT
"""
"#,
        );
    let mut frames = Vec::new();
    for i in 0..6u16 {
        frames.push((
            f64::from(i) * 0.1,
            syn(
                UPSTREAM,
                GW_WAN,
                "198.51.100.8",
                "192.168.1.10",
                40000 + i,
                22,
            ),
        ));
    }
    frames.push((
        0.7,
        syn(UPSTREAM, GW_WAN, "198.51.100.9", "192.168.1.10", 41000, 22),
    ));
    let o = run("ipt_recent", &cfg, &[("wan", frames)]);
    let lan: Vec<String> = o.frames("lan").iter().map(|f| flow4(f)).collect();
    let per = |p: &str| lan.iter().filter(|f| f.starts_with(p)).count();
    assert_eq!(
        (per("198.51.100.8:"), per("198.51.100.9:")),
        (3, 1),
        "{lan:?}"
    );
    let rs = xgate_control::iptables::parse(
        "*filter\n-A INPUT -m recent ! --rcheck --seconds 5 --name X --rdest -j ACCEPT\nCOMMIT\n",
        "r",
        1,
    )
    .unwrap();
    assert!(
        rs.to_string()
            .contains("-m recent ! --rcheck --seconds 5 --name X --mask 255.255.255.255 --rdest"),
        "{rs}"
    );
}

#[test]
fn connlimit_caps_a_sources_connections() {
    let cfg = Office::new()
        .neighbor("192.168.1.10", SERVER, "lan")
        .config(
            r#"
[firewall]
rules = """
*filter
-A FORWARD -p tcp --syn -m connlimit --connlimit-above 2 --connlimit-mask 32 --connlimit-saddr -j REJECT --reject-with tcp-reset
COMMIT
"""
"#,
        );
    let mut frames = Vec::new();
    for i in 0..4u16 {
        frames.push((
            f64::from(i) * 0.1,
            syn(
                UPSTREAM,
                GW_WAN,
                "198.51.100.8",
                "192.168.1.10",
                40000 + i,
                22,
            ),
        ));
    }
    frames.push((
        0.5,
        syn(UPSTREAM, GW_WAN, "198.51.100.9", "192.168.1.10", 41000, 22),
    ));
    let o = run("ipt_connlimit", &cfg, &[("wan", frames)]);
    let lan: Vec<String> = o.frames("lan").iter().map(|f| flow4(f)).collect();
    let per = |p: &str| lan.iter().filter(|f| f.starts_with(p)).count();
    assert_eq!(
        (per("198.51.100.8:"), per("198.51.100.9:")),
        (2, 1),
        "{lan:?}"
    );
    // The third and fourth were answered with resets.
    assert_eq!(o.frames("wan").len(), 2);
    let e = xgate_control::iptables::parse(
        "*filter\n-A INPUT -m connlimit --connlimit-above 2 --connlimit-mask 24 -j DROP\nCOMMIT\n",
        "r",
        1,
    )
    .unwrap_err();
    assert!(e[0].message.contains("counting by network"), "{e:?}");
}

#[test]
fn ipset_match_set_drops_the_sets_members() {
    // fail2ban's shape: a hash:net of banned sources, given as `ipset save`
    // prints it, and one rule naming it; `!` on a second set lets only its
    // members reach port 22.
    let cfg = Office::new()
        .neighbor("192.168.1.10", SERVER, "lan")
        .config(
            r#"
[firewall]
ipsets = """
create banned hash:net family inet hashsize 1024 maxelem 65536
add banned 198.51.100.0/29
add banned 203.0.113.50-203.0.113.60
create admins hash:ip family inet
add admins 198.51.100.9
"""
rules = """
*filter
-A FORWARD -m set --match-set banned src -j DROP
-A FORWARD -p tcp --dport 22 -m set ! --match-set admins src -j DROP
COMMIT
"""
"#,
        );
    let frames = vec![
        (
            0.0,
            syn(UPSTREAM, GW_WAN, "198.51.100.7", "192.168.1.10", 40000, 80),
        ),
        (
            0.1,
            syn(UPSTREAM, GW_WAN, "198.51.100.9", "192.168.1.10", 40001, 80),
        ),
        (
            0.2,
            syn(UPSTREAM, GW_WAN, "203.0.113.55", "192.168.1.10", 40002, 80),
        ),
        (
            0.3,
            syn(UPSTREAM, GW_WAN, "198.51.100.9", "192.168.1.10", 40003, 22),
        ),
        (
            0.4,
            syn(UPSTREAM, GW_WAN, "198.51.100.10", "192.168.1.10", 40004, 22),
        ),
    ];
    let o = run("ipt_set", &cfg, &[("wan", frames)]);
    let lan: Vec<String> = o.frames("lan").iter().map(|f| flow4(f)).collect();
    assert_eq!(lan.len(), 2, "{lan:?}");
    assert!(lan[0].starts_with("198.51.100.9:40001"), "{lan:?}");
    assert!(lan[1].starts_with("198.51.100.9:40003"), "{lan:?}");

    // A set nobody gave, and a set of the other family, are refused.
    for (sets, rules, needle) in [
        (
            "",
            "-A FORWARD -m set --match-set nosuch src -j DROP",
            "no ipset nosuch",
        ),
        (
            "create six hash:ip family inet6\nadd six 2001:db8::1\n",
            "-A FORWARD -m set --match-set six src -j DROP",
            "other family",
        ),
    ] {
        let cfg = Office::new().config(&format!(
            "\n[firewall]\nipsets = \"\"\"\n{sets}\"\"\"\nrules_v4 = \"\"\"\n*filter\n{rules}\nCOMMIT\n\"\"\"\n"
        ));
        let p = std::env::temp_dir().join(format!("xgate-ipt-set-{}.toml", std::process::id()));
        std::fs::write(&p, cfg).unwrap();
        let loaded = xgate_control::load(&p);
        let _ = std::fs::remove_file(&p);
        let e = xgate_control::compile::compile(&loaded.unwrap(), &|_, _| Some([2, 0, 0, 0, 0, 1]))
            .map(|_| ())
            .unwrap_err();
        let all = format!("{e:?}");
        assert!(all.contains(needle), "{all}");
    }
}

#[test]
fn nflog_and_ulog_write_the_log_line_with_their_prefix() {
    // ulogd's usual output is LOG's line: NFLOG and ULOG rules give that
    // line with their prefix; LOG's extra flags are accepted.
    let cfg = Office::new()
        .neighbor("192.168.1.10", SERVER, "lan")
        .config(
            r#"
[firewall]
rules = """
*filter
-A FORWARD -p tcp --dport 22 -j NFLOG --nflog-prefix "ssh-in: " --nflog-group 2 --nflog-threshold 10
-A FORWARD -p tcp --dport 23 -j ULOG --ulog-prefix "telnet: " --ulog-nlgroup 1
-A FORWARD -p tcp --dport 23 -j LOG --log-prefix "tn: " --log-tcp-sequence --log-ip-options
-A FORWARD -p tcp --dport 23 -j DROP
COMMIT
"""
"#,
        );
    let frames = vec![
        (
            0.0,
            syn(UPSTREAM, GW_WAN, "198.51.100.7", "192.168.1.10", 40000, 22),
        ),
        (
            0.1,
            syn(UPSTREAM, GW_WAN, "198.51.100.7", "192.168.1.10", 40001, 23),
        ),
    ];
    let o = run("ipt_nflog", &cfg, &[("wan", frames)]);
    assert_eq!(o.frames("lan").len(), 1, "NFLOG does not end the walk");
    let log = &o.report.log;
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(
        log[0].starts_with("ssh-in: IN=wan OUT=lan SRC=198.51.100.7 DST=192.168.1.10"),
        "{}",
        log[0]
    );
    assert!(log[1].starts_with("telnet: IN=wan OUT=lan"), "{}", log[1]);
    assert!(log[2].starts_with("tn: IN=wan OUT=lan"), "{}", log[2]);

    // Re-exported as written (iptables-save's order of options).
    let text = "*filter\n-A INPUT -j NFLOG --nflog-prefix \"x\" --nflog-group 5 --nflog-size 128 --nflog-threshold 3\n-A INPUT -j ULOG --ulog-prefix \"y\" --ulog-nlgroup 2 --ulog-cprange 64 --ulog-qthreshold 4\n-A INPUT -j LOG --log-prefix \"z\" --log-level 6 --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid --log-macdecode\nCOMMIT\n";
    let rs = xgate_control::iptables::parse(text, "r", 1).unwrap();
    let out = rs.to_string();
    for l in text.lines().filter(|l| l.starts_with("-A")) {
        assert!(out.contains(l), "{l}\n{out}");
    }
    for (bad, needle) in [
        ("-j NFLOG --ulog-prefix x", "not valid for target NFLOG"),
        ("-j ULOG --ulog-nlgroup 0", "1..32"),
        ("-j NFLOG --nflog-group 70000", "0..65535"),
        ("-j LOG --nflog-group 1", "not valid for target LOG"),
        ("-j ACCEPT --log-uid", "not valid for target ACCEPT"),
    ] {
        let e =
            xgate_control::iptables::parse(&format!("*filter\n-A INPUT {bad}\nCOMMIT\n"), "r", 1)
                .unwrap_err();
        assert!(e[0].message.contains(needle), "{bad}: {e:?}");
    }
}

#[test]
fn ctstate_dnat_admits_port_forwarded_connections() {
    // FORWARD policy DROP opened only for what a DNAT rule forwarded (the
    // pattern of ufw and many port-forward guides): the forwarded port
    // reaches the server, the same server's other ports do not.
    let cfg = Office::new()
        .neighbor("192.168.1.10", SERVER, "lan")
        .config(
            r#"
[firewall]
rules = """
*nat
-A PREROUTING -i wan -p tcp --dport 8080 -j DNAT --to-destination 192.168.1.10:80
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT
COMMIT
"""
"#,
        );
    let frames = vec![
        (
            0.0,
            syn(UPSTREAM, GW_WAN, "198.51.100.7", "203.0.113.2", 40000, 8080),
        ),
        (
            0.1,
            syn(UPSTREAM, GW_WAN, "198.51.100.7", "192.168.1.10", 40001, 80),
        ),
    ];
    let o = run("ipt_ctstate_dnat", &cfg, &[("wan", frames)]);
    let lan: Vec<String> = o.frames("lan").iter().map(|f| flow4(f)).collect();
    assert_eq!(lan, vec!["198.51.100.7:40000 > 192.168.1.10:80"], "{lan:?}");

    let rs = xgate_control::iptables::parse(
        "*filter\n-A FORWARD -m conntrack ! --ctstate SNAT,DNAT -j DROP\nCOMMIT\n",
        "r",
        1,
    )
    .unwrap();
    assert!(rs.to_string().contains("! --ctstate SNAT,DNAT"), "{rs}");
}

#[test]
fn ipset_hash_ip_port_opens_what_it_lists() {
    // A hash:ip,port of published services, matched by destination
    // address and port (`dst,dst`), under FORWARD policy DROP.
    let cfg = Office::new()
        .neighbor("192.168.1.10", SERVER, "lan")
        .config(
            r#"
[firewall]
ipsets = """
create services hash:ip,port family inet
add services 192.168.1.10,tcp:22
add services 192.168.1.10,udp:53
add services 192.168.1.10,8000-8001
"""
rules = """
*filter
:FORWARD DROP [0:0]
-A FORWARD -m set --match-set services dst,dst -j ACCEPT
COMMIT
"""
"#,
        );
    let frames = vec![
        (
            0.0,
            syn(UPSTREAM, GW_WAN, "198.51.100.7", "192.168.1.10", 40000, 22),
        ),
        (
            0.1,
            syn(UPSTREAM, GW_WAN, "198.51.100.7", "192.168.1.10", 40001, 53),
        ),
        (
            0.2,
            syn(
                UPSTREAM,
                GW_WAN,
                "198.51.100.7",
                "192.168.1.10",
                40002,
                8001,
            ),
        ),
        (
            0.3,
            syn(
                UPSTREAM,
                GW_WAN,
                "198.51.100.7",
                "192.168.1.10",
                40003,
                8002,
            ),
        ),
    ];
    let o = run("ipt_set_ip_port", &cfg, &[("wan", frames)]);
    let lan: Vec<String> = o.frames("lan").iter().map(|f| flow4(f)).collect();
    assert_eq!(
        lan,
        vec![
            "198.51.100.7:40000 > 192.168.1.10:22",
            "198.51.100.7:40002 > 192.168.1.10:8001"
        ],
        "tcp 53 is not udp 53, 8002 is past the range"
    );
    // One flag for a two-dimension set is refused.
    let e = errors(
        "\n[firewall]\nipsets = \"\"\"\ncreate s hash:ip,port\nadd s 10.0.0.1,80\n\"\"\"\nrules_v4 = \"\"\"\n*filter\n-A FORWARD -m set --match-set s dst -j DROP\nCOMMIT\n\"\"\"\n",
    );
    assert!(e.contains("each of the set's dimensions"), "{e}");
}
