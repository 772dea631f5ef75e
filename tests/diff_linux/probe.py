#!/usr/bin/python3
"""Probe sender and observer for tests/diff_linux.rs.

Started once per test run (scapy's import is slow); reads one JSON request
per line on stdin and answers one JSON line on stdout. A request names the
client and server namespaces of one scenario, their devices and MACs, and
a list of probes; the answer is one observation string per probe.

The sockets are AF_PACKET sockets opened inside each namespace (setns on
this thread, the socket stays in the namespace it was opened in), so one
process sends and watches on both sides. The endpoint kernels are told by
the harness to drop every IP packet they receive (raw PREROUTING DROP), so
nothing but the router answers; replies (SYN-ACK, echo reply, ICMP errors
from the far host) are crafted here from the packet as it arrived, which
makes them follow whatever NAT the router applied.

A probe:
  {"from": "c"|"s", "pkt": "<scapy expression giving a packet or a list>",
   "eth_dst": optional MAC (default: the router's port)}
  {"from": "c"|"s", "reply_to": k, "kind": "SA"|"A"|"R"|"echo"|"udp"|"unreach"}
     the reply to what probe k delivered (its last arrival), sent back from
     the side it arrived at ("from" is that side).
  Optional "norm": "ports" replaces a source port the router rewrote
  by "*" (Linux picks a clash's new port at random).

An observation: "far=[...] back=[...]", the IPv4 packets the other side
received (in arrival order) and the sender's side received (sorted), until
the router has answered an ARP request sent after the probe, plus 20 ms.
"""

import ctypes
import json
import os
import select
import socket
import sys
import time

from scapy.all import ARP, Ether, IP, IPOption_RR, TCP, UDP, ICMP, Raw, fragment  # noqa: F401
from scapy.layers.inet import IPerror, TCPerror, UDPerror, ICMPerror  # noqa: F401

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def open_in(ns, dev):
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
    finally:
        os.close(fd)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((dev, 0))
    s.setblocking(False)
    return s


def drain(sock):
    while True:
        try:
            sock.recvfrom(65535)
        except BlockingIOError:
            return


def describe_l4(ip, inner=False):
    """Protocol, ports and the fields a firewall or NAT may change."""
    p = ip.payload
    if ip.frag > 0 or (ip.flags.MF and not inner):
        extra = f" frag={ip.frag * 8}{'+' if ip.flags.MF else ''}"
    else:
        extra = ""
    if ip.frag > 0:
        return f"proto{ip.proto} {ip.src}>{ip.dst}{extra}"
    if isinstance(p, (TCP, TCPerror)):
        s = f"TCP {ip.src}:{p.sport}>{ip.dst}:{p.dport}"
        if not inner:
            s += f" {p.flags} seq={p.seq} ack={p.ack}"
    elif isinstance(p, (UDP, UDPerror)):
        s = f"UDP {ip.src}:{p.sport}>{ip.dst}:{p.dport}"
    elif isinstance(p, (ICMP, ICMPerror)):
        s = f"ICMP {ip.src}>{ip.dst} {p.type}/{p.code}"
        if p.type in (0, 8):
            s += f" id={p.id} seq={p.seq}"
        elif not inner and p.type in (3, 4, 5, 11, 12):
            if p.type == 5:
                s += f" gw={p.gw}"
            q = p.payload
            if isinstance(q, IPerror):
                s += f" ({describe_l4(q, inner=True)})"
    else:
        s = f"proto{ip.proto} {ip.src}>{ip.dst}"
    return s + extra


def describe(frame, own_mac):
    e = Ether(frame)
    if not isinstance(e.payload, IP):
        return None
    ip = e[IP]
    s = f"{describe_l4(ip)} ttl={ip.ttl} len={ip.len}"
    if ip.tos:
        s += f" tos={ip.tos:#x}"
    if ip.ihl > 5:
        s += f" options={bytes(ip)[20 : ip.ihl * 4].hex()}"
    if e.dst.lower() != own_mac.lower():
        s += f" l2dst={e.dst}"
    return s, ip


def is_barrier_answer(frame, router):
    e = Ether(frame)
    return isinstance(e.payload, ARP) and e[ARP].op == 2 and e[ARP].psrc == router


def build_reply(arrived, kind):
    """The far host's answer to `arrived` (an IP packet as it was received)."""
    ip = IP(src=arrived.dst, dst=arrived.src)
    p = arrived.payload
    if kind == "unreach":
        return ip / ICMP(type=3, code=3) / bytes(arrived)[: arrived.ihl * 4 + 8]
    if isinstance(p, TCP):
        if kind == "SA":
            return ip / TCP(sport=p.dport, dport=p.sport, flags="SA", seq=5000, ack=p.seq + 1)
        if kind == "R":
            return ip / TCP(sport=p.dport, dport=p.sport, flags="RA", seq=0, ack=p.seq + 1)
        plen = len(p.payload) + (1 if "S" in p.flags or "F" in p.flags else 0)
        return ip / TCP(sport=p.dport, dport=p.sport, flags="A", seq=p.ack, ack=p.seq + plen)
    if isinstance(p, UDP):
        return ip / UDP(sport=p.dport, dport=p.sport) / Raw(b"reply")
    if isinstance(p, ICMP) and p.type == 8:
        return ip / ICMP(type=0, id=p.id, seq=p.seq) / p.payload
    return None


def run(req):
    socks = {
        "c": open_in(req["client_ns"], req["client_dev"]),
        "s": open_in(req["server_ns"], req["server_dev"]),
    }
    own = {"c": req["client_mac"], "s": req["server_mac"]}
    gw = {"c": req["router_client_mac"], "s": req["router_server_mac"]}
    other = {"c": "s", "s": "c"}
    # Let the router learn both sides' addresses before the probes (an ARP
    # request for its address, from every address a probe uses), so no
    # probe waits for address resolution.
    for side, addrs in (("c", req["client_addrs"]), ("s", req["server_addrs"])):
        for a in addrs:
            arp = Ether(src=own[side], dst="ff:ff:ff:ff:ff:ff") / ARP(
                op=1, hwsrc=own[side], psrc=a, pdst=req["router_addr"][side]
            )
            socks[side].send(bytes(arp))
    time.sleep(0.15)
    for s in socks.values():
        drain(s)

    addrs = {"c": req["client_addrs"][0], "s": req["server_addrs"][0]}
    arrivals = {}
    out = []
    for i, pr in enumerate(req["probes"]):
        side = pr["from"]
        if "reply_to" in pr:
            got = arrivals.get(pr["reply_to"])
            pkt = build_reply(got, pr["kind"]) if got is not None else None
            if pkt is None:
                out.append("(nothing to reply to)")
                continue
            pkts = [pkt]
        else:
            pkts = eval(pr["pkt"])  # the test's own probe text
            if not isinstance(pkts, list):
                pkts = [pkts]
        sent_sports = set()
        for p in pkts:
            for layer in (TCP, UDP):
                if p.haslayer(layer):
                    sent_sports.add(p[layer].sport)
            dst = pr.get("eth_dst", gw[side])
            if isinstance(p, Ether):  # a probe with its own Ethernet header
                if "dst" not in p.fields:
                    p.dst = dst
                socks[side].send(bytes(p))
            else:
                socks[side].send(bytes(Ether(src=own[side], dst=dst) / p))
        # The barrier: an ARP request to the router, sent after the probe on
        # the same port. The router handles its port's frames in order, so
        # once the answer is back, the probe has been forwarded, dropped or
        # answered; a short grace covers frames still on their way to the
        # other side. Without an answer, the wait ends after a second.
        barrier = Ether(src=own[side], dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=1, hwsrc=own[side], psrc=addrs[side], pdst=req["router_addr"][side]
        )
        socks[side].send(bytes(barrier))
        deadline = time.monotonic() + 1.0
        grace = req.get("grace_ms", 20) / 1000
        seen = {"far": [], "back": []}
        where = {socks[other[side]]: ("far", other[side]), socks[side]: ("back", side)}
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select(list(where), [], [], left)
            for s in r:
                while True:
                    try:
                        data, addr = s.recvfrom(65535)
                    except BlockingIOError:
                        break
                    if addr[2] == PACKET_OUTGOING:
                        continue
                    key, sd = where[s]
                    if sd == side and is_barrier_answer(data, req["router_addr"][side]):
                        deadline = min(deadline, time.monotonic() + grace)
                        continue
                    d = describe(data, own[sd])
                    if d is None:
                        continue
                    text, ip = d
                    if pr.get("norm") == "ports" and key == "far":
                        l4 = ip.payload
                        if isinstance(l4, (TCP, UDP)) and l4.sport not in sent_sports:
                            text = text.replace(f":{l4.sport}>", ":*>")
                    seen[key].append(text)
                    if key == "far":
                        arrivals[i] = ip
        # What comes back may come in either order (Linux sends a redirect
        # before it forwards); what arrives far keeps its order (fragments).
        back = sorted(seen["back"])
        out.append(f"far=[{'; '.join(seen['far'])}] back=[{'; '.join(back)}]")
    for s in socks.values():
        s.close()
    return out


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            ans = {"ok": run(json.loads(line))}
        except Exception as e:  # report, keep serving
            import traceback

            ans = {"error": f"{e!r}\n{traceback.format_exc()}"}
        sys.stdout.write(json.dumps(ans) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
