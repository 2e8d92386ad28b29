#!/usr/bin/env bash
# Builds the LinuxBoot kernel for stboot from Debian's linux-source-6.1:
# `make tinyconfig`, then kernel-config/stboot.config merged on with allnoconfig
# semantics; fails if any requested symbol did not reach .config (Kconfig drops
# symbols with unmet dependencies without a word). With an initramfs argument
# (a cpio, gzip-compressed or not), it is embedded, so one file is the whole payload.
#
#   scripts/build-kernel.sh [INITRAMFS [OUT]]   prints the path of the bzImage
#
# Builds are cached under target/linuxboot/, keyed on the kernel source, the
# fragment and the initramfs: a second run with the same inputs builds nothing.
# KERNEL_EXTRA_CONFIG=FILE merges more symbols on top of the fragment, for
# experiments (scripts/bench-boot.sh --kernel-o2); use a LINUXBOOT_DIR of its own.
# With OUT, the bzImage is written there and not cached (the QEMU tests embed a
# fresh initramfs per scenario: about 13 s each, as only the link step reruns).
# Reproducible: build timestamp, user and host are fixed (scripts/check-reproducible.sh
# builds it a second time elsewhere, with LINUXBOOT_DIR set, and compares).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)   # physical: a checkout reached through a link builds in one place
initramfs=${1:-}
dest=${2:-}
fragment=$root/kernel-config/stboot.config
extra=${KERNEL_EXTRA_CONFIG:-}
[ -z "$extra" ] || extra=$(realpath "$extra")
tarball=/usr/src/linux-source-6.1.tar.xz
base=${LINUXBOOT_DIR:-$root/target/linuxboot}
log() { printf 'build-kernel: %s\n' "$*" >&2; }

. "$root/scripts/apt-need.sh"
apt_need build-kernel linux-source-6.1 flex bison bc libelf-dev xz-utils zstd make gcc

# one build at a time per LINUXBOOT_DIR (one object directory): a second run waits,
# then finds the first one's bzImage cached
mkdir -p "$base"
exec 9>"$base/.lock"
flock 9

version=$(dpkg-query -W -f='${Version}' linux-source-6.1)
src=$base/src-$version
if [ ! -f "$src/.extracted" ]; then
    log "unpacking linux-source-6.1 $version"
    rm -rf "$src"; mkdir -p "$src"
    tar -xf "$tarball" -C "$src" --strip-components=1
    touch "$src/.extracted"
fi

key=$( {
    echo "$version"
    cat "$fragment" "$0"
    if [ -n "$extra" ]; then cat "$extra"; fi
    if [ -n "$initramfs" ]; then sha256sum < "$initramfs"; fi
} | sha256sum | cut -c1-16)
out=${dest:-$base/bzImage-$key}
if [ -z "$dest" ] && [ -f "$out" ]; then
    log "cached: $out"
    echo "$out"
    exit 0
fi

obj=$base/obj
mkdir -p "$obj"
# the fragment without comments, plus the embedded initramfs
grep -o '^CONFIG_[A-Za-z0-9_]*=[^ #]*' "$fragment" > "$obj/stboot.fragment"
if [ -n "$extra" ]; then
    # the fragment's value of a symbol the extra file sets is replaced, not doubled
    grep -o '^CONFIG_[A-Za-z0-9_]*=[^ #]*' "$extra" > "$obj/extra.fragment"
    grep -v -F -f <(sed 's/=.*/=/' "$obj/extra.fragment") "$obj/stboot.fragment" > "$obj/stboot.fragment.new" || true
    cat "$obj/extra.fragment" >> "$obj/stboot.fragment.new"
    mv "$obj/stboot.fragment.new" "$obj/stboot.fragment"
fi
if [ -n "$initramfs" ]; then
    if gzip -t "$initramfs" 2>/dev/null; then
        gzip -dc "$initramfs" > "$obj/initramfs.cpio"
    else
        cp "$initramfs" "$obj/initramfs.cpio"
    fi
    printf 'CONFIG_INITRAMFS_SOURCE="%s"\nCONFIG_INITRAMFS_COMPRESSION_NONE=y\n' "$obj/initramfs.cpio" >> "$obj/stboot.fragment"
fi

export KBUILD_BUILD_TIMESTAMP="1970-01-01 00:00:00 UTC" KBUILD_BUILD_USER=stboot KBUILD_BUILD_HOST=stboot KBUILD_BUILD_VERSION=1
mk() { make -s -C "$src" O="$obj" ARCH=x86_64 "$@"; }
# the configuration depends on the source, the fragment and whether an initramfs is
# embedded (always from the same path), not on the initramfs' contents: when it is
# unchanged, only the build below runs
config_key=$( { echo "$version"; cat "$obj/stboot.fragment" "$0"; } | sha256sum | cut -c1-16)
if [ ! -f "$obj/.config" ] || [ "$(cat "$obj/config.key" 2>/dev/null)" != "$config_key" ]; then
    rm -f "$obj/config.key"
    mk tinyconfig >/dev/null
    (cd "$src" && ARCH=x86_64 scripts/kconfig/merge_config.sh -n -O "$obj" "$obj/.config" "$obj/stboot.fragment" >"$obj/merge.log" 2>&1) ||
        { cat "$obj/merge.log" >&2; exit 1; }

    # every requested symbol must be in .config, with the requested value
    dropped=()
    while IFS= read -r line; do
        grep -qxF -- "$line" "$obj/.config" || dropped+=("$line")
    done < "$obj/stboot.fragment"
    if [ ${#dropped[@]} -gt 0 ]; then
        log "these requested symbols did not reach .config (unmet dependencies?):"
        printf '  %s\n' "${dropped[@]}" >&2
        exit 1
    fi

    mk savedefconfig >/dev/null
    # kernel-config/defconfig is this configuration, minus the embedded initramfs
    # (an experiment's extra symbols are not in it)
    if [ -z "$extra" ] && ! diff -u "$root/kernel-config/defconfig" <(grep -v 'CONFIG_INITRAMFS_' "$obj/defconfig") >&2; then
        log "kernel-config/defconfig is not current (diff above): update it with"
        log "  grep -v CONFIG_INITRAMFS_ $obj/defconfig > kernel-config/defconfig"
        exit 1
    fi
    echo "$config_key" > "$obj/config.key"
fi

log "building (about 6 min of CPU from scratch, about 13 s when only the initramfs changed)"
mk -j"$(nproc)" bzImage >/dev/null
cp "$obj/arch/x86/boot/bzImage" "$out.tmp"
mv "$out.tmp" "$out"
log "$(stat -c %s "$out") bytes: $out"
echo "$out"
