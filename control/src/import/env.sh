# BASH_ENV of the script xgate import-iptables --run runs: before each
# command, the line it is on goes into XGATE_LINE, which the iptables shim
# logs. Only the script itself (not the shells it starts) keeps the trap.
unset BASH_ENV
set -T
trap 'export XGATE_LINE=$LINENO' DEBUG
