#!/usr/bin/env bash
# The operator's playbook of docs/operator-guide.md section 8, run for real: roll
# out a release, raise the floor, rotate a signing key, revoke a leaked one, keep
# the floor in the TPM (against swtpm). Each
# step runs the commands the guide gives and checks what stmgr says; what a machine
# prints for the same packages is shown by the QEMU scenarios rollback,
# rollback-floor, revoked and tpm-floor (the same verification code).
#
# usage: playbook.sh STMGR     (tests/playbook.rs runs it; prints "playbook: N steps passed")
set -euo pipefail
STMGR=$(realpath "$1")
stmgr() { "$STMGR" "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
steps=0
# expect WORDS COMMAND...: the command's output (stdout and stderr) has WORDS
expect() {
    local words=$1 out; shift
    out=$("$@" 2>&1) || true
    if ! grep -qF -- "$words" <<<"$out"; then
        printf 'playbook: %s\n  expected: %s\n  got:\n%s\n' "$*" "$words" "$out" >&2
        exit 1
    fi
}
step() { steps=$((steps + 1)); echo "playbook step $steps: $*"; }

# a kernel stands in: stmgr checks only the boot protocol's "HdrS" at 0x202
head -c 4096 /dev/zero > vmlinuz
printf 'HdrS' | dd of=vmlinuz bs=1 seek=$((0x202)) conv=notrunc status=none
echo "an initramfs" > initrd.img

# keys outside the served directory; two signers of three, threshold 2
mkdir -p keys www trust_policy
stmgr keygen certificate -isCA -name "fleet root" -certOut keys/root.pem -keyOut keys/root.key
for who in alice bob carol; do
    stmgr keygen certificate -rootCert keys/root.pem -rootKey keys/root.key -name $who \
        -certOut keys/$who.pem -keyOut keys/$who.key
done
cp keys/root.pem trust_policy/ospkg_signing_root.pem
echo '{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network", "ospkg_min_version": 1}' \
    > trust_policy/trust_policy.json

# --- roll out a release: versioned archives, one stable descriptor name ----------
release() { # release VERSION SIGNER...
    local v=$1; shift
    stmgr ospkg create -kernel vmlinuz -initramfs initrd.img -cmdline "console=ttyS0" \
        -label "my OS v$v" -version "$v" -url "os-v$v.zip" -out "os-v$v"
    for s in "$@"; do stmgr ospkg sign -key "keys/$s.key" -cert "keys/$s.pem" -ospkg "os-v$v"; done
    stmgr ospkg verify -trustPolicy trust_policy/ -ospkg "os-v$v"
    cp "os-v$v.zip" www/                          # the archive first, under its own name
    cp "os-v$v.json" www/os.json.new && mv www/os.json.new www/os.json   # then the descriptor, atomically
}
step "release v1 and v2: the stable descriptor www/os.json names the newest archive"
release 1 alice bob >/dev/null
release 2 alice bob > v2.log
grep -qF "version 2 (this trust policy's floor: 1)" v2.log
grep -qF "signatures meet the threshold until" v2.log
expect '"os_pkg_url": "os-v2.zip"' cat www/os.json
[ -f www/os-v1.zip ] && [ -f www/os-v2.zip ]

step "an attacker serves the older, validly signed v1: it still boots under floor 1"
expect "accepted: os-v1.zip" stmgr ospkg verify -trustPolicy trust_policy/ -ospkg os-v1

# --- raise the floor once every machine runs v2 -----------------------------------
step "raise the floor to 2: v1 is refused, naming both numbers; v2 still boots"
echo '{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network", "ospkg_min_version": 2}' \
    > trust_policy/trust_policy.json
expect "lowest OS package version booted: 2" stmgr trustpolicy check trust_policy/
expect "OS package version 1 is below this machine's floor 2 (trust_policy.json ospkg_min_version): a downgrade, refused" \
    stmgr ospkg verify -trustPolicy trust_policy/ -ospkg os-v1
expect "accepted: os-v2.zip" stmgr ospkg verify -trustPolicy trust_policy/ -ospkg os-v2

# --- rotate a signing key ------------------------------------------------------------
step "rotate alice's key: a new certificate, the next release signed with it"
stmgr keygen certificate -rootCert keys/root.pem -rootKey keys/root.key -name "alice 2027" \
    -certOut keys/alice2.pem -keyOut keys/alice2.key
release 3 alice2 bob > v3.log
grep -qF "signature 0 (signature by alice 2027 (CN=" v3.log

# --- revoke a leaked key ----------------------------------------------------------------
step "bob's key leaked: list it; v3 (alice 2027, bob) falls below the threshold"
sha=$(openssl x509 -in keys/bob.pem -outform DER | sha256sum | cut -d' ' -f1)
printf '# bob'"'"'s key leaked on 2026-12-05\nsha256:%s  bob\n' "$sha" > trust_policy/ospkg_revoked_signers
expect "revoked signers: 1 (ospkg_revoked_signers)" stmgr trustpolicy check trust_policy/
expect "signature 1 (signature by bob (CN=" stmgr ospkg verify -trustPolicy trust_policy/ -ospkg os-v3
expect "not counted: revoked: the certificate sha256:$sha is listed in ospkg_revoked_signers line 2" \
    stmgr ospkg verify -trustPolicy trust_policy/ -ospkg os-v3
expect "Signatures: 2 found, 1 valid, 2 required" stmgr ospkg verify -trustPolicy trust_policy/ -ospkg os-v3

step "re-sign with a key that is not revoked, and publish it as a new release"
release 4 alice2 carol > v4.log
grep -qF "Signatures: 2 found, 2 valid, 2 required" v4.log
expect '"os_pkg_url": "os-v4.zip"' cat www/os.json

step "keep the floor in the machine's TPM: defined once, raised by the booted OS, never lowered"
if ! command -v swtpm >/dev/null; then
    if [ -n "${STBOOT_REQUIRE_SWTPM:-}" ]; then echo "playbook: STBOOT_REQUIRE_SWTPM is set but swtpm is missing" >&2; exit 1; fi
    echo "playbook: SKIPPED the TPM floor commands: swtpm is not installed (scripts/setup.sh installs it)"
else
    # a software TPM stands in for the machine's (-tpm; on the machine, the default finds /dev/tpmrm0)
    mkdir tpm
    swtpm socket --tpm2 --tpmstate dir=tpm --server type=unixio,path=tpm/cmd --ctrl type=unixio,path=tpm/ctrl \
        --flags not-need-init,startup-clear 2>/dev/null & swtpm_pid=$!
    trap 'kill $swtpm_pid 2>/dev/null; rm -rf "$work"' EXIT
    T=unix:$work/tpm/cmd
    for _ in $(seq 100); do stmgr tpm floor show -tpm "$T" >/dev/null 2>&1 && break; sleep 0.1; done
    echo '{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network", "ospkg_min_version": 2, "ospkg_tpm_floor": true}' \
        > trust_policy/trust_policy.json
    expect "TPM floor: also the floor in TPM NV index 0x01420002" stmgr trustpolicy check trust_policy/
    expect "TPM floor 2: NV indices 0x01420002 (counter) and 0x01420003 (base) defined" \
        stmgr tpm floor init -tpm "$T" -floor 2
    expect "TPM floor raised from 2 to 4" stmgr tpm floor raise -tpm "$T" -version 4
    expect "TPM floor 4: already at or above version 3, unchanged" stmgr tpm floor raise -tpm "$T" -version 3
    expect "TPM floor 4" stmgr tpm floor show -tpm "$T"
    expect "PCR12=" stmgr tpm predict -trustPolicy trust_policy/ -ospkg os-v4 -tpmFloor 4
    expect "OS package version 4 is below this machine's floor 5 (the TPM floor, NV index 0x01420002)" \
        stmgr tpm predict -trustPolicy trust_policy/ -ospkg os-v4 -tpmFloor 5
fi

step "the keys never landed in the served directory"
[ -z "$(find www -name '*.key')" ]

echo "playbook: $steps steps passed"
