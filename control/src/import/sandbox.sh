#!/bin/bash
# xgate import-iptables --run: runs inside `unshare --net --mount --pid`,
# so the script's iptables, ip and sysctl net.* calls change only a
# network namespace of its own, and whatever it starts ends with it.
#   sandbox.sh DIR SCRIPT [ARG...]
# DIR (on /dev/shm, made by xgate) holds shim (the logging iptables) and
# env.sh, and receives: log (one line per iptables-family command), rc
# (the script's exit status), v4 and v6 (what iptables-save and
# ip6tables-save print once the script has run), output (what the script
# printed, stdout and stderr).
set -eu
dir=$1
script=$2
shift 2
export XGATE_IMPORT_DIR=$dir

mount --make-rprivate /
# Every iptables, ip6tables, ebtables and arptables name is one of two
# multi-call binaries: both become the shim, which runs the real
# nf_tables one under its -nft name and logs the call. Loading kernel
# modules is system set-up, not a rule, and would reach the host's
# kernel: modprobe, insmod and rmmod only log and succeed. Both are laid
# over /usr/sbin (and so /sbin) by overlayfs, so they are found by any
# PATH and by absolute paths, whether or not the host has them.
real=$dir/xtables
: >"$real"
mount --bind /usr/sbin/xtables-nft-multi "$real"
mkdir -p "$dir/sbin"
for multi in xtables-nft-multi xtables-legacy-multi; do
    cp "$dir/shim" "$dir/sbin/$multi"
done
cat >"$dir/sbin/modprobe" <<'STUB'
#!/bin/bash
printf '0\t%s\t%s\t\t%s\n' "${XGATE_LINE:-0}" "${0##*/}" "$*" >>"$XGATE_IMPORT_DIR/log"
STUB
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

# The file system read-only but for the kernel's own (proc, sys, dev) and
# DIR; /tmp, /run and /var/tmp read as they are and written to a layer in
# DIR that goes when the run ends (read-only where overlayfs is missing).
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
ip link set lo up 2>/dev/null || true

set +e
# -u: a variable the script uses but nothing set (a file it sources that
# is not here, an argument not given) stops it, rather than running
# `-i "$LAN"` as `-i ""` (any interface). Its output goes to DIR/output.
BASH_ENV=$dir/env.sh bash -u "$script" "$@" </dev/null >"$dir/output" 2>&1
echo $? >"$dir/rc"
set -e
(exec -a iptables-nft-save "$real") >"$dir/v4"
(exec -a ip6tables-nft-save "$real") >"$dir/v6"
