#!/bin/bash
# xgate import-iptables --run: runs inside `unshare --net --mount --pid`,
# so the script's iptables, ip and sysctl net.* calls change only a
# network namespace of its own, and whatever it starts ends with it.
#   sandbox.sh DIR SCRIPT [ARG...]
# DIR (on /dev/shm, made by xgate) holds shim (the logging iptables) and
# env.sh, and receives: log (one line per iptables-family command), rc
# (the script's exit status), v4 and v6 (what iptables-save and
# ip6tables-save print once the script has run), tables (`nft list
# tables` then), output (what the script printed, stdout and stderr).
#
# This keeps a firewall script's effects off the machine (its ruleset,
# files, services); it is not a jail for a hostile script, which runs as
# root as it would on the gateway (without CAP_SYS_ADMIN, so it cannot
# undo the mounts or enter another namespace).
set -eu
dir=$1
script=$2
shift 2

mount --make-rprivate /
# The real binaries, read-only under DIR, before the shims cover them.
real=$dir/xtables
: >"$real"
mount --bind /usr/sbin/xtables-nft-multi "$real"
mount -o remount,bind,ro "$real"
if [ -e /usr/sbin/nft ]; then
    : >"$dir/nft-real"
    mount --bind /usr/sbin/nft "$dir/nft-real"
    mount -o remount,bind,ro "$dir/nft-real"
fi

# The file system read-only but for the kernel's own (proc, sys, dev, and
# so DIR); /tmp, /run and /var/tmp read as they are and written to a layer
# in DIR that goes when the run ends (read-only where overlayfs is
# missing).
while read -r _ _ _ _ mp _; do
    case "$mp" in
        /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;;
    esac
    mount -o remount,bind,ro "$mp" 2>/dev/null || true
done </proc/self/mountinfo
for d in /tmp /run /var/tmp; do
    if [ -d "$d" ]; then
        layer=$dir/layer${d//\//_}
        mkdir -p "$layer/up" "$layer/work"
        mount -t overlay overlay -o "lowerdir=$d,upperdir=$layer/up,workdir=$layer/work" "$d" \
            2>/dev/null || true
    fi
done
# A /dev/shm of its own: DIR moves to /run/xgate-import (in /run's layer)
# first, where the shims and the results stay reachable.
if mkdir -p /run/xgate-import 2>/dev/null && mount --rbind "$dir" /run/xgate-import; then
    dir=/run/xgate-import
    real=$dir/xtables
    mount -t tmpfs -o size=16m,mode=1777 tmpfs /dev/shm
fi
# sysfs of this network namespace (its devices, not the machine's);
# /proc/sys read-only but for net (per namespace).
mount -t sysfs sysfs /sys 2>/dev/null || true
mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
mount --bind /proc/sys/net /proc/sys/net 2>/dev/null || true
mount -o remount,bind,rw /proc/sys/net 2>/dev/null || true

# Every iptables, ip6tables, ebtables and arptables name is one of two
# multi-call binaries: both become the shim, which runs the real
# nf_tables one under its -nft name and logs the call. Loading kernel
# modules is system set-up, not a rule, and would reach the host's
# kernel: modprobe, insmod and rmmod only log and succeed. nft is logged
# too (its rules are not iptables-save's). All are laid over /usr/sbin
# (and so /sbin) by overlayfs, so they are found by any PATH and by
# absolute paths, whether or not the host has them. The shim knows DIR
# by heart: a script that clears its environment (env -i, sudo) is
# still logged.
mkdir -p "$dir/sbin"
sed "s|@DIR@|$dir|g" "$dir/shim" >"$dir/sbin/xtables-nft-multi"
for name in xtables-legacy-multi nft modprobe; do
    cp "$dir/sbin/xtables-nft-multi" "$dir/sbin/$name"
done
chmod 755 "$dir/sbin/"*
for m in insmod rmmod; do ln -s modprobe "$dir/sbin/$m"; done
if ! mount -t overlay overlay -o "lowerdir=$dir/sbin:/usr/sbin" /usr/sbin 2>/dev/null; then
    # No overlayfs: over what exists.
    for f in "$dir/sbin/"*; do
        if [ -e "/usr/sbin/${f##*/}" ]; then
            mount --bind "$f" "/usr/sbin/${f##*/}"
        fi
    done
fi
export PATH=$dir/sbin:$PATH
ip link set lo up 2>/dev/null || true
# The machine's interfaces as stand-ins (DIR/host-links, host-addrs: its
# `ip -o link` and `ip -o addr`): a script that reads them (`ip addr show
# eth0`, a loop over `ip -o link`) finds the same names, addresses and
# up/down state. The kernel may have no dummy devices: veth pairs, two
# machine names a pair (an odd one out gets a peer named xgate-peer).
if [ -r "$dir/host-links" ]; then
    names=()
    up=()
    while read -r _ name flags _; do
        name=${name%:}
        name=${name%%@*}
        [ "$name" = lo ] && continue
        names+=("$name")
        case "$flags" in *"<UP"* | *",UP"*) up+=("$name") ;; esac
    done <"$dir/host-links"
    for ((i = 0; i < ${#names[@]}; i += 2)); do
        peer=${names[i + 1]:-xgate-peer}
        ip link add "${names[i]}" type veth peer name "$peer" 2>/dev/null || true
    done
    for name in "${up[@]}"; do
        ip link set "$name" up 2>/dev/null || true
    done
fi
if [ -r "$dir/host-addrs" ]; then
    while read -r _ name family cidr _; do
        [ "$name" = lo ] && continue
        case "$family" in
            inet) ip addr add "$cidr" dev "$name" 2>/dev/null || true ;;
            inet6) ip addr add "$cidr" dev "$name" nodad 2>/dev/null || true ;;
        esac
    done <"$dir/host-addrs"
fi

set +e
# -u: a variable the script uses but nothing set (a file it sources that
# is not here, an argument not given) stops it, rather than running
# `-i "$LAN"` as `-i ""` (any interface). Its output goes to DIR/output.
# setpriv: no CAP_SYS_ADMIN (mounts, namespaces), SYS_MODULE, SYS_BOOT.
BASH_ENV=$dir/env.sh XGATE_IMPORT_DIR=$dir setpriv \
    --bounding-set=-sys_admin,-sys_module,-sys_boot,-sys_time \
    bash -u "$script" "$@" </dev/null >"$dir/output" 2>&1
echo $? >"$dir/rc"
set -e
(exec -a iptables-nft-save "$real") >"$dir/v4"
(exec -a ip6tables-nft-save "$real") >"$dir/v6"
if [ -e "$dir/nft-real" ]; then
    "$dir/nft-real" list tables >"$dir/tables"
fi
