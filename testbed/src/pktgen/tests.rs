use super::*;

fn template(src: &str, dst: &str, proto: Proto) -> Template {
    Template {
        proto,
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        sport: 1000,
        dport: 9,
        size: 64,
        flows: 6,
        addrs: 3,
    }
}

/// Checksums of a frame verified from scratch.
fn checksums_ok(f: &[u8]) -> bool {
    use crate::traffic::checksum;
    let v4 = f[12..14] == [0x08, 0x00];
    let (l4, proto, src, dst) = if v4 {
        if checksum(&f[14..34]) != 0 {
            return false;
        }
        (34, f[23], &f[26..30], &f[30..34])
    } else {
        (54, f[20], &f[22..38], &f[38..54])
    };
    let mut p = Vec::new();
    p.extend_from_slice(src);
    p.extend_from_slice(dst);
    p.extend_from_slice(&[0, proto]);
    p.extend_from_slice(&((f.len() - l4) as u16).to_be_bytes());
    p.extend_from_slice(&f[l4..]);
    checksum(&p) == 0
}

#[test]
fn templates_have_valid_checksums_and_magic() {
    for (s, d) in [("10.0.0.1", "10.0.1.1"), ("fd00::1", "fd00:1::1")] {
        for proto in [Proto::Udp, Proto::Tcp] {
            let mut t = template(s, d, proto);
            t.size = 128;
            t.validate().unwrap();
            let f = t.frame();
            assert_eq!(f.len(), 124);
            assert!(checksums_ok(&f), "{s} {proto:?}");
            assert!(MAGIC_OFFSETS.iter().any(|&o| f[o..o + 4] == MAGIC));
        }
    }
}

#[test]
fn too_small_frames_are_refused() {
    let mut t = template("fd00::1", "fd00:1::1", Proto::Tcp);
    t.size = 64;
    assert!(t.validate().is_err());
    t.size = 84;
    assert!(t.validate().is_ok());
}

/// The generator program run in the kernel (BPF_PROG_RUN without a
/// device): flows cycle over ports and addresses, checksums stay valid.
#[test]
fn generator_program_varies_flows_with_valid_checksums() {
    if crate::skip_reason().is_some() {
        eprintln!("skipped: needs root");
        return;
    }
    for (s, d) in [("10.0.0.1", "10.0.1.1"), ("fd00::1", "fd00:1::1")] {
        for proto in [Proto::Udp, Proto::Tcp] {
            let mut t = template(s, d, proto);
            t.size = 96;
            let g = Generator::new(&t).unwrap();
            let mut seen = std::collections::BTreeSet::new();
            let mut frame = g.frame.clone();
            let flow_frames: Vec<Vec<u8>> = (0..t.flows).map(|i| t.flow_frame(i)).collect();
            let mut flows_seen = std::collections::BTreeSet::new();
            for _ in 0..12 {
                let (verdict, out) = g.program.run_once(&frame).unwrap();
                assert_eq!(verdict, bpf::XDP_TX as u32);
                assert!(checksums_ok(&out), "{s} {proto:?}: {out:02x?}");
                // Byte for byte one of the frames the AF_XDP path sends.
                let flow = flow_frames.iter().position(|f| *f == out);
                flows_seen.insert(
                    flow.unwrap_or_else(|| panic!("{s} {proto:?}: not a flow_frame: {out:02x?}")),
                );
                let o = t.offsets();
                let port = u16::from_be_bytes([out[o.l4], out[o.l4 + 1]]);
                let lo = u16::from_be_bytes([out[o.addr_lo], out[o.addr_lo + 1]]);
                seen.insert((lo, port));
                assert_eq!(out[..6], t.dst_mac);
                // As a recycled page would: the next run starts from
                // what a forwarder left (MACs and hop limit changed).
                frame = out;
                frame[0] ^= 0xff;
                frame[if t.src.is_ipv4() { 22 } else { 21 }] -= 1;
            }
            let want: std::collections::BTreeSet<(u16, u16)> =
                (0..6u16).map(|i| (1 + i % 3, 1000 + i / 3)).collect();
            assert_eq!(seen, want, "{s} {proto:?}");
            assert_eq!(flows_seen.len(), 6, "{s} {proto:?}");
        }
    }
}

#[test]
fn flow_frames_cycle_addresses_then_ports_with_valid_checksums() {
    for (s, d) in [("10.0.0.1", "10.0.1.1"), ("fd00::1", "fd00:1::1")] {
        for proto in [Proto::Udp, Proto::Tcp] {
            let mut t = template(s, d, proto);
            t.size = 96;
            t.validate().unwrap();
            assert_eq!(t.flow_frame(0), t.frame());
            let o = t.offsets();
            for i in 0..6u32 {
                let f = t.flow_frame(i);
                assert!(checksums_ok(&f), "{s} {proto:?} flow {i}");
                let lo = u16::from_be_bytes([f[o.addr_lo], f[o.addr_lo + 1]]);
                let port = u16::from_be_bytes([f[o.l4], f[o.l4 + 1]]);
                assert_eq!((lo, port), (1 + i as u16 % 3, 1000 + i as u16 / 3));
                assert_eq!(t.flow(i + 6), t.flow(i), "flows repeat");
                // The headers before the checksums are flow 0's.
                let fixed = o.ip_csum.unwrap_or(o.addr_lo);
                assert_eq!(f[..fixed], t.frame()[..fixed]);
                assert_eq!(f[o.payload..], t.frame()[o.payload..]);
            }
        }
    }
}

#[test]
fn shares_split_the_rate_evenly_and_the_count_exactly() {
    let until = Instant::now();
    let s = shares(1000, 10001, 3, until);
    assert_eq!(
        s.iter().map(|s| s.count).collect::<Vec<_>>(),
        [3334, 3334, 3333]
    );
    assert!(
        s.iter()
            .all(|s| (s.rate - 1000.0 / 3.0).abs() < 1e-9 && s.until == until)
    );
    let s = shares(0, 1, 2, until);
    assert_eq!((s[0].count, s[1].count, s[0].rate), (1, 0, 0.0));
    assert!(shares(0, 0, 2, until).iter().all(|s| s.count == u64::MAX));
    assert_eq!(shares(5, 5, 0, until).len(), 1, "at least one thread");
}

#[test]
fn auto_mode_takes_live_frames_when_the_kernel_has_them() {
    let yes = || Ok(true);
    let no = || Ok(false);
    let eperm = || Err(std::io::Error::from_raw_os_error(libc::EPERM));
    assert_eq!(choose_mode(TxMode::Auto, yes).unwrap().0, TxMode::Live);
    assert_eq!(choose_mode(TxMode::Auto, no).unwrap().0, TxMode::AfXdp);
    assert_eq!(choose_mode(TxMode::Auto, eperm).unwrap().0, TxMode::AfXdp);
    assert_eq!(choose_mode(TxMode::Live, yes).unwrap().0, TxMode::Live);
    let e = choose_mode(TxMode::Live, no).unwrap_err();
    assert!(e.contains("--mode live") && e.contains("5.18"), "{e}");
    assert!(choose_mode(TxMode::Live, eperm).is_err());
    // AF_XDP asked for: the kernel is not even asked.
    let (m, _) = choose_mode(TxMode::AfXdp, || panic!("asked")).unwrap();
    assert_eq!(m, TxMode::AfXdp);
}

/// The probe answers as the kernel version says.
#[test]
fn live_frame_probe_matches_the_kernel_version() {
    if crate::skip_reason().is_some() {
        eprintln!("skipped: needs root");
        return;
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release
        .split(['.', '-'])
        .filter_map(|n| n.parse::<u32>().ok());
    let (major, minor) = (v.next().unwrap(), v.next().unwrap());
    let expect = (major, minor) >= (5, 18);
    assert_eq!(bpf::live_frames_supported().unwrap(), expect, "{release}");
}
