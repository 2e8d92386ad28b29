# Shell builders shared by the QEMU scenarios (integration-tests/harness.py calls
# them), scripts/demo.sh, scripts/bench-boot.sh and scripts/min-ram.sh: the binaries,
# a PKI, signed test OS packages, trust policies, stboot initramfs images, kernels
# with an embedded initramfs, EFI images; nginx on 127.0.0.1 and a simple QEMU boot
# for the scripts. Source it; set W (work dir) first.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${W:=$ROOT/target/it}"
MUSL=x86_64-unknown-linux-musl
STBOOT=$ROOT/target/$MUSL/release/stboot
STMGR=$ROOT/target/$MUSL/release/stmgr

log() { printf '%s [it] %s\n' "$(date +%T)" "$*" >&2; }

build_all() {
    export PATH="$HOME/.cargo/bin:$PATH"
    command -v x86_64-linux-musl-gcc >/dev/null || export CC_x86_64_unknown_linux_musl=musl-gcc
    log "building stboot (static, $MUSL, reproducibly: scripts/build-stboot.sh) and stmgr (the same way)"
    bash "$ROOT/scripts/build-stboot.sh" --with-stmgr >/dev/null
    kernel_paths || return 1
    log "kernel $KERNEL; stboot $(stat -c %s "$STBOOT") bytes"
}

# Debian's kernel and the modules the scenarios load (unpacked by scripts/setup.sh)
kernel_paths() {
    KERNEL=$(ls "$ROOT"/target/kernel/boot/vmlinuz-* | head -1)
    E1000=$(find "$ROOT"/target/kernel/lib/modules -name e1000.ko | head -1)
    TLS_KO=$(find "$ROOT"/target/kernel/lib/modules -path '*/net/tls/tls.ko' | head -1)
    BONDING_KO=$(find "$ROOT"/target/kernel/lib/modules -name bonding.ko | head -1)
    [ -f "$KERNEL" ] && [ -f "$E1000" ] || { log "kernel or e1000.ko missing: run scripts/setup.sh"; return 1; }
}

# Test OS: Debian's kernel plus a tiny initramfs whose init prints a marker.
make_testos() {
    mkdir -p "$W/testos/root/proc" "$W/testos/root/dev" "$W/testos/root/sys"
    musl-gcc -static -Os -o "$W/testos/root/init" "$ROOT/integration-tests/testos-init.c"
    (cd "$W/testos/root" && find . -print0 | sort -z | cpio --null -o -H newc --reproducible --quiet | gzip -9n) > "$W/testos/initrd.gz"
}

# PKI: signing root with three leaves, a second root with two leaves; TLS CAs.
make_pki() {
    local d=$W/pki
    mkdir -p "$d" && cd "$d"
    "$STMGR" keygen certificate -isCA -certOut root.pem -keyOut root.key >/dev/null
    for i in 1 2 3; do
        "$STMGR" keygen certificate -rootCert root.pem -rootKey root.key -certOut leaf$i.pem -keyOut leaf$i.key >/dev/null
    done
    "$STMGR" keygen certificate -isCA -certOut other-root.pem -keyOut other-root.key >/dev/null
    for i in 1 2; do
        "$STMGR" keygen certificate -rootCert other-root.pem -rootKey other-root.key -certOut other$i.pem -keyOut other$i.key >/dev/null
    done
    # TLS: a pinned CA and an unpinned one, each with a server certificate for 10.0.2.2
    # (and for the IPv6 scenarios' server, 2001:db8::1 and os.test, in a namespace)
    for ca in tls-ca rogue-ca; do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $ca.key -out $ca.pem \
            -subj "/CN=stboot-rs test $ca" -days 30 -addext basicConstraints=critical,CA:TRUE 2>/dev/null
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $ca-server.key \
            -out $ca-server.csr -subj "/CN=10.0.2.2" 2>/dev/null
        printf 'subjectAltName=IP:10.0.2.2,IP:127.0.0.1,IP:2001:db8::1,DNS:os.test\nextendedKeyUsage=serverAuth\n' > san.cnf
        openssl x509 -req -in $ca-server.csr -CA $ca.pem -CAkey $ca.key -CAcreateserial -days 30 \
            -extfile san.cnf -out $ca-server.pem 2>/dev/null
    done
    cd - >/dev/null
}

# make_pkg NAME CMDLINE SIGNER... (signers are pki basenames: leaf1, other2, ...)
make_pkg() {
    local name=$1 cmdline=$2; shift 2
    mkdir -p "$W/www"
    "$STMGR" ospkg create -kernel "${PKG_KERNEL:-$KERNEL}" -initramfs "${PKG_INITRD:-$W/testos/initrd.gz}" -cmdline "$cmdline" \
        -label "test OS $name" -url "$name.zip" ${PKG_VERSION:+-version "$PKG_VERSION"} -out "$W/www/$name" >/dev/null
    for s in "$@"; do
        "$STMGR" ospkg sign -key "$W/pki/$s.key" -cert "$W/pki/$s.pem" -ospkg "$W/www/$name" >/dev/null
    done
}

# make_big_pkg NAME MIB: a package signed by leaf1 and leaf2 whose initramfs is MIB
# MiB of random bytes (incompressible: the archive is as large)
make_big_pkg() {
    mkdir -p "$W/www"
    head -c "$2M" /dev/urandom > "$W/$1.initrd"
    "$STMGR" ospkg create -kernel "$KERNEL" -initramfs "$W/$1.initrd" -cmdline "console=ttyS0 testos=$1" \
        -label "test OS $1" -url "$1.zip" -out "$W/www/$1" >/dev/null || return 1
    rm -f "$W/$1.initrd"
    for s in leaf1 leaf2; do
        "$STMGR" ospkg sign -key "$W/pki/$s.key" -cert "$W/pki/$s.pem" -ospkg "$W/www/$1" >/dev/null || return 1
    done
}

make_packages() {
    local c="console=ttyS0 panic=-1"
    make_pkg good "$c testos=good" leaf1 leaf2 leaf3
    make_pkg second "$c testos=second" leaf2 leaf3
    make_pkg fewsig "$c testos=fewsig" leaf1
    make_pkg wrongroot "$c testos=wrongroot" other1 other2
    make_pkg badsig "$c testos=badsig" leaf1 leaf2
    # sigsum: one plain signature (leaf1) and a Sigsum proof by leaf2 from an
    # independent test log with three witnesses (integration-tests/sigsum-log.py),
    # attached with stmgr ospkg sigsum; $W/sigsum.policy trusts that log, 2 of 3
    make_pkg sigsum "$c testos=sigsum" leaf1
    python3 "$ROOT/integration-tests/sigsum-log.py" "$W/sigsum-log" "$W/www/sigsum.zip" "$W/pki/leaf2.key" \
        "$W/www/sigsum.zip.proof" --policy-out "$W/sigsum.policy" --size 5 --quorum 2
    "$STMGR" ospkg sigsum -proof "$W/www/sigsum.zip.proof" -cert "$W/pki/leaf2.pem" -ospkg "$W/www/sigsum" >/dev/null
    # flip one bit in each signature of badsig
    python3 - "$W/www/badsig.json" <<'PY'
import base64, json, sys
p = sys.argv[1]; d = json.load(open(p))
def flip(s):
    b = bytearray(base64.b64decode(s)); b[10] ^= 1; return base64.b64encode(bytes(b)).decode()
d["signatures"] = [flip(s) for s in d["signatures"]]
open(p, "w").write(json.dumps(d, indent=2))
PY
}

# The attest package: the test OS with the static stmgr (/bin/stmgr) and a server
# key file (/etc/wg0.pub, also $W/attest.wg0.pub for the verifier), signed by leaf1
# and logged by leaf2 in the test Sigsum log at index 6 (the sigsum package's log,
# so the sigsum trust policy counts the proof)
make_attest_pkg() {
    local d=$W/testos-attest
    rm -rf "$d" && mkdir -p "$d" && cp -a "$W/testos/root" "$d/root"
    mkdir -p "$d/root/bin" "$d/root/etc"
    cp "$STMGR" "$d/root/bin/stmgr"
    printf 'wg0 public key of the attest test OS\n' > "$d/root/etc/wg0.pub"
    cp "$d/root/etc/wg0.pub" "$W/attest.wg0.pub"
    (cd "$d/root" && find . -print0 | sort -z | cpio --null -o -H newc --reproducible --quiet | gzip -9n) > "$d/initrd.gz"
    PKG_INITRD=$d/initrd.gz make_pkg attest "console=ttyS0 panic=-1 testos=attest" leaf1
    python3 "$ROOT/integration-tests/sigsum-log.py" "$W/sigsum-log" "$W/www/attest.zip" "$W/pki/leaf2.key" \
        "$W/www/attest.zip.proof" --size 9 --index 6 --quorum 2
    "$STMGR" ospkg sigsum -proof "$W/www/attest.zip.proof" -cert "$W/pki/leaf2.pem" -ospkg "$W/www/attest" >/dev/null
}

# Versioned packages (rollback protection): v1 and v2, signed by leaf1 and leaf2
make_versioned_pkgs() {
    PKG_VERSION=1 make_pkg v1 "console=ttyS0 panic=-1 testos=v1" leaf1 leaf2
    PKG_VERSION=2 make_pkg v2 "console=ttyS0 panic=-1 testos=v2" leaf1 leaf2
}

# The TPM floor packages: versions 1 and 2 of the test OS with the static stmgr and
# /etc/floor-confirm, so that once booted it confirms the boot (stmgr tpm floor
# raise, to the version in /stboot/report.json)
make_floor_pkgs() {
    local d=$W/testos-floor
    rm -rf "$d" && mkdir -p "$d" && cp -a "$W/testos/root" "$d/root"
    mkdir -p "$d/root/bin" "$d/root/etc"
    cp "$STMGR" "$d/root/bin/stmgr"
    : > "$d/root/etc/floor-confirm"
    (cd "$d/root" && find . -print0 | sort -z | cpio --null -o -H newc --reproducible --quiet | gzip -9n) > "$d/initrd.gz"
    PKG_INITRD=$d/initrd.gz PKG_VERSION=1 make_pkg fv1 "console=ttyS0 panic=-1 testos=fv1" leaf1 leaf2
    PKG_INITRD=$d/initrd.gz PKG_VERSION=2 make_pkg fv2 "console=ttyS0 panic=-1 testos=fv2" leaf1 leaf2
}

# A UKI as the OS package (stmgr ospkg create -uki), made as a MANGOS-style build
# makes one: Debian's systemd-stub with Debian's kernel, the test OS, its command line
# and os-release, and a PCR 11 policy signed by systemd-measure (an RSA key; the
# policy as .pcrsig, the key as .pcrpkey). systemd-measure 252 signs only with a TPM
# at hand: a swtpm serves for the run. $W/uki-pkg/pcr11 is what systemd-measure
# calculates for the UKI's sections as binutils' objcopy extracts them.
make_uki_pkg() {
    local d=$W/uki-pkg m=/usr/lib/systemd/systemd-measure c="console=ttyS0 panic=-1 testos=uki-package" s
    rm -rf "$d" && mkdir -p "$d/tpm"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/pcr.key" 2>/dev/null
    openssl pkey -in "$d/pcr.key" -pubout -out "$d/pcr.pem"
    printf '%s\n' "$c" > "$d/cmdline"   # stmgr uki create ends .cmdline with a newline
    printf 'ID=testos\nPRETTY_NAME="stboot-rs test OS in a UKI"\n' > "$d/osrel"
    swtpm socket --tpm2 --tpmstate dir="$d/tpm" --server type=unixio,path="$d/tpm/cmd" \
        --ctrl type=unixio,path="$d/tpm/cmd.ctrl" --flags not-need-init,startup-clear --daemon --pid file="$d/tpm/pid"
    "$m" sign --linux="$KERNEL" --osrel="$d/osrel" --cmdline="$d/cmdline" --initrd="$W/testos/initrd.gz" \
        --pcrpkey="$d/pcr.pem" --bank=sha256 --private-key="$d/pcr.key" --public-key="$d/pcr.pem" \
        --phase= --phase=enter-initrd --tpm2-device="swtpm:path=$d/tpm/cmd" > "$d/pcrsig.json" 2>"$d/sign.log" || { cat "$d/sign.log" >&2; kill "$(cat "$d/tpm/pid")"; return 1; }
    kill "$(cat "$d/tpm/pid")"
    "$STMGR" uki create -format uki -kernel "$KERNEL" -initramfs "$W/testos/initrd.gz" -cmdline "$c" \
        -osrelease "$d/osrel" -section ".pcrpkey:$d/pcr.pem" -section ".pcrsig:$d/pcrsig.json" -out "$d/os" >/dev/null
    "$STMGR" ospkg create -uki "$d/os.uki" -label "test OS uki-package" -url uki-package.zip \
        -out "$W/www/uki-package" >/dev/null
    for s in leaf1 leaf2; do
        "$STMGR" ospkg sign -key "$W/pki/$s.key" -cert "$W/pki/$s.pem" -ospkg "$W/www/uki-package" >/dev/null
    done
    local args=()
    for s in linux osrel cmdline initrd pcrpkey; do
        objcopy --dump-section ".$s=$d/sec.$s" "$d/os.uki" "$d/scratch.efi"
        args+=("--$s=$d/sec.$s")
    done
    "$m" calculate "${args[@]}" --bank=sha256 --phase= | sed -n 's/^11:sha256=//p' > "$d/pcr11"
    [ -s "$d/pcr11" ]
}

# The test OS of make_uki_pkg as a UKI built by systemd's ukify 254 around
# systemd-stub 254 (bookworm-backports, unpacked into target/systemd-254 by
# scripts/setup.sh), Secure Boot signed by sbsign and packaged: uki-db.json with the
# enrolled db key (make_secureboot_keys), uki-stranger.json with the stranger's.
# $W/uki-pkg/pcr11-254: systemd-measure 254's PCR 11 for its sections (stub 254 also
# measures .uname and .sbat).
make_uki_signed_pkgs() {
    local d=$W/uki-pkg sd=$ROOT/target/systemd-254/bin k s args=()
    "$sd/ukify" build --linux="$KERNEL" --initrd="$W/testos/initrd.gz" --cmdline="@$d/cmdline" \
        --os-release="@$d/osrel" --uname=6.1.0-testos --pcrpkey="$d/pcr.pem" --stub="$sd/linuxx64.efi.stub" \
        --output="$d/os-254.uki" >"$d/ukify.log" 2>&1 || { cat "$d/ukify.log" >&2; return 1; }
    for s in linux osrel cmdline initrd uname sbat pcrpkey; do
        objcopy --dump-section ".$s=$d/sec254.$s" "$d/os-254.uki" "$d/scratch.efi"
        args+=("--$s=$d/sec254.$s")
    done
    "$sd/systemd-measure" calculate "${args[@]}" --bank=sha256 --phase= | sed -n 's/^11:sha256=//p' > "$d/pcr11-254"
    [ -s "$d/pcr11-254" ]
    for k in db stranger; do
        sbsign --key "$W/sb/$k.key" --cert "$W/sb/$k.crt" --output "$d/os-$k.uki" "$d/os-254.uki" 2>/dev/null
        "$STMGR" ospkg create -uki "$d/os-$k.uki" -label "test OS uki-$k" -url "uki-$k.zip" \
            -out "$W/www/uki-$k" >/dev/null
        for s in leaf1 leaf2; do
            "$STMGR" ospkg sign -key "$W/pki/$s.key" -cert "$W/pki/$s.pem" -ospkg "$W/www/uki-$k" >/dev/null
        done
    done
}

# Age-encrypted packages (st-1.2), encrypted with Debian's age: $W/age/machine.txt is
# the identity the stboot under test holds, other.txt another machine's. enc is
# encrypted to this machine, encother to the other one only; the plaintext stays in
# $W/plain (for expected-pcrs.py).
make_encrypted_packages() {
    local c="console=ttyS0 panic=-1" name to
    mkdir -p "$W/age" "$W/plain"
    for k in machine other; do
        rm -f "$W/age/$k.txt"
        age-keygen -o "$W/age/$k.txt" 2>/dev/null
    done
    for name in enc encother; do
        make_pkg $name "$c testos=$name" leaf1 leaf2
        to=machine; [ $name = encother ] && to=other
        for f in $name.json $name.zip; do
            mv "$W/www/$f" "$W/plain/$f"
            age -e -i "$W/age/$to.txt" -o "$W/www/$f" "$W/plain/$f"
        done
    done
}

# A kernel the running kernel refuses to kexec (ENOEXEC) although it is a signed
# bzImage: Debian's kernel with the boot header's xloadflags (0x236) cleared, so
# kexec_bzImage64_probe finds no 64-bit entry point.
make_unbootable_kernel() {
    cp "$KERNEL" "$W/badkernel"
    printf '\0\0' | dd of="$W/badkernel" bs=1 seek=$((0x236)) conv=notrunc status=none
    PKG_KERNEL=$W/badkernel make_pkg badkernel "console=ttyS0 panic=-1 testos=badkernel" leaf1 leaf2
}

# nginx_conf DIR PORT CERTNAME [ADDRESS]: DIR/nginx.conf for nginx in the foreground
# serving $W/www over TLS on ADDRESS:PORT (default 127.0.0.1) with the server
# certificate of the PKI's CA CERTNAME; logs and pid in DIR (integration-tests/harness.py
# writes its servers' configurations with it too)
nginx_conf() {
    local d=$1 port=$2 cert=$3 listen=${4:-127.0.0.1}
    mkdir -p "$d/logs"
    cat > "$d/nginx.conf" <<NGX
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/logs/error.log;
events { worker_connections 64; }
http {
    access_log $d/logs/access.log;
    client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d; uwsgi_temp_path $d; scgi_temp_path $d;
    types { application/json json; application/zip zip; }
    server {
        listen $listen:$port ssl;
        ssl_certificate $W/pki/$cert-server.pem;
        ssl_certificate_key $W/pki/$cert-server.key;
        root $W/www;
    }
}
NGX
}

# start_nginx PORT CERTNAME [NAME]: nginx on 127.0.0.1:PORT (nginx_conf), in the
# background (scripts/demo.sh, bench-boot.sh, min-ram.sh); stop_nginx NAME
start_nginx() {
    local port=$1 cert=$2 name=${3:-nginx-$1}
    local d=$W/$name
    nginx_conf "$d" "$port" "$cert"
    nginx -c "$d/nginx.conf" -p "$d" &
    echo $! > "$d/launcher.pid"
    for _ in $(seq 50); do
        bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && return 0
        sleep 0.1
    done
    log "nginx on $port did not start"; cat "$d/logs/error.log" >&2; return 1
}

stop_nginx() {
    local d=$W/${1}
    [ -f "$d/nginx.pid" ] && kill "$(cat "$d/nginx.pid")" 2>/dev/null || true
    [ -f "$d/launcher.pid" ] && kill "$(cat "$d/launcher.pid")" 2>/dev/null || true
}

# Trust policy dir: NAME THRESHOLD METHOD
make_trust_policy() {
    local d=$W/tp-$1
    mkdir -p "$d"
    printf '{"ospkg_signature_threshold": %s, "ospkg_fetch_method": "%s"}\n' "$2" "$3" > "$d/trust_policy.json"
    cp "$W/pki/root.pem" "$d/ospkg_signing_root.pem"
    cp "$W/pki/tls-ca.pem" "$d/tls_roots.pem"
    echo "$d"
}

# make_initramfs NAME TRUST_DIR HOSTCONFIG_JSON|"" [extra stmgr args...]
# (MODULES="" for a kernel with the NIC driver built in; default: Debian's e1000.ko)
make_initramfs() {
    local name=$1 tp=$2 hc=$3; shift 3
    local args=(initramfs build -stboot "$STBOOT" -trustPolicy "$tp" -out "$W/$name.cpio.gz")
    [ -n "${MODULES-$E1000}" ] && args+=(-module "${MODULES-$E1000}")
    if [ -n "$hc" ]; then
        printf '%s\n' "$hc" > "$W/$name.host.json"
        args+=(-hostConfig "$W/$name.host.json")
    fi
    "$STMGR" "${args[@]}" "$@" >/dev/null
}

# embed_kernel NAME: the project's LinuxBoot kernel (kernel-config/) with
# $W/NAME.cpio.gz embedded, as $W/NAME.bzImage: one file is the whole payload
embed_kernel() {
    bash "$ROOT/scripts/build-kernel.sh" "$W/$1.cpio.gz" "$W/$1.bzImage" >/dev/null 2>"$W/$1.kernel.log" ||
        { cat "$W/$1.kernel.log" >&2; log "building the LinuxBoot kernel for $1 failed"; return 1; }
}

# boot_qemu NAME [qemu args...] (scripts/demo.sh, scripts/min-ram.sh; the QEMU
# scenarios boot through integration-tests/harness.py): boots $W/NAME.bzImage
# (embed_kernel), else Debian's kernel with $W/NAME.cpio.gz beside it (-initrd), with
# one e1000 NIC on QEMU's user network and a fresh swtpm; console to $W/NAME.console.
# STOP_AT: end the run as soon as this console line appears.
boot_qemu() {
    local name=$1; shift
    local payload=(-kernel "$KERNEL" -initrd "$W/$name.cpio.gz")
    [ -f "$W/$name.bzImage" ] && payload=(-kernel "$W/$name.bzImage")
    payload+=(-append "console=ttyS0 panic=-1 ${APPEND:-stboot.boot_attempts=1}")
    local tpm=$W/tpm-$name
    rm -rf "$tpm"; mkdir -p "$tpm"
    swtpm socket --tpm2 --tpmstate dir="$tpm" --ctrl type=unixio,path="$tpm/sock" --terminate >/dev/null 2>&1 &
    local swtpm=$!
    for _ in $(seq 50); do [ -S "$tpm/sock" ] && break; sleep 0.1; done
    # (emptied, not removed: scripts/demo.sh follows it with tail -f)
    rm -f "$W/$name.pid" "$W/$name.done"
    : > "$W/$name.console"
    if [ -n "${STOP_AT:-}" ]; then
        (while [ ! -f "$W/$name.done" ]; do
            if [ -s "$W/$name.pid" ] && grep -aqF -- "$STOP_AT" "$W/$name.console" 2>/dev/null; then
                kill "$(cat "$W/$name.pid" 2>/dev/null)" 2>/dev/null
                break
            fi
            sleep 0.2
        done) &
    fi
    timeout "${QEMU_TIMEOUT:-150}" qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 1 -pidfile "$W/$name.pid" \
        -display none -monitor none -serial "file:$W/$name.console" -no-reboot "${payload[@]}" -nic user,model=e1000 \
        -chardev socket,id=chrtpm,path="$tpm/sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
        "$@" </dev/null >"$W/$name.qemu.log" 2>&1 || true
    kill "$swtpm" 2>/dev/null
    touch "$W/$name.done"
}

# make_esp OUT EFI_PROGRAM: a FAT EFI system partition image with the program as the
# removable-media boot path EFI/BOOT/BOOTX64.EFI (mtools; no root, no loop device)
make_esp() {
    rm -f "$1"
    truncate -s $(( ($(stat -c %s "$2") / 1048576 + 8) ))M "$1"
    mformat -i "$1" :: && mmd -i "$1" ::/EFI ::/EFI/BOOT && mcopy -i "$1" "$2" ::/EFI/BOOT/BOOTX64.EFI
}

# make_secureboot_keys: RSA keys and certificates for PK, KEK and db, the OVMF
# variable store $W/sb/enrolled.vars with them enrolled and Secure Boot on
# (virt-firmware), and a stranger's key that is not enrolled
make_secureboot_keys() {
    local d=$W/sb owner=f401f2c1-b005-4be0-8cee-f2e5945bcbe7 n
    mkdir -p "$d"
    for n in pk kek db stranger; do
        openssl req -new -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=stboot-rs test Secure Boot $n/" \
            -keyout "$d/$n.key" -out "$d/$n.crt" >/dev/null 2>&1 || { log "openssl could not make the $n key"; return 1; }
    done
    "$ROOT/target/venv/bin/virt-fw-vars" -i /usr/share/OVMF/OVMF_VARS_4M.fd -o "$d/enrolled.vars" \
        --set-pk $owner "$d/pk.crt" --add-kek $owner "$d/kek.crt" --add-db $owner "$d/db.crt" --secure-boot >/dev/null 2>&1
}

# QEMU arguments for UEFI firmware with variable store $1
ovmf_args() {
    echo "-machine q35 -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd -drive if=pflash,format=raw,unit=1,file=$1"
}
