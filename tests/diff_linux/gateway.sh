#!/bin/sh
# A gateway script of the kind import-iptables reads only by running it
# (--run): variables, a function, loops, a start/stop case. diff_linux
# runs it in the Linux router (`bash -s start`) and gives xgate what
# `xgate import-iptables --run gateway.sh start` prints.
IPT=iptables
LAN=xdlr0
WAN=xdlr1
BLOCKED="10.2.0.66 10.2.0.77"

open_port() {
    $IPT -A FORWARD -i "$WAN" -o "$LAN" -p "$1" --dport "$2" \
        -m conntrack --ctstate NEW -j ACCEPT
}

case "$1" in
start)
    $IPT -P FORWARD DROP
    $IPT -N BLOCKED
    for host in $BLOCKED; do
        $IPT -A BLOCKED -s "$host" -j DROP
    done
    $IPT -A FORWARD -j BLOCKED
    $IPT -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    $IPT -A FORWARD -i "$LAN" -o "$WAN" -j ACCEPT
    for port in 22 80; do
        open_port tcp "$port"
    done
    open_port udp 53
    $IPT -t nat -A POSTROUTING -o "$WAN" -j MASQUERADE
    ;;
stop)
    $IPT -P FORWARD ACCEPT
    $IPT -F
    $IPT -t nat -F
    ;;
esac
