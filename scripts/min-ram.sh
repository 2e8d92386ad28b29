#!/usr/bin/env bash
# The smallest guest RAM (QEMU -m, in steps of 32 MiB) with which stboot still boots a
# 150 MiB incompressible OS package: downloads, verifies, stages and reaches kexec
# ("kexec_core: Starting new kernel" on the console). Bisects between 256 and 2048
# MiB, for the stboot of the working tree and for each git REF given (default: 0.1.0,
# the commit before CHANGELOG.md opened "Unreleased"), built at that ref as a static
# musl release binary and put into the same initramfs and LinuxBoot kernel. Prints
# each boot and a table. Takes 10-20 minutes under TCG.
#
#   bash scripts/min-ram.sh [REF...]      (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
W=$PWD/target/min-ram
rm -rf "$W"; mkdir -p "$W"
. integration-tests/lib.sh
build_all; make_testos; make_pki
make_big_pkg big 150
TP=$(make_trust_policy minram 2 network)
HC='{"network_mode":"dhcp","ospkg_pointer":"https://10.0.2.2:8443/big.json"}'
refs=("$@")
if [ ${#refs[@]} = 0 ]; then
    opened=$(git log --format=%H -S"## Unreleased" -- CHANGELOG.md | tail -1)
    refs=("$(git rev-parse --short "$opened~1")")
fi
builds=("worktree:$STBOOT")
for ref in "${refs[@]}"; do
    d=$W/src-$ref
    git worktree add --detach "$d" "$ref" >/dev/null 2>&1
    log "building stboot at $ref"
    (cd "$d" && cargo build --quiet --locked --release --target "$MUSL" --bin stboot 2>"$W/build-$ref.log") ||
        { cat "$W/build-$ref.log" >&2; exit 1; }
    bin=$(find "$d/target" -path '*x86_64-unknown-linux-musl/*/stboot' -type f | head -1)
    cp "$bin" "$W/stboot-$ref"
    git worktree remove --force "$d"
    builds+=("$ref:$W/stboot-$ref")
done
export MODULES=""
for b in "${builds[@]}"; do
    name=${b%%:*}
    STBOOT=${b#*:} make_initramfs "$name" "$TP" "$HC"
    embed_kernel "$name"
done
start_nginx 8443 tls-ca minram-nginx
trap 'stop_nginx minram-nginx' EXIT
boots() { # NAME MIB: 0 when stboot reached kexec
    # a boot ends at kexec (the random initramfs would hang the new kernel), a
    # failure with the reboot after the last attempt
    STOP_AT="kexec_core: Starting new kernel" QEMU_TIMEOUT=300 boot_qemu "$1" -m "$2"
    cp "$W/$1.console" "$W/$1-$2.console"
    grep -aq "kexec_core: Starting new kernel" "$W/$1.console"
}
results=()
for b in "${builds[@]}"; do
    name=${b%%:*}
    lo=256 hi=2048 # lo fails (assumed), hi boots (checked)
    boots "$name" $hi || { log "$name: does not boot even with $hi MiB"; results+=("$name: more than $hi MiB"); continue; }
    while [ $((hi - lo)) -gt 32 ]; do
        mid=$(((lo + hi) / 2 / 32 * 32))
        if boots "$name" $mid; then r=boots; hi=$mid; else r=fails; lo=$mid; fi
        log "$name -m $mid: $r ($(grep -aoE 'BOOT FAILED.*|Out of memory.*|No space left on device' "$W/$name-$mid.console" | head -1))"
    done
    results+=("$name ($(stat -c %s "${b#*:}") bytes): $hi MiB")
done
echo "smallest -m that boots a 150 MiB incompressible package ($(stat -c %s "$W/www/big.zip") byte archive):"
printf '  %s\n' "${results[@]}"
