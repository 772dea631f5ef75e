#!/bin/bash
# The iptables of xgate import-iptables --run's sandbox (sandbox.sh): runs
# the real nf_tables binary under the name it was called by and logs the
# call to $XGATE_IMPORT_DIR/log as
#   status <TAB> script line <TAB> command <TAB> its error <TAB> arguments
name=${0##*/}
name=${name/-legacy/}
name=${name/-nft/}
case $name in
    *-*) real_name=${name%%-*}-nft-${name#*-} ;;
    *) real_name=$name-nft ;;
esac
dir=$XGATE_IMPORT_DIR
case $name in
    *-save | *-translate) exec -a "$real_name" "$dir/xtables" "$@" ;;
esac
err=$dir/err.$$
(exec -a "$real_name" "$dir/xtables" "$@") 2>"$err"
rc=$?
cat "$err" >&2
msg=$(head -c 300 "$err" | tr '\t\n' '  ')
rm -f "$err"
args=$(printf '%q ' "$@")
printf '%s\t%s\t%s\t%s\t%s\n' "$rc" "${XGATE_LINE:-0}" "$name" "$msg" "${args% }" >>"$dir/log"
exit "$rc"
