#!/usr/bin/env bash
# The demo: builds stboot and stmgr, makes demo keys, signs a demo OS (Debian's
# kernel and a tiny initramfs), serves it over HTTPS on 127.0.0.1 with nginx, and
# boots QEMU with stboot as PID 1. The serial console is shown live, from firmware
# to the demo OS's marker line. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
W=$PWD/target/demo
rm -rf "$W"; mkdir -p "$W"
. integration-tests/lib.sh
build_all
make_testos
make_pki
mkdir -p "$W/www"
log "demo keys: $W/pki (root.pem, leaf1..3); signing the demo OS with leaf1 and leaf2"
"$STMGR" ospkg create -kernel "$KERNEL" -initramfs "$W/testos/initrd.gz" -label "stboot-rs demo OS" \
    -cmdline "console=ttyS0 panic=-1 demo=hello" -url demo-os.zip -out "$W/www/demo-os"
"$STMGR" ospkg sign -key "$W/pki/leaf1.key" -cert "$W/pki/leaf1.pem" -ospkg "$W/www/demo-os"
"$STMGR" ospkg sign -key "$W/pki/leaf2.key" -cert "$W/pki/leaf2.pem" -ospkg "$W/www/demo-os"
TP=$(make_trust_policy demo 2 network)
"$STMGR" ospkg verify -trustPolicy "$TP" -ospkg "$W/www/demo-os"
make_initramfs demo "$TP" '{"network_mode":"dhcp","ospkg_pointer":"https://10.0.2.2:8443/demo-os.json"}'
start_nginx 8443 tls-ca demo-nginx
trap 'stop_nginx demo-nginx' EXIT
log "booting QEMU (TCG, about 30 s); serial console follows"
: > "$W/demo.console"
APPEND="stboot.boot_attempts=1" boot_qemu demo &
qpid=$!
tail -n +1 -f --pid=$qpid "$W/demo.console"
wait $qpid || true
if grep -aq "TEST-OS-BOOTED" "$W/demo.console"; then
    log "the demo OS booted after stboot verified it"
else
    log "the demo OS did not boot: see $W/demo.console"; exit 1
fi
