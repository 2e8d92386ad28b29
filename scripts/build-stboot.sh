#!/usr/bin/env bash
# Builds the stboot binary for the initramfs (static, x86_64-unknown-linux-musl,
# release profile) reproducibly, and prints its path:
# - the checkout and CARGO_HOME are remapped (/stboot-rs, /cargo) in what rustc and
#   the C compiler embed (panic locations, file names), so the directory a build
#   runs in does not reach the binary;
# - the build time stboot uses as a floor for its clock is SOURCE_DATE_EPOCH, else
#   the last commit's time (build.rs);
# - dependencies are exactly Cargo.lock's (--locked).
# The same commit and Rust version give the same bytes: scripts/check-reproducible.sh
# checks it. Release builds use the Rust version in docs/design.md ("Reproducible
# builds").
#
#   scripts/build-stboot.sh [--with-stmgr]
#
# With --with-stmgr, stmgr is built in the same cargo run, static for the same target
# (the dependencies are compiled once for both, and the two link steps run side by
# side), and its path is printed on a second line. stboot's bytes do not depend on it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)   # physical: a checkout reached through a link builds in one place
bins=(--bin stboot)
case "${1:-}" in
    "") ;;
    --with-stmgr) bins+=(--bin stmgr) ;;
    *) echo "usage: build-stboot.sh [--with-stmgr]" >&2; exit 2 ;;
esac
export PATH="$HOME/.cargo/bin:$PATH"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
command -v x86_64-linux-musl-gcc >/dev/null || export CC_x86_64_unknown_linux_musl=musl-gcc
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="--remap-path-prefix=$root=/stboot-rs --remap-path-prefix=$cargo_home=/cargo"
export CFLAGS_x86_64_unknown_linux_musl="-ffile-prefix-map=$root=/stboot-rs -ffile-prefix-map=$cargo_home=/cargo"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)
    export SOURCE_DATE_EPOCH
fi
cd "$root"
cargo build --quiet --locked --release --target x86_64-unknown-linux-musl "${bins[@]}"
echo "$root/target/x86_64-unknown-linux-musl/release/stboot"
[ ${#bins[@]} = 2 ] || echo "$root/target/x86_64-unknown-linux-musl/release/stmgr"
