#!/usr/bin/env bash
# A small OS to try stboot with, before your own: Debian's kernel (unpacked into
# target/kernel by scripts/setup.sh) and an initramfs whose init
# (integration-tests/testos-init.c) prints what stboot handed it (the PCRs, the event
# log, the boot report), then a line "TEST-OS-BOOTED cmdline=[...]", and powers off.
# The QEMU tests and scripts/demo.sh boot the same OS.
#
#   scripts/build-demo-os.sh DIR      writes DIR/vmlinuz and DIR/initrd.img
set -euo pipefail
[ $# = 1 ] || { echo "usage: build-demo-os.sh DIR" >&2; exit 2; }
mkdir -p "$1"
out=$(realpath "$1")
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
. "$(dirname "$0")/../integration-tests/lib.sh"
kernel_paths
command -v musl-gcc >/dev/null || { echo "build-demo-os: musl-gcc is missing: run scripts/setup.sh" >&2; exit 1; }
make_testos
cp "$KERNEL" "$out/vmlinuz"
cp "$W/testos/initrd.gz" "$out/initrd.img"
echo "build-demo-os: $out/vmlinuz ($(basename "$KERNEL")), $out/initrd.img"
