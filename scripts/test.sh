#!/usr/bin/env bash
# All tests: formatting, lints, unit and integration tests, then the QEMU end-to-end
# scenarios. Run as root on Debian 12; installs what it needs. Ends with the time
# each phase took.
set -euo pipefail
cd "$(dirname "$0")/.."
phases=()
t0=$SECONDS
phase_start=$SECONDS
# phase NAME: the time since the last phase ends NAME's
phase() { phases+=("$(printf '%-40s %5d s' "$1" $((SECONDS - phase_start)))"); phase_start=$SECONDS; }
report() {
    echo "== phase times"
    printf '%s\n' "${phases[@]}"
    printf '%-40s %5d s\n' "total" $((SECONDS - t0))
}
trap report EXIT

bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
phase "setup (packages, kernel, venv)"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
phase "fmt and clippy"
echo "== cargo test"
rm -f target/skipped.log
STBOOT_REQUIRE_GO=1 STBOOT_REQUIRE_NETNS=1 STBOOT_SKIP_LOG="$PWD/target/skipped.log" cargo test --quiet 2>&1 | tee target/cargo-test.log
grep -q "test result: ok" target/cargo-test.log
# what the host could not run (each names the test that covers it instead)
[ -s target/skipped.log ] && { echo "== skipped in cargo test:"; cat target/skipped.log; }
phase "cargo test"
if [ -x integration-tests/run.sh ]; then
    echo "== QEMU end-to-end scenarios"
    bash integration-tests/run.sh
    phase "QEMU scenarios (with kernel and stboot builds)"
fi
echo "== the README's demo command"
if bash scripts/demo.sh > target/demo.log 2>&1 && grep -aq "TEST-OS-BOOTED cmdline=\[console=ttyS0 panic=-1 demo=hello\]" target/demo.log; then
    echo "demo: 1 passed, 0 failed"
else
    tail -n 40 target/demo.log
    echo "demo: 0 passed, 1 failed"
    exit 1
fi
phase "demo"
echo "== reproducible builds (stboot, initramfs, kernel, built twice in different places)"
bash scripts/check-reproducible.sh
phase "reproducible builds"
