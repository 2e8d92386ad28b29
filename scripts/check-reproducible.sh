#!/usr/bin/env bash
# Shows that the firmware payload builds reproducibly: the stboot binary, the stboot
# initramfs and the LinuxBoot kernel with that initramfs embedded are built twice,
# once here and once from a clone of HEAD in another directory with another
# CARGO_HOME and another kernel source tree, and must be byte for byte the same.
#
#   bash scripts/check-reproducible.sh      (as root on Debian 12; about 10 min of CPU)
#
# The expensive half, the second place (its kernel objects and its stboot), can be
# made ahead: scripts/test.sh runs `check-reproducible.sh --prepare DIR` at idle
# priority while the other phases run, and then `check-reproducible.sh
# --second-place DIR`, which builds only what is cheap (this place's side, the
# initramfs images, two kernel relinks) and compares.
#
# The second build uses only committed files: with uncommitted changes, run it after
# committing. Prints the SHA-256 of each artefact next to its twin.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
log() { printf 'reproducible: %s\n' "$*" >&2; }
usage() { echo "usage: check-reproducible.sh [--prepare DIR | --second-place DIR]" >&2; exit 2; }

mode=check other=
case "${1:-}" in
    "") ;;
    --prepare) mode=prepare; other=${2:-}; [ -n "$other" ] || usage ;;
    --second-place) mode=compare; other=${2:-}; [ -n "$other" ] || usage ;;
    *) usage ;;
esac
# absolute: the kernel build and cargo run in other directories
[ -z "$other" ] || other=$(realpath -m "$other")

if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
    log "the checkout has uncommitted changes; the second build sees only HEAD, so they may differ for that reason"
fi

# prepare DIR: the second place, a longer, different path: a clone of HEAD, its own
# CARGO_HOME (the crates are copied from the first, so nothing is downloaded) and its
# own kernel tree; its kernel objects and its stboot are built there. The kernel
# builds in the background meanwhile (it needs no stboot; the serial tail of the
# stboot build leaves a core free), so the kernel with the initramfs embedded is
# then a relink there, as it is here.
kpid=
prepare() {
    local other=$1
    rm -rf "$other"
    mkdir -p "$other/cargo-home/registry"
    git clone -q "$root" "$other/checkout/stboot-rs"
    (cd "$root" && cargo fetch --quiet --locked)
    cp -r "${CARGO_HOME:-$HOME/.cargo}/registry/index" "${CARGO_HOME:-$HOME/.cargo}/registry/cache" "$other/cargo-home/registry/"
    log "the LinuxBoot kernel's objects, in $other/linuxboot (in the background; about 6 min of CPU)"
    LINUXBOOT_DIR=$other/linuxboot bash "$other/checkout/stboot-rs/scripts/build-kernel.sh" >/dev/null 2>"$other/kernel.log" &
    kpid=$!
    log "stboot, in $other/checkout/stboot-rs with CARGO_HOME=$other/cargo-home"
    CARGO_HOME=$other/cargo-home bash "$other/checkout/stboot-rs/scripts/build-stboot.sh" > "$other/stboot.path"
    wait "$kpid" || { cat "$other/kernel.log" >&2; log "building the kernel in $other/linuxboot failed"; exit 1; }
    kpid=
    git -C "$other/checkout/stboot-rs" rev-parse HEAD > "$other/ready"
}

case $mode in
    prepare)
        trap '[ -n "$kpid" ] && kill "$kpid" 2>/dev/null' EXIT
        prepare "$other"
        log "the second place is ready in $other"
        exit 0 ;;
    check)
        other=$(mktemp -d /tmp/stboot-reproducible-second-place.XXXXXX)
        trap '[ -n "$kpid" ] && kill "$kpid" 2>/dev/null; rm -rf "$other"' EXIT
        prepare "$other" ;;
esac
[ "$(cat "$other/ready" 2>/dev/null)" = "$(git -C "$root" rev-parse HEAD)" ] ||
    { log "$other is not a second place prepared from HEAD (run check-reproducible.sh --prepare $other)"; exit 1; }
b_stboot=$(cat "$other/stboot.path")
log "stboot (and stmgr), here"
built=$(bash "$root/scripts/build-stboot.sh" --with-stmgr)
a_stboot=$(sed -n 1p <<< "$built") stmgr=$(sed -n 2p <<< "$built")

# the initramfs: the same inputs, given from different directories
for side in a b; do
    d=$other/initramfs-$side/some/where/$side
    mkdir -p "$d/tp"
    printf '{"ospkg_signature_threshold": 1, "ospkg_fetch_method": "network"}\n' > "$d/tp/trust_policy.json"
    cp "$root/integration-tests/reproducible/root.pem" "$d/tp/ospkg_signing_root.pem"
    cp "$root/integration-tests/reproducible/root.pem" "$d/tp/tls_roots.pem"
    printf '{"network_mode":"dhcp","ospkg_pointer":"https://10.0.2.2:8443/os.json"}\n' > "$d/host.json"
    s=$a_stboot; [ $side = b ] && s=$b_stboot
    (cd "$d" && "$stmgr" initramfs build -stboot "$s" -trustPolicy tp -hostConfig host.json -out stboot.cpio.gz >/dev/null)
done
a_initramfs=$other/initramfs-a/some/where/a/stboot.cpio.gz
b_initramfs=$other/initramfs-b/some/where/b/stboot.cpio.gz

log "the LinuxBoot kernel with the initramfs embedded, here"
a_kernel=$(bash "$root/scripts/build-kernel.sh" "$a_initramfs" 2>/dev/null)
log "the LinuxBoot kernel with the initramfs embedded, from the kernel tree in $other/linuxboot"
b_kernel=$(LINUXBOOT_DIR=$other/linuxboot bash "$other/checkout/stboot-rs/scripts/build-kernel.sh" "$b_initramfs" 2>/dev/null)

fail=0
compare() {
    local what=$1 a=$2 b=$3 ha hb
    ha=$(sha256sum < "$a" | cut -c1-64); hb=$(sha256sum < "$b" | cut -c1-64)
    if [ "$ha" = "$hb" ]; then
        printf 'same      %-10s %s (%s bytes)\n' "$what" "$ha" "$(stat -c %s "$a")"
    else
        printf 'DIFFERENT %-10s %s %s\n          %-10s %s %s\n' "$what" "$ha" "$a" "" "$hb" "$b"
        fail=1
    fi
}
compare stboot "$a_stboot" "$b_stboot"
compare initramfs "$a_initramfs" "$b_initramfs"
compare kernel "$a_kernel" "$b_kernel"
rustc --version
[ $fail = 0 ] || { log "the builds differ: see docs/design.md, 'Reproducible builds', for what each build pins"; exit 1; }
echo "reproducible: stboot, initramfs and kernel are the same bytes from both places"
