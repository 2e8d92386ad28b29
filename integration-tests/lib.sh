# Shared by integration-tests/run.sh and scripts/demo.sh: builds the binaries, a PKI,
# signed test OS packages, HTTPS servers on 127.0.0.1 and stboot initramfs images,
# and boots them in QEMU. Source it; set W (work dir) first.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${W:=$ROOT/target/it}"
MUSL=x86_64-unknown-linux-musl
STBOOT=$ROOT/target/$MUSL/release/stboot
STMGR=$ROOT/target/release/stmgr

log() { printf '%s [it] %s\n' "$(date +%T)" "$*" >&2; }

build_all() {
    export PATH="$HOME/.cargo/bin:$PATH"
    command -v x86_64-linux-musl-gcc >/dev/null || export CC_x86_64_unknown_linux_musl=musl-gcc
    log "building stboot (static, $MUSL, reproducibly: scripts/build-stboot.sh) and stmgr"
    bash "$ROOT/scripts/build-stboot.sh" >/dev/null
    (cd "$ROOT" && cargo build --quiet --release --bin stmgr)
    KERNEL=$(ls "$ROOT"/target/kernel/boot/vmlinuz-* | head -1)
    E1000=$(find "$ROOT"/target/kernel/lib/modules -name e1000.ko | head -1)
    TLS_KO=$(find "$ROOT"/target/kernel/lib/modules -path '*/net/tls/tls.ko' | head -1)
    BONDING_KO=$(find "$ROOT"/target/kernel/lib/modules -name bonding.ko | head -1)
    [ -f "$KERNEL" ] && [ -f "$E1000" ] || { log "kernel or e1000.ko missing: run scripts/setup.sh"; return 1; }
    log "kernel $KERNEL; stboot $(stat -c %s "$STBOOT") bytes"
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
    "$STMGR" ospkg create -kernel "${PKG_KERNEL:-$KERNEL}" -initramfs "$W/testos/initrd.gz" -cmdline "$cmdline" \
        -label "test OS $name" -url "$name.zip" -out "$W/www/$name" >/dev/null
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

# The misbehaving server (integration-tests/hostile-server.py) on 127.0.0.1:
# TLS_PORT with the pinned CA's server certificate, serving $W/www.
start_hostile() {
    local port=$1
    python3 "$ROOT/integration-tests/hostile-server.py" --tls-port "$port" --http-port $((port + 1)) \
        --silent-port $((port + 2)) --cert "$W/pki/tls-ca-server.pem" --key "$W/pki/tls-ca-server.key" \
        --root "$W/www" --lifetime 1800 </dev/null > "$W/hostile.ready" 2> "$W/hostile.log" &
    echo $! > "$W/hostile.pid"
    for _ in $(seq 50); do
        grep -q ready "$W/hostile.ready" 2>/dev/null && return 0
        sleep 0.1
    done
    log "hostile server on $port did not start"; cat "$W/hostile.log" >&2; return 1
}

stop_hostile() {
    [ -f "$W/hostile.pid" ] && kill "$(cat "$W/hostile.pid")" 2>/dev/null || true
}

# nginx on 127.0.0.1: PORT CERTNAME (from pki) [NAME]. With NS set, nginx runs in
# that network namespace and listens on $LISTEN there (the IPv6 scenarios).
start_nginx() {
    local port=$1 cert=$2 name=${3:-nginx-$1}
    local d=$W/$name
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
        listen ${LISTEN:-127.0.0.1}:$port ssl;
        ssl_certificate $W/pki/$cert-server.pem;
        ssl_certificate_key $W/pki/$cert-server.key;
        root $W/www;
    }
}
NGX
    local in=() addr=127.0.0.1
    [ -n "${NS:-}" ] && in=(ip netns exec "$NS") && addr=${LISTEN//[\[\]]/}
    "${in[@]}" nginx -c "$d/nginx.conf" -p "$d" &
    echo $! > "$d/launcher.pid"
    for _ in $(seq 50); do
        "${in[@]}" bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null && return 0
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

# boot NAME [qemu args...]: boots the coreboot ROM $W/NAME.rom if there is one, else
# $W/NAME.bzImage (embed_kernel), else Debian's kernel with $W/NAME.cpio.gz beside
# it; console to $W/NAME.console
boot_qemu() {
    local name=$1; shift
    local payload=(-kernel "$KERNEL" -initrd "$W/$name.cpio.gz")
    [ -f "$W/$name.bzImage" ] && payload=(-kernel "$W/$name.bzImage")
    payload+=(-append "console=ttyS0 panic=-1 ${APPEND:-stboot.boot_attempts=1}")
    # the ROM's payload and the UKI carry their own command line
    [ -f "$W/$name.rom" ] && payload=(-machine q35 -bios "$W/$name.rom")
    if [ -f "$W/$name.iso" ]; then
        cp /usr/share/OVMF/OVMF_VARS_4M.fd "$W/$name.vars"
        # shellcheck disable=SC2207
        payload=($(ovmf_args "$W/$name.vars") -cdrom "$W/$name.iso")
    fi
    if [ -f "$W/$name.esp" ]; then
        cp /usr/share/OVMF/OVMF_VARS_4M.fd "$W/$name.vars"
        # shellcheck disable=SC2207
        payload=($(ovmf_args "$W/$name.vars") -drive "file=$W/$name.esp,format=raw,if=virtio")
        # Secure Boot enforced: the firmware built with it and keys enrolled
        if [ -f "$W/$name.sbvars" ]; then
            cp "$W/$name.sbvars" "$W/$name.vars"
            payload=(-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on
                -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd
                -drive "if=pflash,format=raw,unit=1,file=$W/$name.vars" -drive "file=$W/$name.esp,format=raw,if=virtio")
        fi
    fi
    # one e1000 NIC on QEMU's user network, unless the scenario passes `-nic none`
    # (QEMU itself would keep an explicit -nic despite a later -nic none)
    local nic=(-nic user,model=e1000) a prev=
    for a in "$@"; do [ "$prev $a" = "-nic none" ] && nic=(); prev=$a; done
    local tpm=$W/tpm-$name
    rm -rf "$tpm"; mkdir -p "$tpm"
    # a UX identity in NV index 0x01420001, as stprov leaves it, written with tpm2-tools
    [ -f "$W/$name.identity" ] && { tpm_define_identity "$tpm" "$W/$name.identity" || return 1; }
    swtpm socket --tpm2 --tpmstate dir="$tpm" --ctrl type=unixio,path="$tpm/sock" >/dev/null 2>&1 &
    for _ in $(seq 50); do [ -S "$tpm/sock" ] && break; sleep 0.1; done
    # STOP_AT: end the run as soon as this console line appears (a firmware that
    # refused to boot waits for a key press forever)
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
    # CTRL_C_AT: the serial line is a socket an "operator" (serial-ctrl-c.py) types
    # Ctrl-C into as soon as this console line appears (and Ctrl-S, XOFF, at CTRL_S_AT
    # before it: a stray byte that must not stop the console)
    local serial=(-serial "file:$W/$name.console") keys=
    if [ -n "${CTRL_C_AT:-}" ]; then
        rm -f "$W/$name.serial"
        serial=(-chardev "socket,id=ser0,path=$W/$name.serial,server=on,wait=off"
            -serial chardev:ser0)
        python3 "$ROOT/integration-tests/serial-ctrl-c.py" "$W/$name.serial" "$CTRL_C_AT" "${QEMU_TIMEOUT:-150}" \
            "$W/$name.console" "${CTRL_S_AT:-}" 2>"$W/$name.keys.log" &
        keys=$!
    fi
    # QEMU_NETNS: QEMU runs in that network namespace (its tap NIC is there)
    local in=()
    [ -n "${QEMU_NETNS:-}" ] && in=(ip netns exec "$QEMU_NETNS")
    "${in[@]}" timeout "${QEMU_TIMEOUT:-150}" qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 1 -pidfile "$W/$name.pid" \
        -display none -monitor none "${serial[@]}" -no-reboot \
        "${payload[@]}" "${nic[@]}" \
        -chardev socket,id=chrtpm,path="$tpm/sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
        "$@" </dev/null >"$W/$name.qemu.log" 2>&1 || true
    [ -n "$keys" ] && wait "$keys"
    touch "$W/$name.done"
}

# tpm_define_identity STATE_DIR FILE: a fresh swtpm state whose NV index 0x01420001
# holds FILE's bytes (readable with the index's own empty authorization, as upstream
# reads it). swtpm serves tpm2-tools on a TCP port of 127.0.0.1 meanwhile.
tpm_define_identity() {
    local dir=$1 file=$2 port
    port=$((20000 + RANDOM % 20000))
    swtpm socket --tpm2 --tpmstate dir="$dir" --server type=tcp,port=$port,bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
    local pid=$! t="swtpm:host=127.0.0.1,port=$port"
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    tpm2_nvdefine -T "$t" 0x01420001 -C o -s "$(stat -c %s "$file")" -a "ownerwrite|ownerread|authwrite|authread" >/dev/null &&
        tpm2_nvwrite -T "$t" 0x01420001 -C o -i "$file" && tpm2_shutdown -T "$t"
    local rc=$?
    swtpm_ioctl --tcp 127.0.0.1:$((port + 1)) -s
    wait $pid
    [ $rc = 0 ] || log "defining the UX identity in swtpm failed"
    return $rc
}

# An OVMF variable store with the host configuration in STHostConfig (as stprov
# writes it: attributes NV|BS|RT, compact JSON). efivar_store OUT JSON
efivar_store() {
    local out=$1 json=$2
    local hex
    hex=$(printf '%s' "$json" | od -An -v -tx1 | tr -d ' \n')
    printf '{"version":2,"variables":[{"name":"STHostConfig","guid":"f401f2c1-b005-4be0-8cee-f2e5945bcbe7","attr":7,"data":"%s"}]}' "$hex" > "$out.json"
    "$ROOT/target/venv/bin/virt-fw-vars" -i /usr/share/OVMF/OVMF_VARS_4M.fd -o "$out" --set-json "$out.json" >/dev/null
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

# ipv6_net NAME DNSMASQ_ARGS...: the network namespace stit-NAME for an IPv6
# scenario: a bridge with 2001:db8::1/64 and the tap device tap0 that QEMU (run with
# QEMU_NETNS=stit-NAME and $(ipv6_nic)) attaches to; dnsmasq sends router
# advertisements (plus DNSMASQ_ARGS: a DHCPv6 range, ra-only, ...) and answers DNS for
# os.test with 2001:db8::1 (AAAA; its A query gets "no data": a REFUSED one, dnsmasq's
# answer without --local, makes musl's getaddrinfo fail as a whole); nginx serves $W/www on [2001:db8::1]:8443. There is no
# IPv4 on that link, and nothing leaves the namespace.
ipv6_net() {
    local name=$1 ns=stit-$1; shift
    ip netns del "$ns" 2>/dev/null || true
    ip netns add "$ns" && ip -n "$ns" link set lo up &&
        ip -n "$ns" link add br0 type bridge && ip -n "$ns" link set br0 up &&
        ip -n "$ns" addr add 2001:db8::1/64 dev br0 nodad &&
        ip -n "$ns" tuntap add dev tap0 mode tap && ip -n "$ns" link set tap0 master br0 &&
        ip -n "$ns" link set tap0 up || { log "$name: setting up namespace $ns failed"; return 1; }
    # (--bind-dynamic: br0 gets its link-local address, which dnsmasq advertises as DNS
    # server, only once QEMU opens tap0)
    ip netns exec "$ns" dnsmasq --interface=br0 --bind-dynamic --no-resolv --no-hosts \
        --host-record=os.test,2001:db8::1 --local=/test/ --enable-ra "$@" --conf-file=/dev/null --dhcp-leasefile=/dev/null \
        --pid-file="$W/$name.dnsmasq.pid" --log-facility="$W/$name.dnsmasq.log" --log-dhcp ||
        { log "$name: dnsmasq did not start"; return 1; }
    NS=$ns LISTEN="[2001:db8::1]" start_nginx 8443 tls-ca "$name-nginx"
}

ipv6_nic() { echo -nic none -netdev tap,id=t0,ifname=tap0,script=no,downscript=no -device e1000,netdev=t0; }

stop_ipv6_net() {
    stop_nginx "$1-nginx"
    [ -f "$W/$1.dnsmasq.pid" ] && kill "$(cat "$W/$1.dnsmasq.pid")" 2>/dev/null
    ip netns del "stit-$1" 2>/dev/null || true
}
