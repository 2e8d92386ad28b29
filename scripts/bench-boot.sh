#!/usr/bin/env bash
# Boot-time benchmark: boots the dhcp-good scenario N times (default 3) and reports,
# from the serial console's kernel timestamps, the time from PID 1's first line to
# `kexec_core: Starting new kernel`, and stboot's own per-step timeline.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3}
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
W=$PWD/target/bench
rm -rf "$W"; mkdir -p "$W"
. integration-tests/lib.sh
build_all; make_testos; make_pki
make_pkg good "console=ttyS0 panic=-1 testos=good" leaf1 leaf2 leaf3
TP=$(make_trust_policy bench 2 network)
make_initramfs bench "$TP" '{"network_mode":"dhcp","ospkg_pointer":"https://10.0.2.2:8443/good.json"}'
start_nginx 8443 tls-ca bench-nginx
trap 'stop_nginx bench-nginx' EXIT
ts() { grep -a "$1" "$2" | head -1 | sed -n 's/^.*\[ *\([0-9]*\.[0-9]*\)\].*/\1/p'; }
for i in $(seq "$N"); do
    cp "$W/bench.cpio.gz" "$W/run$i.cpio.gz"
    boot_qemu "run$i"
    c=$W/run$i.console
    start=$(ts "stboot-rs .* starting" "$c"); kexec=$(ts "kexec_core: Starting new kernel" "$c")
    if [ -z "$start" ] || [ -z "$kexec" ]; then echo "run $i: did not reach kexec (see $c)"; continue; fi
    printf 'run %s: PID 1 start %ss, kexec %ss: %.2f s from PID 1 to kexec\n' "$i" "$start" "$kexec" "$(awk "BEGIN{print $kexec - $start}")"
    grep -a "Timeline:" "$c" | sed 's/^.*Timeline:/    timeline:/'
done
