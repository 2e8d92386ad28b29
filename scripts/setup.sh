#!/usr/bin/env bash
# Installs what the demo and the tests need on a Debian 12 machine (run as root).
# Idempotent: a second run installs nothing.
set -euo pipefail

need_pkgs=(qemu-system-x86 swtpm swtpm-tools tpm2-tools coreboot-utils age cpio musl-tools ovmf systemd-boot-efi mtools xorriso sbsigntool openssl nginx-light python3 python3-venv python3-cryptography openssh-client ca-certificates gcc golang-go dnsmasq-base iproute2
    tinyproxy-bin  # a real proxy for the proxy test (the binary alone: no service is started)
    systemd binutils python3-pefile  # systemd-measure, objcopy, ukify's PE library: the UKI tests compare PCR 11 with systemd's
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

# systemd 254 from bookworm-backports (systemd-measure, systemd-stub and ukify),
# unpacked into target/systemd-254 with apt lists of its own: nothing is installed
# and the machine's apt sources stay as they are. The UKI tests build UKIs with
# that ukify around that stub and compare stboot's PCR 11 with that systemd-measure
# (a newer stub measures more sections than Debian 12's 252).
sd="$(cd "$(dirname "$0")/.." && pwd)/target/systemd-254"
if [ ! -x "$sd/bin/systemd-measure" ] || [ ! -x "$sd/bin/ukify" ]; then
    echo "setup: unpacking systemd 254 (bookworm-backports: systemd-measure, systemd-stub, ukify) into $sd"
    rm -rf "$sd" && mkdir -p "$sd/apt/lists/partial" "$sd/apt/cache/archives/partial" "$sd/root" "$sd/bin"
    echo "deb http://deb.debian.org/debian bookworm-backports main" > "$sd/apt/sources.list"
    apt_sd=(-o "Dir::Etc::sourcelist=$sd/apt/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$sd/apt/lists"
        -o "Dir::Cache=$sd/apt/cache" -o APT::Get::List-Cleanup=0)
    apt-get "${apt_sd[@]}" update -qq
    (cd "$sd/apt" && apt-get "${apt_sd[@]}" download -qq systemd/bookworm-backports systemd-boot/bookworm-backports \
        systemd-boot-efi/bookworm-backports libsystemd-shared/bookworm-backports 2>/dev/null)
    for deb in "$sd"/apt/*.deb; do dpkg-deb -x "$deb" "$sd/root"; done
    rm -f "$sd"/apt/*.deb
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$sd/root/usr/lib/x86_64-linux-gnu/systemd" \
        "$sd/root/lib/systemd/systemd-measure" > "$sd/bin/systemd-measure"
    printf '#!/bin/sh\nexec /usr/bin/python3 "%s" "$@"\n' "$sd/root/lib/systemd/ukify" > "$sd/bin/ukify"
    ln -sf ../root/usr/lib/systemd/boot/efi/linuxx64.efi.stub "$sd/bin/linuxx64.efi.stub"
    chmod +x "$sd/bin/systemd-measure" "$sd/bin/ukify"
fi
sd_version=$("$sd/bin/systemd-measure" --version | head -n 1)
[[ $sd_version == "systemd 254"* ]] && "$sd/bin/ukify" --version >/dev/null
