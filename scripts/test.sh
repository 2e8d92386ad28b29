#!/usr/bin/env bash
# All tests: formatting, lints, unit and integration tests, then the QEMU end-to-end
# scenarios, the README's demo and the reproducible builds. Run as root on Debian 12;
# installs what it needs. Ends with the time each phase took (also when one fails).
set -euo pipefail
cd "$(dirname "$0")/.."
phases=()
t0=$SECONDS
bg_pid=
report() {
    if [ -n "$bg_pid" ]; then kill -- -"$bg_pid" 2>/dev/null || true; fi
    echo "== phase times"
    printf '%s\n' "${phases[@]}"
    [ -f target/background.time ] && cat target/background.time
    printf '%-44s %5d s\n' "total" $((SECONDS - t0))
}
trap report EXIT
# time_line NAME SECONDS STATUS: one line of the report
time_line() {
    printf '%-44s %5d s%s\n' "$1" "$2" "$([ "$3" = 0 ] || echo "  FAILED ($3)")"
}
# phase NAME FUNCTION: run it, note its time (and a failure), stop at a failure. The
# function runs in a subshell with errexit on (a function called as `f || ...`
# would run with errexit off, and a failed command inside could go unnoticed).
phase() {
    local name=$1 start=$SECONDS status
    set +e
    (set -e; "$2")
    status=$?
    set -e
    phases+=("$(time_line "$name" $((SECONDS - start)) $status)")
    [ $status = 0 ] || exit $status
}

setup() { bash scripts/setup.sh; }
lints() {
    echo "== cargo fmt --check"
    cargo fmt --all -- --check
    echo "== cargo clippy"
    cargo clippy --all-targets --quiet -- -D warnings
    echo "== the guide's command blocks: every one runs, or says why not"
    python3 integration-tests/guide.py --check
}
# The test binaries run at once, not one after the other as `cargo test` runs them:
# most of their time is waiting (timeouts of the misbehaving server, DHCP in network
# namespaces), 115 s in a row against the longest binary's 30 s. Each one's output is
# printed whole, in order, after all ended.
unit_and_integration() {
    echo "== cargo test"
    rm -rf target/skipped.log target/test-logs
    mkdir -p target/test-logs
    export STBOOT_REQUIRE_GO=1 STBOOT_REQUIRE_NETNS=1 STBOOT_REQUIRE_SWTPM=1 STBOOT_REQUIRE_CBFSTOOL=1 STBOOT_REQUIRE_OVMF=1 STBOOT_SKIP_LOG="$PWD/target/skipped.log"
    cargo test --no-run --quiet --message-format=json-render-diagnostics > target/test-logs/build.json
    local bins
    bins=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' target/test-logs/build.json)
    local b n=0 pids=() names=()
    for b in $bins; do
        n=$((n + 1))
        names+=("$n-$(basename "$b")")
        "$b" --quiet > "target/test-logs/${names[-1]}.log" 2>&1 &
        pids+=($!)
    done
    names+=("doctests")
    cargo test --doc --quiet > target/test-logs/doctests.log 2>&1 &
    pids+=($!)
    local i failed=()
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || failed+=("${names[$i]}")
    done
    for i in "${names[@]}"; do
        echo "-- ${i#*-}"
        cat "target/test-logs/$i.log"
    done | tee target/cargo-test.log
    # what the host could not run (each names the test that covers it instead)
    if [ -s target/skipped.log ]; then echo "== skipped in cargo test:"; cat target/skipped.log; fi
    if [ ${#failed[@]} -gt 0 ]; then
        echo "cargo test: FAILED: ${failed[*]} (target/test-logs/)"
        return 1
    fi
    echo "cargo test: $((${#names[@]})) test binaries passed"
}
qemu() {
    echo "== QEMU end-to-end scenarios"
    bash integration-tests/run.sh
}
demo() {
    echo "== the README's demo command"
    if bash scripts/demo.sh > target/demo.log 2>&1 && grep -aq "TEST-OS-BOOTED cmdline=\[console=ttyS0 panic=-1 demo=hello\]" target/demo.log; then
        echo "demo: 1 passed, 0 failed"
    else
        tail -n 40 target/demo.log
        echo "demo: 0 passed, 1 failed"
        return 1
    fi
}
# The operator guide verbatim: every sh block of README.md and docs/operator-guide.md
# in order, from an empty directory (integration-tests/guide.py; the skipped ones
# are listed with their reasons). Its LinuxBoot kernel is the background's, cached.
guide() {
    echo "== the operator guide, verbatim (integration-tests/guide.py)"
    python3 integration-tests/guide.py
}
# The two LinuxBoot kernel builds and the second stboot build (about 25 min of CPU,
# no input from the phases) run in the background at idle priority: they get the
# CPU only when the phases leave it idle (a serial link, a test waiting for a
# timeout, a QEMU waiting for its network), and are ready, or nearly, when the QEMU
# and reproducible phases need them. The phases themselves run slower beside them
# (shared caches and memory: lints 91 -> 173 s, cargo test 232 -> 339 s, measured
# 2026-12-05); the total is shorter (2013 -> 1481 s).
second_place=$PWD/target/reproducible-second-place
background() {
    local start=$SECONDS status
    set +e
    (set -e
     echo "== the LinuxBoot kernel (scripts/build-kernel.sh)"
     bash scripts/build-kernel.sh >/dev/null
     time_line "(background: the LinuxBoot kernel)" $((SECONDS - start)) 0 > target/background.time
     echo "== the reproducible check's second place (scripts/check-reproducible.sh --prepare)"
     bash scripts/check-reproducible.sh --prepare "$second_place")
    status=$?
    time_line "(background: kernels, second stboot; idle prio)" $((SECONDS - start)) $status >> target/background.time
    echo $status > target/background.status
}
start_background() {
    rm -f target/background.status target/background.time
    mkdir -p target
    # its own process group (setsid), so that the report can stop all of it
    setsid chrt --idle 0 bash -c "$(declare -f background time_line); second_place=$(printf %q "$second_place"); background" \
        > target/background.log 2>&1 < /dev/null &
    bg_pid=$!
}
wait_background() {
    local waited=$SECONDS
    while [ ! -f target/background.status ]; do
        # ended (killed?) without saying how: the file may have come meanwhile
        if ! kill -0 "$bg_pid" 2>/dev/null && [ ! -f target/background.status ]; then
            tail -n 40 target/background.log
            echo "the background builds ended without a status (target/background.log)"
            return 1
        fi
        sleep 2
    done
    echo "waited $((SECONDS - waited)) s for the background builds (target/background.log)"
    [ "$(cat target/background.status)" = 0 ] || { tail -n 40 target/background.log; return 1; }
}
reproducible() {
    echo "== reproducible builds (stboot, initramfs, kernel, built twice in different places)"
    wait_background
    bash scripts/check-reproducible.sh --second-place "$second_place"
}

phase "setup (packages, kernel, venv)" setup
export PATH="$HOME/.cargo/bin:$PATH"
# one build of each crate per run: incremental state would cost time and disk only
export CARGO_INCREMENTAL=0
start_background
phase "fmt and clippy" lints
phase "cargo test" unit_and_integration
phase "QEMU scenarios (with kernel and stboot builds)" qemu
phase "demo" demo
phase "guide" guide
phase "reproducible builds" reproducible
