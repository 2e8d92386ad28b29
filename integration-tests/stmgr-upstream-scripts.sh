#!/usr/bin/env bash
# The logic of upstream stmgr v0.6.6's own test scripts (tests/*-test in
# system-transparency/stmgr: cert-keygen, cert-openssl, cert-ssh, cert-agent,
# hostconfig-check, ospkg-create, ospkg-sign, uki-create), written again for this
# project and run against this stmgr: the same commands with the same flags, judged
# the same way (openssl's view of the certificates, the descriptor's and manifest's
# fields, sbverify, the file types), so that operators' scripts built like upstream's
# keep working. Where stmgr-rs deliberately differs, the case says so and checks the
# difference instead (docs/formats.md, "Deliberate differences").
#
# usage: stmgr-upstream-scripts.sh STMGR   (needs openssl, ssh-keygen, ssh-agent,
# python3, sbverify; prints PASS/FAIL per case; exit 1 if any failed)
set -uo pipefail
STMGR=$(realpath "$1")
stmgr() { "$STMGR" "$@"; }
TOP=$(mktemp -d)
trap 'rm -rf "$TOP"' EXIT
die() { echo "$*" >&2; exit 1; }

# upstream greps `openssl x509 -text` for these lines
check_certs() { # ROOT_CERT LEAF_CERT
    openssl x509 -text -noout -in "$1" | grep -q "CA:TRUE" || die "root: not a CA certificate"
    openssl x509 -text -noout -in "$1" | grep -q "^ *Digital Signature, Certificate Sign$" || die "root: unexpected key usage"
    ! openssl x509 -text -noout -in "$2" | grep -q "CA:TRUE" || die "leaf: a CA certificate"
    openssl x509 -text -noout -in "$2" | grep -q "^ *Digital Signature$" || die "leaf: unexpected key usage"
    openssl verify -trusted "$1" "$2" >/dev/null || die "openssl verify: the leaf does not chain to the root"
}

json() { # FILE PYTHON_EXPRESSION_OVER_d: prints the value
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# `file -i` without the file package: an ISO 9660 volume descriptor at 0x8001, a PE
# image ("MZ" and the "PE\0\0" its e_lfanew points to)
file_type() {
    python3 - "$1" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
if b[0x8001:0x8006] == b"CD001":
    print("application/x-iso9660-image")
elif b[:2] == b"MZ" and b[struct.unpack_from("<I", b, 0x3c)[0]:][:4] == b"PE\0\0":
    print("application/vnd.microsoft.portable-executable")
else:
    print("unknown")
PY
}
is_iso() { [ "$(file_type "$1")" = application/x-iso9660-image ] || die "$1: not an ISO 9660 image"; }
is_pe() { [ "$(file_type "$1")" = application/vnd.microsoft.portable-executable ] || die "$1: not a PE image"; }

cert_keygen() {
    stmgr keygen certificate -isCA -certOut tmp.root.cert -keyOut tmp.root.key
    stmgr keygen certificate -rootCert tmp.root.cert -rootKey tmp.root.key -certOut tmp.sign.cert -keyOut tmp.sign.key
    check_certs tmp.root.cert tmp.sign.cert
}

# a root certificate for tmp.root.key and a leaf for the public key tmp.sign.key.pub
certs_for_keys() {
    stmgr keygen certificate -isCA -rootKey tmp.root.key -certOut tmp.root.cert
    stmgr keygen certificate -rootCert tmp.root.cert -rootKey tmp.root.key -leafKey tmp.sign.key.pub -certOut tmp.sign.cert
    check_certs tmp.root.cert tmp.sign.cert
}

cert_openssl() {
    local k
    for k in root sign; do
        openssl genpkey -algorithm ed25519 -out tmp.$k.key
        openssl pkey -in tmp.$k.key -pubout -out tmp.$k.key.pub
    done
    certs_for_keys
}

cert_ssh() {
    ssh-keygen -q -N '' -t ed25519 -f tmp.root.key
    ssh-keygen -q -N '' -t ed25519 -f tmp.sign.key
    certs_for_keys
}

cert_agent() {
    ssh-keygen -q -N '' -t ed25519 -f tmp.root.key
    ssh-keygen -q -N '' -t ed25519 -f tmp.sign.key
    # the root's private key exists only in the agent
    STMGR=$STMGR ssh-agent sh -ec '
        ssh-add -q tmp.root.key
        rm tmp.root.key
        "$STMGR" keygen certificate -isCA -rootKey tmp.root.key.pub -certOut tmp.root.cert
        "$STMGR" keygen certificate -rootCert tmp.root.cert -rootKey tmp.root.key.pub \
            -leafKey tmp.sign.key.pub -certOut tmp.sign.cert' || die "stmgr through ssh-agent failed"
    [ ! -e tmp.root.key ] || die "the root key file should be gone"
    check_certs tmp.root.cert tmp.sign.cert
}

hostconfig_check() {
    # upstream's configurations as provisioned 2022-2023 (tests/data: a description,
    # `---`, the JSON), passed as JSON text on the command line, as upstream does
    local f n=0
    for f in "$ROOT"/tests/data/upstream-hostconfigs/*.txt; do
        stmgr hostconfig check "$(sed '1,/^---$/d' "$f")" >/dev/null || die "hostconfig check refused $(basename "$f")"
        n=$((n + 1))
    done
    [ $n -ge 3 ] || die "expected at least 3 upstream host configurations, found $n"
}

ospkg_create() {
    # upstream passes one file as both kernel and initramfs, which gives a zip with
    # two entries of the same name; stmgr-rs refuses that by name (a verifier cannot
    # tell which entry is meant) and takes two files instead
    echo "A dummmy OS package" > tmp.data
    ! stmgr ospkg create -initramfs tmp.data -kernel tmp.data -out tmp.same.json 2>tmp.err || die "same file accepted"
    grep -q "kernel and initramfs have the same file name" tmp.err || die "unexpected error: $(cat tmp.err)"
    echo "A dummmy kernel" > tmp.kernel
    echo "A dummmy initramfs" > tmp.initramfs
    local url
    for url in "example.zip" "https://example.org/pkg.zip"; do
        rm -f tmp.pkg.json tmp.pkg.zip
        stmgr ospkg create -initramfs tmp.initramfs -kernel tmp.kernel -out tmp.pkg.json -url "$url" >/dev/null
        [ "$(json tmp.pkg.json 'd["version"]')" = 1 ] || die "descriptor version"
        [ "$(json tmp.pkg.json 'd["os_pkg_url"]')" = "$url" ] || die "descriptor os_pkg_url"
        [ "$(python3 -c 'import json,sys,zipfile; print(json.loads(zipfile.ZipFile(sys.argv[1]).read("manifest.json"))["version"])' tmp.pkg.zip)" = 1 ] ||
            die "manifest version"
    done
}

# a file that starts like an x86 bzImage ("HdrS" at 0x202), all stmgr-rs's checked
# manifest looks at
pretend_bzimage() {
    python3 -c 'import sys; k = bytearray(b"M" * 4096); k[0x202:0x206] = b"HdrS"; open(sys.argv[1], "wb").write(k)' "$1"
}

ospkg_sign() {
    stmgr keygen certificate -isCA -certOut tmp.root.cert -keyOut tmp.root.key
    ssh-keygen -q -N '' -t ed25519 -f tmp.sign.key
    # upstream signs a text file as kernel and leaves os_pkg_url empty; stmgr-rs's
    # verify refuses both (stboot could neither kexec nor fetch it): both are shown,
    # then the rest runs with a bzImage-shaped kernel and -url
    echo "A dummmy kernel to sign without and with ssh agent" > tmp.text
    echo "A dummmy initramfs" > tmp.initramfs
    stmgr ospkg create -initramfs tmp.initramfs -kernel tmp.text -out tmp.bad.json >/dev/null
    stmgr ospkg sign -key tmp.root.key -cert tmp.root.cert -ospkg tmp.bad.json >/dev/null
    stmgr trustpolicy check '{ "ospkg_signature_threshold": 1, "ospkg_fetch_method": "network" }' >trust_policy.json
    cp -a tmp.root.cert ospkg_signing_root.pem
    ! stmgr ospkg verify -trustPolicy . -ospkg tmp.bad.json >tmp.out || die "a text kernel was accepted"
    grep -q 'is not an x86 bzImage' tmp.out || die "unexpected: $(cat tmp.out)"
    pretend_bzimage tmp.kernel
    stmgr ospkg create -initramfs tmp.initramfs -kernel tmp.kernel -out tmp.nourl.json >/dev/null
    stmgr ospkg sign -key tmp.root.key -cert tmp.root.cert -ospkg tmp.nourl.json >/dev/null
    ! stmgr ospkg verify -trustPolicy . -ospkg tmp.nourl.json >tmp.out || die "an empty os_pkg_url was accepted for network"
    grep -q 'field "os_pkg_url" is empty' tmp.out || die "unexpected: $(cat tmp.out)"
    stmgr ospkg verify -rootCerts ospkg_signing_root.pem -ospkg tmp.nourl.json >/dev/null ||
        die "verify -rootCerts (no fetch method) should not care about the URL"
    stmgr ospkg create -initramfs tmp.initramfs -kernel tmp.kernel -out tmp.pkg.json -url tmp.pkg.zip >/dev/null
    stmgr ospkg sign -key tmp.root.key -cert tmp.root.cert -ospkg tmp.pkg.json >/dev/null
    stmgr keygen certificate -rootKey tmp.root.key -rootCert tmp.root.cert -leafKey tmp.sign.key.pub -certOut tmp.sign.cert
    STMGR=$STMGR ssh-agent sh -ec '
        ssh-add -q tmp.sign.key
        rm tmp.sign.key
        "$STMGR" ospkg sign -key tmp.sign.key.pub -cert tmp.sign.cert -ospkg tmp.pkg.json >/dev/null' ||
        die "signing through ssh-agent failed"
    [ "$(json tmp.pkg.json 'len(d["certificates"])')" = 2 ] || die "number of certificates"
    [ "$(json tmp.pkg.json 'len(d["signatures"])')" = 2 ] || die "number of signatures"
    stmgr trustpolicy check '{ "ospkg_signature_threshold": 2, "ospkg_fetch_method": "network" }' >trust_policy.json
    cp -a tmp.root.cert ospkg_signing_root.pem
    stmgr ospkg verify -trustPolicy . -ospkg tmp.pkg.json >/dev/null || die "verify -trustPolicy refused"
    stmgr ospkg verify -rootCerts ospkg_signing_root.pem -ospkg tmp.pkg.json >/dev/null || die "verify -rootCerts refused"
}

uki_create() {
    # upstream passes a text file as -kernel; systemd-stub can only start an EFI
    # program, so stmgr-rs refuses that by name and the rest runs with a real EFI
    # kernel (the one the QEMU tests boot)
    echo "A dummmy kernel & initramfs" > tmp.data
    ! stmgr uki create -format uki -initramfs tmp.data -kernel tmp.data -out tmp.text 2>tmp.err ||
        die "a text file was accepted as kernel"
    grep -qi "EFI" tmp.err || die "unexpected error: $(cat tmp.err)"
    [ -n "${UKI_KERNEL:-}" ] || die "UKI_KERNEL (an EFI-stub kernel) is not set"
    local k=$UKI_KERNEL format
    stmgr uki create -format iso -initramfs tmp.data -kernel "$k" -out tmp.pkg.iso >/dev/null
    is_iso tmp.pkg.iso
    rm -f tmp.pkg.iso
    stmgr uki create -format uki -initramfs tmp.data -kernel "$k" -out tmp.pkg.uki >/dev/null
    is_pe tmp.pkg.uki
    rm -f tmp.pkg.uki
    for format in "iso,uki" "uki,iso"; do
        stmgr uki create -format "$format" -initramfs tmp.data -kernel "$k" -out tmp.pkg >/dev/null
        is_uki_and_iso() { is_pe tmp.pkg.uki && is_iso tmp.pkg.iso; }
        is_uki_and_iso
        rm -f tmp.pkg.uki tmp.pkg.iso
    done
    openssl req -quiet -newkey rsa:4096 -nodes -keyout tmp-db-key.pem -new -x509 -sha256 -days 10 \
        -subj "/O=Organism/" -out tmp-db-cert.pem 2>/dev/null
    stmgr uki create -format uki -initramfs tmp.data -kernel "$k" -out tmp.pkg.uki \
        -signcert tmp-db-cert.pem -signkey tmp-db-key.pem >/dev/null
    is_pe tmp.pkg.uki
    sbverify --cert tmp-db-cert.pem tmp.pkg.uki >/dev/null 2>&1 || die "sbverify refused the signed UKI"
    stmgr uki to-iso -in tmp.pkg.uki >/dev/null
    is_iso tmp.pkg.iso
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
pass=0; failed=()
for case in cert_keygen cert_openssl cert_ssh cert_agent hostconfig_check ospkg_create ospkg_sign uki_create; do
    d=$TOP/$case
    mkdir -p "$d"
    # errexit holds only outside a condition: run the case, then look at its status
    (set -e; cd "$d"; $case) >"$TOP/$case.log" 2>&1
    if [ $? = 0 ]; then
        pass=$((pass + 1)); echo "PASS ${case//_/-}"
    else
        failed+=("$case"); echo "FAIL ${case//_/-}:"; sed 's/^/    /' "$TOP/$case.log"
    fi
done
echo "upstream stmgr scripts: $pass passed, ${#failed[@]} failed"
[ ${#failed[@]} = 0 ]
