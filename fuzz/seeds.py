#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into DIR/<target>/ from the
project's own material: the captures in ../shared/data/pcaps, frames built
here for the fuzzed gateway's addresses, the example configs, and ctl
requests. Seeds are data; the fuzzers grow their corpora from them."""

import os
import pathlib
import re
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz/seeds")


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def pcap_frames(path):
    b = path.read_bytes()
    magic = struct.unpack("<I", b[:4])[0]
    end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off = 24
    while off + 16 <= len(b):
        _, _, incl, _ = struct.unpack(end + "IIII", b[off:off + 16])
        off += 16
        yield b[off:off + incl]
        off += incl


def record(frame, port=0, fix=False, step=0):
    flags = (port & 3) | (4 if fix else 0) | ((step & 31) << 3)
    frame = frame[:65535]
    return bytes([flags]) + struct.pack("<H", len(frame)) + frame


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ttl=64):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000, ttl,
                    proto, 0, bytes(src), bytes(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def eth(dst, src, ty, body, vlan=None):
    tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
    return bytes(dst) + bytes(src) + tag + struct.pack("!H", ty) + body


ROUTER_WAN = [2, 0, 0, 0, 0, 1]
ROUTER_LAN = [2, 0, 0, 0, 0, 2]
ROUTER_GUEST = [2, 0, 0, 0, 0, 3]
HOST = [2, 0xCC, 0, 0, 0, 0x10]
GW = [2, 0xBB, 0, 0, 0, 1]


def tcp(sport, dport, flags=0x02):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 65535, 0, 0)


def udp(sport, dport, body=b"x" * 8):
    return struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body


def main():
    n = 0
    for p in sorted((ROOT.parent / "shared" / "data" / "pcaps").glob("*.pcap")):
        frames = list(pcap_frames(p))
        for i in range(0, len(frames), 16):
            chunk = b"".join(record(f, port=j % 2, fix=(j % 3 == 0), step=j % 4)
                             for j, f in enumerate(frames[i:i + 16]))
            write("pipeline", f"{p.stem}-{i:05}", chunk)
            n += 1
        # The packet target takes one frame; the pcap target whole files,
        # cut to the first frames (and a copy with a microsecond field of
        # 1,000,000, as scapy writes it).
        for i, f in enumerate(frames[:64]):
            write("packet", f"{p.stem}-{i:03}", f)
        b = p.read_bytes()
        off = 24
        for _ in range(8):
            if off + 16 > len(b):
                break
            off += 16 + struct.unpack("<I" if b[:4] == b"\xd4\xc3\xb2\xa1" else ">I", b[off + 8:off + 12])[0]
        write("pcap", p.stem, b[:off])
        if b[:4] == b"\xd4\xc3\xb2\xa1" and off > 40:
            scapy = bytearray(b[:off])
            scapy[28:32] = struct.pack("<I", 1_000_000)
            write("pcap", f"{p.stem}-usec-1000000", bytes(scapy))
    lan, wan = [192, 168, 1, 10], [198, 51, 100, 7]
    conv = [
        # LAN -> WAN SYN, the WAN's SYN-ACK to the masqueraded port, data.
        record(eth(ROUTER_LAN, HOST, 0x0800, ipv4(lan, wan, 6, tcp(40000, 443))), 1, True),
        record(eth(ROUTER_WAN, GW, 0x0800, ipv4(wan, [203, 0, 113, 2], 6, tcp(443, 40000, 0x12))), 0, True, 1),
        record(eth(ROUTER_LAN, HOST, 0x0800, ipv4(lan, wan, 6, tcp(40000, 443, 0x10))), 1, True, 1),
        # Port forward, UDP, ICMP echo to the router, a guest on VLAN 20.
        record(eth(ROUTER_WAN, GW, 0x0800, ipv4(wan, [203, 0, 113, 2], 6, tcp(5555, 8080))), 0, True),
        record(eth(ROUTER_LAN, HOST, 0x0800, ipv4(lan, wan, 17, udp(5000, 53))), 1, True),
        record(eth(ROUTER_LAN, HOST, 0x0800, ipv4(lan, [192, 168, 1, 1], 1, b"\x08\x00\x00\x00\x00\x01\x00\x01" + b"p" * 16)), 1, True),
        record(eth(ROUTER_GUEST, HOST, 0x0800, ipv4([10, 20, 0, 5], wan, 17, udp(6000, 500)), vlan=20), 2, True),
        record(eth(ROUTER_LAN, HOST, 0x0800, ipv4(lan, wan, 17, udp(5001, 9), ttl=1)), 1, True),
        # ARP request for the LAN address.
        record(eth([0xFF] * 6, HOST, 0x0806, struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1,
               bytes(HOST), bytes(lan), b"\0" * 6, bytes([192, 168, 1, 1]))), 1),
    ]
    write("pipeline", "conversation", b"".join(conv))
    # The bridge: ports b1 (eth3, port 3, VLAN 30 tagged) and b2 (eth2's
    # untagged side, port 2, pvid 30). Hosts learn each other by ARP, then
    # a bridged TCP SYN (FORWARD, physdev) and an unknown unicast flood.
    h1, h2 = [2, 0xDD, 0, 0, 0, 1], [2, 0xDD, 0, 0, 0, 2]
    a1, a2 = [10, 30, 0, 5], [10, 30, 0, 6]
    arp = lambda src, spa, tpa: struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1,
                                            bytes(src), bytes(spa), b"\0" * 6, bytes(tpa))
    bridged = [
        record(eth([0xFF] * 6, h1, 0x0806, arp(h1, a1, a2), vlan=30), 3),
        record(eth([0xFF] * 6, h2, 0x0806, arp(h2, a2, a1)), 2),
        record(eth(h2, h1, 0x0800, ipv4(a1, a2, 6, tcp(40000, 23)), vlan=30), 3, True),
        record(eth(h1, h2, 0x0800, ipv4(a2, a1, 6, tcp(40001, 80))), 2, True),
        record(eth([2, 0xDD, 0, 0, 0, 9], h1, 0x0800, ipv4(a1, [10, 30, 0, 9], 17, udp(1, 2)), vlan=30), 3, True),
        record(eth([0xFF] * 6, h1, 0x0806, arp(h1, a1, [10, 30, 0, 1]), vlan=30), 3),
        record(eth(ROUTER_GUEST, h2, 0x0800, ipv4(a2, wan, 17, udp(7000, 53))), 2, True),
    ]
    write("pipeline", "bridge", b"".join(bridged))
    for i, r in enumerate(conv + bridged):
        write("pipeline", f"single-{i}", r)
        write("packet", f"built-{i}", r[3:])

    for cfg in sorted((ROOT / "examples").glob("*.toml")):
        text = cfg.read_text()
        write("config", cfg.stem, text.encode())
        m = re.search(r'rules\s*=\s*"""\n(.*?)"""', text, re.S)
        if m:
            write("iptables", cfg.stem, m.group(1).encode())
    write("iptables", "script",
          b"IPT=/sbin/iptables\n$IPT -P FORWARD DROP\n$IPT -t nat -A POSTROUTING -o eth0 -j MASQUERADE\n"
          b"iptables \\\n -A FORWARD -i eth1 -o eth0 \\\n -m conntrack --ctstate NEW -j ACCEPT\n"
          b"echo 1 > /proc/sys/net/ipv4/ip_forward\n")
    # The nft corpus (real rulesets) and the nft text of the examples.
    for f in sorted((ROOT / "control" / "tests" / "corpus" / "nft").glob("*.nft")):
        write("nft", f.stem, f.read_bytes())
    for i, req in enumerate([
        '{"version":1,"command":"stats"}',
        '{"version":1,"command":"conntrack"}',
        '{"version":1,"command":"routes"}',
        '{"version":1,"command":"route_get","dst":"8.8.8.8"}',
        '{"version":1,"command":"route_add","route":["10.9.0.0/16","via","192.168.1.20"]}',
        '{"version":1,"command":"rules"}',
        '{"version":1,"command":"neigh"}',
        '{"version":2,"command":"stats"}',
    ]):
        write("ctl_request", f"req-{i}", req.encode())
    print(f"seeds: {n} capture chunks and the synthetic ones in {OUT}")


main()
