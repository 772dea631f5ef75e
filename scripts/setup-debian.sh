#!/usr/bin/env bash
# Installs what building and testing xgate needs on a fresh Debian 12 machine
# (run as root). Safe to run again: it installs only what is missing.
set -euo pipefail

# Debian packages the build and the tests use. Keep this list the single
# place where system packages are named.
PACKAGES=(
    build-essential pkg-config   # cc for crates with C parts
    iproute2 ethtool             # netns/veth test topologies
    libelf-dev clang m4 llvm     # libxdp/libbpf (vendored by xsk-rs), xgate's offload XDP program (dataplane/build.rs)
    linux-libc-dev               # the kernel UAPI headers the offload program includes
    libpcap-dev zlib1g-dev       # xdp-tools' configure insists on pcap; libbpf needs zlib
    python3 python3-prometheus-client  # the metrics test checks the exposition with the reference parser
    dnsmasq-base busybox         # live DHCP test: dnsmasq on the LAN tap, busybox's udhcpc as the client
    bird2                        # live_mirror: BIRD on the WAN tap peers with a BIRD that announces prefixes
    iptables                     # live_families: the same rules through the kernel (iptables-nft) and xgate
    vsftpd lftp curl             # live_ftp: a real FTP server and clients through the FTP helper
    tftpd-hpa tftp-hpa           # live_ftp: TFTP through the TFTP helper
    nftables python3-scapy       # diff_linux: nft -f for the Linux router, scapy for the probes
    ipset                        # diff_linux: the ipsets of -m set in the Linux router
    iputils-ping                 # live_nft: ping through the kernel and through xgate
)

# Only for the forwarding benchmark (testbed/bench sets XGATE_BENCH=1):
# the peers it compares with and the chart. Not needed by the tests.
if [ "${XGATE_BENCH:-0}" = 1 ]; then
    PACKAGES+=(
        nftables                                  # kernel + conntrack + masquerade case
        dpdk dpdk-dev librte-net-af-xdp23         # dpdk-testpmd with the af_xdp PMD
        python3-matplotlib                        # docs/bench-forwarding.png
    )
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "setup: cargo not found: install a Rust toolchain (rustup) first" >&2
        exit 1
    fi
fi
