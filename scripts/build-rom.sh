#!/usr/bin/env bash
# A coreboot ROM whose payload is the LinuxBoot kernel with stboot inside.
#
#   COREBOOT_DIR=~/coreboot scripts/build-rom.sh BZIMAGE [OUT.rom]
#       builds coreboot's QEMU q35 board (Debian's gcc/binutils/iasl,
#       CONFIG_ANY_TOOLCHAIN) with BZIMAGE as its Linux payload, writes the ROM to
#       OUT.rom (default target/coreboot/coreboot.rom) and prints its CBFS layout
#   scripts/build-rom.sh --replace ROM BZIMAGE
#       puts a new LinuxBoot kernel (a new stboot, trust policy or key) into an
#       existing ROM with cbfstool, keeping everything else, the kernel command
#       line too (ROM_CMDLINE=... to change it); prints the layout
#
# BZIMAGE is what scripts/build-kernel.sh INITRAMFS prints: stboot's initramfs is
# embedded in it. COREBOOT_DIR is a coreboot tree with 3rdparty/vboot (for example
# `git clone --recurse-submodules https://review.coreboot.org/coreboot.git`; nothing
# else of 3rdparty/ is needed for the QEMU boards). The tree is not modified: the
# build goes to target/coreboot/. A real board: set BOARD (a Kconfig symbol, see
# the docs/operator-guide.md section "Building firmware") and flash the ROM with
# flashrom or the board's own tools.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out_dir=${COREBOOT_OUT:-$root/target/coreboot}
cmdline=${ROM_CMDLINE:-console=ttyS0 panic=-1}
log() { printf 'build-rom: %s\n' "$*" >&2; }

. "$root/scripts/apt-need.sh"
if [ "${1:-}" = "--replace" ]; then
    # cbfstool alone: Debian's coreboot-utils has it
    [ -x "$out_dir/build/cbfstool" ] || command -v cbfstool >/dev/null || apt_need build-rom coreboot-utils
else
    apt_need build-rom build-essential gcc-multilib flex bison acpica-tools zlib1g-dev libssl-dev uuid-dev pkg-config python3 m4
fi

# a bzImage has the x86 boot protocol's "HdrS" at 0x202
is_bzimage() { [ "$(dd if="$1" bs=1 skip=514 count=4 2>/dev/null)" = HdrS ]; }

cbfstool() {
    if [ -x "$out_dir/build/cbfstool" ]; then "$out_dir/build/cbfstool" "$@"; else command cbfstool "$@"; fi
}

# The kernel command line of ROM's Linux payload: cbfstool add-payload puts a
# bzImage's at 0x91000, a data segment of the payload ("data (none compression,
# offset: 0x29e0, load: 0x91000, length: 21/21)" in print -v). Fails when there is
# none or it is compressed.
rom_cmdline() {
    local seg off len tmp
    seg=$(cbfstool "$1" print -v 2>/dev/null | awk '/^fallback\/payload /{p=1; next} p && /^[^ ]/{p=0}
        p && /load: 0x91000,/ {print; exit}')
    [[ $seg =~ \(none\ compression,\ offset:\ (0x[0-9a-f]+),\ load:\ 0x91000,\ length:\ ([0-9]+)/ ]] || return 1
    off=${BASH_REMATCH[1]} len=${BASH_REMATCH[2]}
    tmp=$(mktemp)
    cbfstool "$1" extract -n fallback/payload -f "$tmp" -U >/dev/null 2>&1 || { rm -f "$tmp"; return 1; }
    dd if="$tmp" bs=1 skip=$((off)) count="$len" status=none | tr -d '\0'
    rm -f "$tmp"
}

if [ "${1:-}" = "--replace" ]; then
    rom=${2:?usage: build-rom.sh --replace ROM BZIMAGE}; bz=${3:?usage: build-rom.sh --replace ROM BZIMAGE}
    [ -f "$rom" ] || { log "$rom: no such ROM"; exit 1; }
    is_bzimage "$bz" || { log "$bz: not a Linux bzImage (scripts/build-kernel.sh INITRAMFS prints one)"; exit 1; }
    cbfstool "$rom" print 2>/dev/null | grep -q '^fallback/payload ' ||
        { log "$rom has no fallback/payload: is it a coreboot ROM?"; exit 1; }
    if ! old=$(rom_cmdline "$rom"); then
        [ -n "${ROM_CMDLINE:-}" ] ||
            { log "$rom: cannot read its payload's kernel command line; give the one to use with ROM_CMDLINE=..."; exit 1; }
        old="(unreadable)"
    fi
    if [ -n "${ROM_CMDLINE:-}" ]; then
        cmdline=$ROM_CMDLINE
        log "kernel command line: \"$cmdline\" (ROM_CMDLINE; was \"$old\")"
    else
        cmdline=$old
        log "kernel command line kept: \"$cmdline\" (ROM_CMDLINE=... to change it)"
    fi
    cbfstool "$rom" remove -n fallback/payload
    cbfstool "$rom" add-payload -f "$bz" -n fallback/payload -C "$cmdline"
    log "payload of $rom replaced with $bz"
    cbfstool "$rom" print
    exit 0
fi

bz=${1:?usage: COREBOOT_DIR=... build-rom.sh BZIMAGE [OUT.rom]}
rom=${2:-$out_dir/coreboot.rom}
is_bzimage "$bz" || { log "$bz: not a Linux bzImage (scripts/build-kernel.sh INITRAMFS prints one)"; exit 1; }
bz=$(realpath "$bz")
: "${COREBOOT_DIR:?COREBOOT_DIR must name a coreboot tree (with 3rdparty/vboot); see the comment at the top of $0}"
[ -f "$COREBOOT_DIR/Makefile" ] && [ -d "$COREBOOT_DIR/src/mainboard" ] ||
    { log "COREBOOT_DIR=$COREBOOT_DIR is not a coreboot tree"; exit 1; }
[ -f "$COREBOOT_DIR/3rdparty/vboot/Makefile" ] ||
    { log "$COREBOOT_DIR/3rdparty/vboot is empty: git submodule update --init 3rdparty/vboot"; exit 1; }

mkdir -p "$out_dir"
cat > "$out_dir/defconfig" <<EOF
CONFIG_VENDOR_EMULATION=y
CONFIG_${BOARD:-BOARD_EMULATION_QEMU_X86_Q35}=y
CONFIG_ANY_TOOLCHAIN=y
CONFIG_COREBOOT_ROMSIZE_KB_16384=y
CONFIG_PAYLOAD_LINUX=y
CONFIG_PAYLOAD_FILE="$bz"
CONFIG_LINUX_COMMAND_LINE="$cmdline"
EOF
cp "$out_dir/defconfig" "$out_dir/.config"
mk() { make -s -C "$COREBOOT_DIR" obj="$out_dir/build" DOTCONFIG="$out_dir/.config" "$@"; }
log "configuring $(grep -o 'BOARD_[A-Z0-9_]*' "$out_dir/defconfig") in $out_dir"
mk olddefconfig >/dev/null
for want in CONFIG_ANY_TOOLCHAIN=y CONFIG_PAYLOAD_LINUX=y; do
    grep -qx "$want" "$out_dir/.config" || { log "$want did not reach .config"; exit 1; }
done
log "building (about 90 s of CPU the first time, 45 s after a payload change)"
mk -j"$(nproc)" >"$out_dir/build.log" 2>&1 || { tail -n 40 "$out_dir/build.log" >&2; log "coreboot build failed (log: $out_dir/build.log)"; exit 1; }
[ "$rom" = "$out_dir/build/coreboot.rom" ] || cp "$out_dir/build/coreboot.rom" "$rom"
cbfstool "$rom" print >&2
log "$(stat -c %s "$rom") bytes: $rom"
echo "$rom"
