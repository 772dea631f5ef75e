#!/usr/bin/python3
"""Frame sender and watcher for tests/live_bridge.rs (the VLAN-aware bridge).

The kernel here has no 802.1Q devices, so the trunk's side of the test is
raw frames: this script sends frames built with scapy from one namespace's
device and reports every frame that arrives on the watched devices of
other namespaces (and the sender's own) after each one.

Request (one JSON object on stdin):
  {"watch": {"NAME": {"ns": NS, "dev": DEV}, ...},
   "from": NAME,                      # the watched device that sends
   "probes": [{"frame": "<scapy expression>", "wait_ms": 300}, ...]}
Answer (one JSON object on stdout), one entry per probe in order:
  {"seen": [{"NAME": [FRAME, ...], ...}, ...]}
  FRAME = {"src": MAC, "dst": MAC, "vlans": [outer, ..., inner],
           "what": "arp-request 10.10.0.3>10.10.0.2" | "arp-reply A>B"
                   | "icmp-8 A>B" (ICMP type) | "ipv4-17 A>B" (protocol)
                   | "0x86dd" (other ethertypes)}

A received frame's outer VLAN tag is not in the packet a packet socket
reads: the kernel moves it to the packet's metadata first (skb_vlan_untag)
and hands it over in PACKET_AUXDATA, so the tag is taken from there
(libpcap does the same). Frames the sockets' own devices transmit are
skipped. On an error the answer is {"error": "..."} and the exit status 1.
"""

import ctypes
import json
import os
import select
import socket
import struct
import sys
import time

from scapy.all import ARP, ICMP, IP, UDP, Dot1Q, Ether, Raw  # noqa: F401 (the expressions)

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 0x10
AUXDATA = struct.Struct("IIIHHHH")  # struct tpacket_auxdata
VLAN_TYPES = (0x8100, 0x88A8)
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def open_in(ns, dev):
    """An AF_PACKET socket on DEV, opened inside namespace NS (a socket
    stays in the namespace it was created in)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
    finally:
        os.close(fd)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((dev, 0))
    s.setblocking(False)
    return s


def mac(b):
    return ":".join(f"{x:02x}" for x in b)


def ip4(b):
    return socket.inet_ntoa(bytes(b))


def describe(data, outer_vlan):
    vlans = [] if outer_vlan is None else [outer_vlan]
    off, etype = 14, struct.unpack("!H", data[12:14])[0]
    while etype in VLAN_TYPES and len(data) >= off + 4:
        vlans.append(struct.unpack("!H", data[off : off + 2])[0] & 0xFFF)
        etype = struct.unpack("!H", data[off + 2 : off + 4])[0]
        off += 4
    p = data[off:]
    if etype == 0x0806 and len(p) >= 28:
        op = {1: "arp-request", 2: "arp-reply"}.get(p[7], f"arp-{p[7]}")
        what = f"{op} {ip4(p[14:18])}>{ip4(p[24:28])}"
    elif etype == 0x0800 and len(p) >= 20:
        ihl = (p[0] & 0xF) * 4
        kind = f"icmp-{p[ihl]}" if p[9] == 1 and len(p) > ihl else f"ipv4-{p[9]}"
        what = f"{kind} {ip4(p[12:16])}>{ip4(p[16:20])}"
    else:
        what = f"0x{etype:04x}"
    return {"src": mac(data[6:12]), "dst": mac(data[0:6]), "vlans": vlans, "what": what}


def receive(s):
    """Every frame waiting on S that its device received, described."""
    out = []
    while True:
        try:
            data, anc, _flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(AUXDATA.size))
        except BlockingIOError:
            return out
        if addr[2] == PACKET_OUTGOING or len(data) < 14:
            continue
        outer = None
        for level, kind, cdata in anc:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= AUXDATA.size:
                status, _len, _snap, _mac, _net, tci, _tpid = AUXDATA.unpack(cdata[: AUXDATA.size])
                if status & TP_STATUS_VLAN_VALID:
                    outer = tci & 0xFFF
        out.append(describe(data, outer))


def main():
    req = json.load(sys.stdin)
    socks = {name: open_in(w["ns"], w["dev"]) for name, w in req["watch"].items()}
    sender = socks[req["from"]]
    seen = []
    for probe in req["probes"]:
        for s in socks.values():
            receive(s)  # what came before this probe is not its answer
        sender.send(bytes(eval(probe["frame"])))  # noqa: S307 (the test's own expressions)
        got = {name: [] for name in socks}
        until = time.monotonic() + probe.get("wait_ms", 300) / 1000
        while (left := until - time.monotonic()) > 0:
            ready, _, _ = select.select(list(socks.values()), [], [], left)
            for name, s in socks.items():
                if s in ready:
                    got[name].extend(receive(s))
        seen.append(got)
    json.dump({"seen": seen}, sys.stdout)
    print()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 (reported to the test)
        json.dump({"error": f"{type(e).__name__}: {e}"}, sys.stdout)
        print()
        sys.exit(1)
