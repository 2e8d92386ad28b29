#!/usr/bin/env bash
# Whole-boot benchmark: seconds from QEMU's start to stboot's first console line, to
# kexec and to the booted OS's marker, for each way stboot can be started here:
#   debian     SeaBIOS, `-kernel` Debian's generic kernel, stboot initramfs beside it
#              (NIC driver loaded as a module)
#   linuxboot  SeaBIOS, `-kernel` the project's LinuxBoot kernel, initramfs embedded
#   ovmf       OVMF (UEFI), `-kernel` the LinuxBoot kernel through its EFI stub
#   uki        OVMF, the UKI (stmgr uki create) from an EFI system partition
#   coreboot   coreboot's q35 ROM with the LinuxBoot kernel as payload (only with
#              COREBOOT_DIR=path, see scripts/build-rom.sh)
# N runs each (default 3), one at a time; prints each run and a table of medians.
# Wall-clock times measured on the host (integration-tests/timed-console.py), so
# firmware and decompression count. QEMU runs under TCG here: compare the rows with
# each other, not with real hardware.
#
#   bash scripts/bench-boot.sh [N]      (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3}
bash scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
W=$PWD/target/bench
rm -rf "$W"; mkdir -p "$W"
. integration-tests/lib.sh
build_all; make_testos; make_pki
make_pkg good "console=ttyS0 panic=-1 testos=good" leaf1 leaf2 leaf3
TP=$(make_trust_policy bench 2 network)
HC='{"network_mode":"dhcp","ospkg_pointer":"https://10.0.2.2:8443/good.json"}'
make_initramfs debian "$TP" "$HC"
MODULES="" make_initramfs linuxboot "$TP" "$HC"
log "building the LinuxBoot kernel with the initramfs embedded"
embed_kernel linuxboot
PLAIN_KERNEL=$(bash scripts/build-kernel.sh 2>/dev/null)
"$STMGR" uki create -format uki -kernel "$PLAIN_KERNEL" -initramfs "$W/linuxboot.cpio.gz" \
    -cmdline "console=ttyS0 panic=-1 stboot.boot_attempts=1" -out "$W/bench" >/dev/null
make_esp "$W/bench.esp" "$W/bench.uki"
configs=(debian linuxboot ovmf uki)
if [ -n "${COREBOOT_DIR:-}" ]; then
    COREBOOT_ROM=$W/coreboot.rom
    ROM_CMDLINE="console=ttyS0 panic=-1 stboot.boot_attempts=1" bash scripts/build-rom.sh "$W/linuxboot.bzImage" "$COREBOOT_ROM" >/dev/null 2>&1
    configs+=(coreboot)
fi
start_nginx 8443 tls-ca bench-nginx
trap 'stop_nginx bench-nginx' EXIT
firmware() { # CONFIG: the QEMU arguments that differ
    case $1 in
        debian) echo "-kernel $KERNEL -initrd $W/debian.cpio.gz" ;;
        linuxboot) echo "-kernel $W/linuxboot.bzImage" ;;
        ovmf) cp /usr/share/OVMF/OVMF_VARS_4M.fd "$W/ovmf.vars"
              echo "$(ovmf_args "$W/ovmf.vars") -kernel $W/linuxboot.bzImage" ;;
        uki) cp /usr/share/OVMF/OVMF_VARS_4M.fd "$W/uki.vars"
             echo "$(ovmf_args "$W/uki.vars") -drive file=$W/bench.esp,format=raw,if=virtio" ;;
        coreboot) echo "-machine q35 -bios $COREBOOT_ROM" ;;
    esac
}
one() { # CONFIG RUN: prints the JSON of marks
    local tpm=$W/tpm-$1-$2
    mkdir -p "$tpm"
    swtpm socket --tpm2 --tpmstate dir="$tpm" --ctrl type=unixio,path="$tpm/sock" >/dev/null 2>&1 &
    for _ in $(seq 50); do [ -S "$tpm/sock" ] && break; sleep 0.1; done
    local append=(); case $1 in coreboot|uki) ;; *) append=(-append "console=ttyS0 panic=-1 stboot.boot_attempts=1") ;; esac
    # shellcheck disable=SC2046
    python3 integration-tests/timed-console.py --console "$W/$1-$2.console" --timeout 240 \
        --mark "stboot=stboot-rs" --mark "kexec=kexec_core: Starting new kernel" --mark "os=TEST-OS-BOOTED" -- \
        qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 1 -display none -monitor none -serial stdio -no-reboot \
        $(firmware "$1") "${append[@]}" -nic user,model=e1000 \
        -chardev socket,id=chrtpm,path="$tpm/sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0
}
for c in "${configs[@]}"; do
    for i in $(seq "$N"); do
        r=$(one "$c" "$i")
        echo "$c run $i: $r"
        echo "$c $r" >> "$W/results"
    done
done
python3 - "$W/results" "$N" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, js = line.split(" ", 1)
    rows.setdefault(name, []).append(json.loads(js))
print(f"\nmedians of {sys.argv[2]} runs, seconds from QEMU start (TCG):\n")
print("| firmware + kernel | stboot's first line | kexec | OS marker | runs reaching the OS |")
print("|---|---|---|---|---|")
for name, runs in rows.items():
    def med(k):
        v = [r[k] for r in runs if r[k] is not None]
        return f"{statistics.median(v):.1f}" if v else "-"
    ok = sum(r["os"] is not None for r in runs)
    print(f"| {name} | {med('stboot')} | {med('kexec')} | {med('os')} | {ok} of {len(runs)} |")
PY
