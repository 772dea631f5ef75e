#!/bin/bash
# The iptables (and nft, modprobe) of xgate import-iptables --run's sandbox
# (sandbox.sh writes DIR in): runs the real binary under the name it was
# called by and logs the call to DIR/log as
#   status <TAB> script line <TAB> command <TAB> its error <TAB> arguments
# (arguments quoted with printf %q, the error cut to printable ASCII: no
# tab, newline or raw byte). If the log cannot be written the script is
# stopped: a command that went unrecorded could be a rule gone missing.
dir=@DIR@
name=${0##*/}
log() {
    local args msg
    args=$(printf '%q ' "$@")
    msg=$(head -c 300 "$err" 2>/dev/null | tr '\t\n' '  ' | LC_ALL=C tr -cd '\040-\176')
    if ! printf '%s\t%s\t%s\t%s\t%s\n' "$rc" "${XGATE_LINE:-0}" "$name" "$msg" "${args% }" \
        >>"$dir/log"; then
        echo "xgate import sandbox: cannot log $name; stopping the script" >&2
        kill -TERM 0
        exit 125
    fi
}
err=$dir/err.$$
case $name in
    modprobe | insmod | rmmod)
        rc=0
        log "$@"
        exit 0
        ;;
    nft)
        run() { "$dir/nft-real" "$@"; }
        ;;
    *)
        name=${name/-legacy/}
        name=${name/-nft/}
        case $name in
            *-*) real_name=${name%%-*}-nft-${name#*-} ;;
            *) real_name=$name-nft ;;
        esac
        case $name in
            *-save | *-translate) exec -a "$real_name" "$dir/xtables" "$@" ;;
        esac
        run() { (exec -a "$real_name" "$dir/xtables" "$@"); }
        ;;
esac
run "$@" 2>"$err"
rc=$?
cat "$err" >&2
log "$@"
rm -f "$err"
exit "$rc"
