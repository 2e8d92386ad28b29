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
#   bash scripts/bench-boot.sh [N]               (as root)
#   bash scripts/bench-boot.sh --kernel-o2 [N]   only `linuxboot`, and beside it
#       `linuxboot-o2`: the same kernel built with CONFIG_CC_OPTIMIZE_FOR_PERFORMANCE
#       (-O2) instead of tinyconfig's -Os, in target/linuxboot-o2 (about 6 min of CPU
#       the first time); prints both bzImages' sizes
set -euo pipefail
cd "$(dirname "$0")/.."
o2=
if [ "${1:-}" = --kernel-o2 ]; then o2=1; shift; fi
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
if [ -n "$o2" ]; then
    printf 'CONFIG_CC_OPTIMIZE_FOR_PERFORMANCE=y\n' > "$W/o2.config"
    cp "$W/linuxboot.cpio.gz" "$W/linuxboot-o2.cpio.gz"
    log "building the LinuxBoot kernel with -O2 (target/linuxboot-o2)"
    LINUXBOOT_DIR=$PWD/target/linuxboot-o2 KERNEL_EXTRA_CONFIG=$W/o2.config embed_kernel linuxboot-o2
    log "bzImage with the initramfs embedded: $(stat -c %s "$W/linuxboot.bzImage") bytes at -Os," \
        "$(stat -c %s "$W/linuxboot-o2.bzImage") bytes at -O2"
    configs=(linuxboot linuxboot-o2)
fi
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
        linuxboot|linuxboot-o2) echo "-kernel $W/$1.bzImage" ;;
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
python3 - "$W" "$N" <<'PY'
import json, re, statistics, sys
w = sys.argv[1]
rows = {}
for line in open(f"{w}/results"):
    name, js = line.split(" ", 1)
    r = json.loads(js)
    runs = rows.setdefault(name, [])
    # stboot's own timeline on the console: its kexec_file_load, and PID 1 -> kexec
    with open(f"{w}/{name}-{len(runs) + 1}.console", "rb") as f:
        m = re.search(rb"kexec_load (\d+) ms.*; (\d+) ms since stboot started", f.read())
    r["kexec_load"], r["pid1"] = (int(m[1]) / 1000, int(m[2]) / 1000) if m else (None, None)
    runs.append(r)
print(f"\nmedians of {sys.argv[2]} runs, seconds from QEMU start (TCG); the last two from stboot's Timeline line:\n")
print("| firmware + kernel | stboot's first line | kexec | OS marker | runs reaching the OS | kexec_file_load | PID 1 -> kexec |")
print("|---|---|---|---|---|---|---|")
for name, runs in rows.items():
    def med(k, fmt="{:.1f}"):
        v = [r[k] for r in runs if r[k] is not None]
        return fmt.format(statistics.median(v)) if v else "-"
    ok = sum(r["os"] is not None for r in runs)
    print(f"| {name} | {med('stboot')} | {med('kexec')} | {med('os')} | {ok} of {len(runs)} "
          f"| {med('kexec_load', '{:.2f}')} | {med('pid1', '{:.2f}')} |")
PY
