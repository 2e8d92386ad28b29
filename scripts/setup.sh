#!/usr/bin/env bash
# Installs what the demo and the tests need on a Debian 12 machine (run as root).
# Idempotent: a second run installs nothing.
set -euo pipefail

need_pkgs=(qemu-system-x86 swtpm swtpm-tools tpm2-tools coreboot-utils age cpio musl-tools ovmf systemd-boot-efi mtools xorriso sbsigntool openssl nginx-light python3 python3-venv python3-cryptography openssh-client ca-certificates gcc golang-go dnsmasq-base iproute2
    systemd binutils  # systemd-measure and objcopy: the UKI package tests compare PCR 11 with systemd's
    linux-source-6.1 flex bison bc libelf-dev xz-utils zstd make)  # the last line: scripts/build-kernel.sh
missing=()
for p in "${need_pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # nginx-light is a transitional package on some releases; fall back to nginx
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        apt-get install -y -qq --no-install-recommends "${missing[@]/nginx-light/nginx}" >/dev/null
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: no Rust toolchain (cargo) found; install one with rustup first" >&2
    exit 1
fi
if command -v rustup >/dev/null 2>&1; then
    rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt || true
fi

# virt-firmware (PyPI) writes EFI variables into an OVMF variable store on the host.
venv="$(cd "$(dirname "$0")/.." && pwd)/target/venv"
if [ ! -x "$venv/bin/virt-fw-vars" ]; then
    echo "setup: installing virt-firmware into $venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q virt-firmware
fi

# Debian's kernel (the one linux-image-amd64 points to today) and its modules,
# unpacked into target/kernel without touching /boot or running mkinitramfs.
kdir="$(cd "$(dirname "$0")/.." && pwd)/target/kernel"
if ! ls "$kdir"/boot/vmlinuz-* >/dev/null 2>&1; then
    mkdir -p "$kdir"
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
    if [ -z "$pkg" ]; then
        apt-get update -qq
        pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
    fi
    echo "setup: unpacking $pkg into $kdir"
    (cd "$kdir" && apt-get download -qq "$pkg" 2>/dev/null && dpkg-deb -x "$pkg"_*.deb . && rm -f "$pkg"_*.deb)
fi
ls "$kdir"/boot/vmlinuz-* >/dev/null
