#!/usr/bin/env bash
# QEMU end-to-end scenarios: stboot as PID 1 under the project's LinuxBoot kernel
# (kernel-config/, the initramfs embedded, booted with `qemu -kernel` as firmware
# would), a real HTTPS server (nginx) on 127.0.0.1, real DHCP (QEMU's), real
# signatures. One scenario (debian-modules) boots Debian's generic kernel with the NIC
# driver, bonding and tls as modules; efivar-dhcp boots through OVMF and the EFI stub.
# With COREBOOT_DIR set, two more boot a coreboot ROM (scripts/build-rom.sh); without,
# they are reported as skipped. Each scenario is judged by the lines on the serial
# console. Two QEMUs at a time.
set -uo pipefail
W=${W:-$(cd "$(dirname "$0")/.." && pwd)/target/it}
rm -rf "$W"; mkdir -p "$W"
. "$(dirname "$0")/lib.sh"
set -e
build_all
make_testos
make_pki
make_packages
make_encrypted_packages
make_unbootable_kernel
make_big_pkg big 300
set +e

NET=$(make_trust_policy net 2 network)
INITRD=$(make_trust_policy initramfs 2 initramfs)
dhcp() { printf '{"network_mode":"dhcp","ospkg_pointer":"%s"}' "$1"; }
G=https://10.0.2.2:8443

# the LinuxBoot kernel has its NIC driver built in: no modules, except where a
# scenario asks for them
export MODULES=""
make_initramfs dhcp-good "$NET" "$(dhcp $G/good.json)"
make_initramfs static-good "$NET" '{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2","dns":["10.0.2.3"],"network_interfaces":[{"interface_name":"eth0"}],"ospkg_pointer":"'$G'/good.json"}'
make_initramfs bad-signature "$NET" "$(dhcp $G/badsig.json)"
make_initramfs too-few-signers "$NET" "$(dhcp $G/fewsig.json)"
make_initramfs wrong-root "$NET" "$(dhcp $G/wrongroot.json)"
# credentials in a URL (nginx ignores them) must never reach the console
make_initramfs fallback "$NET" "$(dhcp "$G/missing.json,https://10.0.2.2:8449/down.json,$G/badsig.json,https://stboot:s3cret@10.0.2.2:8443/second.json")"
make_initramfs tls-unpinned "$NET" "$(dhcp https://10.0.2.2:8444/good.json)"
# a typo in the only URL's scheme: a configuration error, reported once and not
# retried (booted with Debian's kernel: it fails before the network step)
make_initramfs config-typo "$NET" "$(dhcp htps://10.0.2.2:8443/good.json)"
make_initramfs server-late "$NET" "$(dhcp https://10.0.2.2:8445/good.json)"
make_initramfs efivar-dhcp "$NET" ""
# an unknown key (a typo): stboot warns and boots, as upstream ignores it
efivar_store "$W/efivar-dhcp.vars" '{"network_mode":"dhcp","ospkg_pointer":"'$G'/second.json","bonding_mod":""}'
# Debian's generic kernel: the NIC driver, bonding and kTLS come as modules, and so
# does virtio-blk, so stboot's kernel sees the disk attached below (which must be
# unchanged afterwards: no disk is ever written)
virtio=()
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
    virtio+=(-module "$(find "$ROOT"/target/kernel/lib/modules -name "$m.ko" | head -1)")
done
MODULES=$E1000 make_initramfs debian-modules "$NET" '{"network_mode":"dhcp","ospkg_pointer":"'$G'/good.json","bonding_mode":"active-backup","bond_name":"bond0","network_interfaces":[{"interface_name":"eth0"},{"interface_name":"eth1"}]}' \
    -module "$TLS_KO" -module "$BONDING_KO" "${virtio[@]}"
head -c 64M /dev/urandom > "$W/disk.raw"
DISK_BEFORE=$(sha256sum < "$W/disk.raw")
H=https://10.0.2.2:8446
make_initramfs stall-first "$NET" "$(dhcp "$H/stall-headers/good.json,$G/good.json")"
make_initramfs endless-first "$NET" "$(dhcp "$H/endless/good.json,$G/good.json")"
make_initramfs kexec-fails-first "$NET" "$(dhcp "$G/badkernel.json,$G/good.json")"
# too-big: a 300 MiB incompressible package in the 512 MiB guest, whose staging tmpfs
# (256 MiB) cannot hold what it unpacks to: refused from its Content-Length before
# the download, and the next URL boots
make_initramfs too-big "$NET" "$(dhcp "$G/big.json,$G/good.json")"
# a package whose threshold of 2 is met only when its Sigsum proof counts
SIGSUM=$(make_trust_policy sigsum 2 network)
cp "$W/sigsum.policy" "$SIGSUM/ospkg_trust_policy"
make_initramfs sigsum "$SIGSUM" "$(dhcp $G/sigsum.json)"
make_initramfs sigsum-no-policy "$NET" "$(dhcp $G/sigsum.json)"
# age: the first URL is encrypted for another machine (refused, with this machine's
# recipient as the remedy), the second for this one (decrypted, verified, booted)
ENC=$(make_trust_policy enc 2 network)
cp "$W/age/machine.txt" "$ENC/decryption_identities"
make_initramfs encrypted "$ENC" "$(dhcp "$G/encother.json,$G/enc.json")"
# and this machine has a UX identity in its TPM (NV index 0x01420001, NUL-padded as
# a fixed-size index may be): it is measured into PCR 14
printf 'rack-7 \xc3\xa9\0\0' > "$W/encrypted.identity"
# attest-retry: the trust policy moves the measurements to PCRs 8, 9 and 15
# (measurement_pcrs), and the boot that succeeds comes after failures: in attempt 1
# kexec refuses URL 1's (signed) kernel and URL 2's server is down; in attempt 2 URL 1
# fails again and URL 2, now up, boots. The log must still replay exactly.
PCRTP=$(make_trust_policy pcrs 2 network)
printf '{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network", "measurement_pcrs": {"detail": 8, "authority": 9, "identity": 15}}\n' \
    > "$PCRTP/trust_policy.json"
make_initramfs attest-retry "$PCRTP" "$(dhcp "$G/badkernel.json,https://10.0.2.2:8450/good.json")"
# stmgr tpm predict, before any boot: the PCRs the booted OS must read
predict() { "$STMGR" tpm predict "$@" | tr '\n' ' ' | sed 's/PCR/pcr/g; s/ $//'; }
PREDICTED_GOOD=$(predict -trustPolicy "$NET" -ospkg "$W/www/good")
PREDICTED_ENC=$(predict -trustPolicy "$ENC" -ospkg "$W/plain/enc" -identity "rack-7 é")
PREDICTED_MOVED=$(predict -trustPolicy "$PCRTP" -ospkg "$W/www/good")
for p in "$PREDICTED_GOOD" "$PREDICTED_ENC"; do
    [[ $p =~ ^pcr12=[0-9a-f]{64}\ pcr13=[0-9a-f]{64}\ pcr14=[0-9a-f]{64}$ ]] || { log "stmgr tpm predict gave: $p"; exit 1; }
done
[[ $PREDICTED_MOVED =~ ^pcr8=[0-9a-f]{64}\ pcr9=[0-9a-f]{64}\ pcr15=[0-9a-f]{64}$ ]] || { log "stmgr tpm predict gave: $PREDICTED_MOVED"; exit 1; }
EXPECTED_MOVED=$(python3 "$(dirname "$0")/expected-pcrs.py" "$W/www/good" "$PCRTP") || exit 1
# provisioning: the initramfs carries /ospkg/provision.{json,zip}; an operator types
# Ctrl-C at the prompt (provision-ctrl-c), or the normal boot fails every attempt
# for want of a network (provision-fallback): both boot the provisioning package
make_pkg provision "console=ttyS0 panic=-1 testos=provision" leaf1 leaf3
for s in provision-ctrl-c provision-fallback; do
    make_initramfs $s "$NET" "$(dhcp $G/good.json)" -ospkg "$W/www/provision"
done
# vlan: the host configuration asks for VLAN 7; eth0 is the trunk port of
# vlan-switch.py, which passes only frames tagged 7 on to QEMU's user network, and
# eth1 leads nowhere (carrier, but no DHCP server): eth0.7 must win the DHCP race and
# the console must say where eth1.7 stood. vlan-untagged: the same switch, no vlan_id
make_initramfs vlan "$NET" '{"network_mode":"dhcp","ospkg_pointer":"'$G'/good.json","vlan_id":7}'
make_initramfs vlan-untagged "$NET" "$(dhcp $G/good.json)"
# vlan_net PORT: -nic none, the two NICs and the hub to the user network (PORT to PORT+5)
vlan_net() {
    local b=$1
    echo -nic none -netdev socket,id=trunk,udp=127.0.0.1:$b,localaddr=127.0.0.1:$((b + 1)) -device e1000,netdev=trunk \
        -netdev socket,id=nowhere,udp=127.0.0.1:$((b + 4)),localaddr=127.0.0.1:$((b + 5)) -device e1000,netdev=nowhere \
        -netdev user,id=u0 -netdev socket,id=access,udp=127.0.0.1:$((b + 2)),localaddr=127.0.0.1:$((b + 3)) \
        -netdev hubport,id=h0,hubid=1,netdev=u0 -netdev hubport,id=h1,hubid=1,netdev=access
}
# ipv6-slaac, ipv6-dhcpv6: QEMU's NIC is a tap device in a network namespace with
# only IPv6 on its link (lib.sh ipv6_net: dnsmasq's router advertisements and DNS,
# nginx on [2001:db8::1]:8443; QEMU's user network would forward fec0::2 to the
# host's ::1, where no test server may listen). ipv6-slaac names the server os.test,
# so DHCPv4 races SLAAC (and finds no server), and the name resolves through the
# router's link-local DNS address; ipv6-dhcpv6's router says "managed" and the URL
# names the server's IPv6 address, so only IPv6 runs.
make_initramfs ipv6-slaac "$NET" "$(dhcp https://os.test:8443/good.json)"
make_initramfs ipv6-dhcpv6 "$NET" "$(dhcp https://[2001:db8::1]:8443/good.json)"
make_initramfs initramfs-fetch "$INITRD" '{"network_mode":"dhcp","ospkg_pointer":"good.zip"}' -ospkg "$W/www/good"
log "building the LinuxBoot kernel, then embedding each scenario's initramfs"
# uki: the LinuxBoot kernel and the stboot initramfs in a UKI (stmgr uki create), on
# an EFI system partition that OVMF boots as removable media (EFI/BOOT/BOOTX64.EFI)
make_initramfs uki "$NET" "$(dhcp $G/good.json)"
PLAIN_KERNEL=$(bash "$ROOT/scripts/build-kernel.sh" 2>"$W/plain-kernel.log") || { cat "$W/plain-kernel.log" >&2; exit 1; }
# iso: the same UKI in stmgr's ISO (El Torito EFI boot image), on OVMF's CD drive
"$STMGR" uki create -format uki,iso -kernel "$PLAIN_KERNEL" -initramfs "$W/uki.cpio.gz" \
    -cmdline "console=ttyS0 panic=-1 stboot.boot_attempts=1" -out "$W/uki" >/dev/null || exit 1
make_esp "$W/uki.esp" "$W/uki.uki"
mv "$W/uki.iso" "$W/iso.iso"
# secureboot: OVMF with Secure Boot enforced and our own PK, KEK and db enrolled boots
# the UKI signed with the db key; it refuses the same UKI unsigned (the one the uki
# scenario boots without Secure Boot) and one signed by a key it does not know
# (with a line added to the stub's SBAT, which must not upset the firmware)
make_secureboot_keys || exit 1
echo "stboot,1,System Transparency,stboot-rs,0.1,https://system-transparency.org" > "$W/sb/sbat.csv"
for s in secureboot:db secureboot-wrong-key:stranger; do
    "$STMGR" uki create -format uki -kernel "$PLAIN_KERNEL" -initramfs "$W/uki.cpio.gz" \
        -cmdline "console=ttyS0 panic=-1 stboot.boot_attempts=1" -out "$W/${s%%:*}" \
        -signkey "$W/sb/${s#*:}.key" -signcert "$W/sb/${s#*:}.crt" -sbat "$W/sb/sbat.csv" -append-sbat >/dev/null || exit 1
    make_esp "$W/${s%%:*}.esp" "$W/${s%%:*}.uki"
done
make_esp "$W/secureboot-unsigned.esp" "$W/uki.uki"
for s in secureboot secureboot-unsigned secureboot-wrong-key; do cp "$W/sb/enrolled.vars" "$W/$s.sbvars"; done
for s in dhcp-good static-good bad-signature too-few-signers wrong-root fallback tls-unpinned \
    server-late efivar-dhcp stall-first endless-first kexec-fails-first initramfs-fetch sigsum sigsum-no-policy \
    encrypted provision-ctrl-c provision-fallback attest-retry vlan vlan-untagged too-big ipv6-slaac ipv6-dhcpv6; do
    embed_kernel $s || exit 1
done

# coreboot: the q35 ROM with the LinuxBoot kernel as payload, and the same ROM after
# an operator put a new stboot initramfs into it with cbfstool (build-rom.sh --replace)
if [ -n "${COREBOOT_DIR:-}" ]; then
    make_initramfs coreboot "$NET" "$(dhcp $G/good.json)"
    make_initramfs coreboot-replaced "$NET" "$(dhcp $G/second.json)"
    embed_kernel coreboot && embed_kernel coreboot-replaced || exit 1
    export ROM_CMDLINE="console=ttyS0 panic=-1 stboot.boot_attempts=1"
    log "building the coreboot ROM from $COREBOOT_DIR"
    bash "$ROOT/scripts/build-rom.sh" "$W/coreboot.bzImage" "$W/coreboot.rom" >/dev/null 2>"$W/coreboot.rom.log" ||
        { cat "$W/coreboot.rom.log" >&2; exit 1; }
    cp "$W/coreboot.rom" "$W/coreboot-replaced.rom"
    bash "$ROOT/scripts/build-rom.sh" --replace "$W/coreboot-replaced.rom" "$W/coreboot-replaced.bzImage" >/dev/null 2>&1 ||
        { log "replacing the payload failed"; exit 1; }
fi

start_nginx 8443 tls-ca good
start_nginx 8444 rogue-ca rogue
python3 "$(dirname "$0")/vlan-switch.py" 7 8460 8461 8462 8463 "$W/vlan.switch" & switch1=$!
python3 "$(dirname "$0")/vlan-switch.py" 7 8470 8471 8472 8473 "$W/vlan-untagged.switch" & switch2=$!
trap 'stop_nginx good; stop_nginx rogue; stop_nginx late-8445; stop_nginx late-8450; stop_hostile; kill $switch1 $switch2; stop_ipv6_net ipv6-slaac; stop_ipv6_net ipv6-dhcpv6' EXIT
start_hostile 8446
ipv6_net ipv6-slaac --dhcp-range=2001:db8::,ra-only,64 || log "ipv6-slaac: its network namespace is missing (the scenario will fail)"
ipv6_net ipv6-dhcpv6 --dhcp-range=2001:db8::100,2001:db8::1ff,64,1h || log "ipv6-dhcpv6: its network namespace is missing (the scenario will fail)"

pass=0; fail=0; failed=()
check() { # NAME: then lines "+pattern" (must appear) or "-pattern" (must not)
    local name=$1; shift
    local ok=1
    for p in "$@"; do
        local want=${p:0:1} pat=${p:1}
        if grep -aqF -- "$pat" "$W/$name.console"; then
            [ "$want" = "-" ] && { log "$name: unexpected on console: $pat"; ok=0; }
        else
            [ "$want" = "+" ] && { log "$name: missing on console: $pat"; ok=0; }
        fi
    done
    if [ $ok = 1 ]; then
        pass=$((pass + 1)); log "PASS $name"
    else
        fail=$((fail + 1)); failed+=("$name"); log "FAIL $name (console: $W/$name.console)"
        tail -n 40 "$W/$name.console" | sed "s/^/    $name| /" >&2
    fi
}

run() { log "boot $1"; boot_qemu "$@"; }

# check_handoff NAME PATTERN...: what stboot handed to the OS (/stboot, printed by the
# test OS): the event log replays (stmgr tpm replay) to exactly the PCRs the OS read
# through sysfs and TPM2_PCR_Read, every other PCR from 8 to 15 but IMA's 10 is still
# zero (nothing was measured anywhere else), tpm2_eventlog parses the log, and the
# boot report is JSON containing each PATTERN. HANDOFF_PCRS=... names the PCRs the log must
# extend (default 12-14); EXPECT and PREDICTED, when set, are the "pcrN=.. ..." the
# replay must equal (expected-pcrs.py's and stmgr tpm predict's).
check_handoff() {
    local name=$1 log=$W/$1.eventlog.bin report=$W/$1.report.json pcrs ok=1 line n; shift
    sed -n 's/^TEST-OS-EVENTLOG //p' "$W/$name.console" | tr -d '\r' | base64 -d > "$log" 2>/dev/null
    pcrs=$("$STMGR" tpm replay "$log" 2>/dev/null | grep '^PCR' | tr '\n' ' ' | sed 's/PCR/pcr/g; s/ $//')
    [ "$(echo "$pcrs" | sed 's/=[0-9a-f]\{64\}//g')" = "$(for n in ${HANDOFF_PCRS:-12 13 14}; do printf 'pcr%s ' $n; done | sed 's/ $//')" ] ||
        { log "$name: the event log does not replay to PCRs ${HANDOFF_PCRS:-12 13 14} ($pcrs)"; ok=0; }
    for want in ${EXPECT:+"$EXPECT"} ${PREDICTED:+"$PREDICTED"}; do
        [ "$pcrs" = "$want" ] || { log "$name: the replayed log gives $pcrs, expected $want"; ok=0; }
    done
    for how in TEST-OS-SYSFS-PCRS TEST-OS-PCRS-8-15; do
        line=" $(grep -a "^$how " "$W/$name.console" | tr -d '\r' | head -1) "
        for n in 8 9 10 11 12 13 14 15; do
            local want="pcr$n=0000000000000000000000000000000000000000000000000000000000000000"
            [[ " $pcrs " == *" pcr$n="* ]] && want=$(echo " $pcrs " | grep -o " pcr$n=[0-9a-f]*" | tr -d ' ')
            [ $n = 10 ] && [[ " $pcrs " != *" pcr10="* ]] && continue
            [[ $line == *" $want "* ]] || { log "$name: $how: expected $want (replayed log: $pcrs)"; ok=0; }
        done
    done
    tpm2_eventlog "$log" > "$W/$name.tpm2_eventlog.txt" 2>&1 || { log "$name: tpm2_eventlog cannot parse the log"; ok=0; }
    sed -n '/^TEST-OS-REPORT-BEGIN/,/^TEST-OS-REPORT-END/p' "$W/$name.console" | tr -d '\r' | sed '1d;$d' > "$report"
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$report" 2>/dev/null || { log "$name: the boot report is not JSON"; ok=0; }
    # each check is a Python expression over the parsed report `r` (fields, not
    # sentences): it must be true
    for want in "$@"; do
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$report" "$want" 2>/dev/null ||
            { log "$name: the boot report does not satisfy: $want"; ok=0; }
    done
    if [ $ok = 1 ]; then
        pass=$((pass + 1)); log "PASS $name-handoff"
    else
        fail=$((fail + 1)); failed+=("$name-handoff"); log "FAIL $name-handoff (console: $W/$name.console)"
    fi
}

# late_server NAME PATTERN PORT: a server on PORT comes up only once the console of
# NAME shows PATTERN (server-late: after stboot saw it refuse connections)
late_server() {
    for _ in $(seq 1500); do
        grep -aqF -- "$2" "$W/$1.console" 2>/dev/null && break
        sleep 0.2
    done
    start_nginx $3 tls-ca late-$3
}

# two at a time (nginx runs in the background too, so wait for the QEMUs by PID)
pair() {
    run $1 & local a=$!
    run $2 "${@:3}" & local b=$!
    wait $a $b
}
# static-good runs without RDRAND (-cpu qemu64): stboot must say it waits for entropy
pair dhcp-good static-good -cpu qemu64
pair bad-signature too-few-signers
pair wrong-root tls-unpinned
pair fallback debian-modules -nic user,model=e1000 -drive file="$W/disk.raw",format=raw,if=virtio
late_server server-late "retrying in" 8445 & late=$!
APPEND="stboot.boot_attempts=1 stboot.handoff=0" pair server-late initramfs-fetch -nic none
wait $late
pair stall-first endless-first
pair sigsum sigsum-no-policy
CTRL_S_AT="starting (PID 1)" CTRL_C_AT="press Ctrl-C within" run provision-ctrl-c & pc=$!
APPEND="stboot.boot_attempts=2 stboot.provision_wait=1 stboot.dhcp_timeout=5" run provision-fallback -nic none
wait $pc
late_server attest-retry "BOOT FAILED at step fetch (attempt 1/2)" 8450 & late=$!
APPEND="stboot.boot_attempts=2" run attest-retry & ar=$!
run encrypted
wait $ar $late
[ -n "${COREBOOT_DIR:-}" ] && pair coreboot coreboot-replaced
pair uki iso
# the refused ones have no NIC (the firmware would go on to network boot) and end
# at the refusal
run secureboot & sb=$!
STOP_AT=": Access Denied" run secureboot-unsigned -nic none
STOP_AT=": Access Denied" run secureboot-wrong-key -nic none
wait $sb
# shellcheck disable=SC2046
pair kexec-fails-first efivar-dhcp $(ovmf_args "$W/efivar-dhcp.vars")
# shellcheck disable=SC2046
run vlan $(vlan_net 8460) & vl=$!
# shellcheck disable=SC2046
APPEND="stboot.boot_attempts=1 stboot.dhcp_timeout=8" run vlan-untagged $(vlan_net 8470)
wait $vl
sleep 1.5 # the switches write their counts once a second
# shellcheck disable=SC2046
QEMU_NETNS=stit-ipv6-slaac run ipv6-slaac $(ipv6_nic) & v6=$!
# shellcheck disable=SC2046
QEMU_NETNS=stit-ipv6-dhcpv6 run ipv6-dhcpv6 $(ipv6_nic)
wait $v6
APPEND="stboot.boot_attempts=3" run config-typo -nic none & ct=$!
run too-big
wait $ct

BOOTED="TEST-OS-BOOTED"
PCRS=$(python3 "$(dirname "$0")/expected-pcrs.py" "$W/www/good" "$NET")
check dhcp-good "+(stboot@stboot)" "+unpacked while downloading into" "-module e1000.ko" "+UX identity: none (TPM NV index 0x01420001 is not defined)" "+TEST-OS-PCRS $PCRS" "+TEST-OS-PCRS $PREDICTED_GOOD" "+measured OS package archive into PCR 12" "+Signatures: 3 found, 3 valid, 2 required" "+OS package passed verification" "+Timeline:" \
    "+kexec_core: Starting new kernel" "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]" "+network: eth0 address 10.0.2.15/24"
check static-good "+the kernel's random pool is not initialised yet" "+random pool ready after waiting" \
    "+network: eth0 address 10.0.2.15/24 gateway 10.0.2.2" "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
check bad-signature "+options from the kernel command line: stboot.boot_attempts=1" "+bad signature" "+0 valid, 2 required" "+BOOT FAILED at step fetch (attempt 1/1)" "+Recover: rebooting" "-$BOOTED" "-kexec_core"
check too-few-signers "+Signatures: 1 found, 1 valid, 2 required" "+BOOT FAILED" "+Recover: rebooting" "-$BOOTED"
check wrong-root "+untrusted certificate" "+is not a configured signing root" "+BOOT FAILED" "-$BOOTED" \
    "+what to do: the signer's root is not in this machine's /etc/trust_policy/ospkg_signing_root.pem"
check fallback "+404 Not Found" "+https://10.0.2.2:8449/down.json" "+bad signature" \
    "+OS package https://***@10.0.2.2:8443/second.zip" "-s3cret" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=second]"
check tls-unpinned "+TLS: the server's certificate is not trusted" "+BOOT FAILED" "-$BOOTED"
check config-typo "+ospkg_pointer: URL 1: scheme \"htps\" is not http or https; skipped" \
    "+BOOT FAILED at step configuration (attempt 1/3)" "+what to do: fix the file the message names" \
    "+a configuration error is the same on every attempt: not trying again" "+giving up after 1 boot attempt" \
    "-attempt 2/3" "-retrying the whole boot" "+Recover: rebooting" "-$BOOTED"
check server-late "+retrying in" "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
check efivar-dhcp "+host configuration from EFI variable /sys/firmware/efi/efivars/STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7" \
    "+unknown key \"bonding_mod\" (did you mean \"bonding_mode\"?)" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=second]"
check debian-modules "-(stboot@stboot)" "+module e1000.ko loaded" "+module bonding.ko loaded" "+module virtio_blk.ko loaded" "+[vda] 131072 512-byte logical blocks" "+bond bond0 (active-backup) created" "+network: bond0 address 10.0.2.15/24" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
[ "$(sha256sum < "$W/disk.raw")" = "$DISK_BEFORE" ] || { log "debian-modules: the disk changed"; fail=$((fail + 1)); failed+=(disk-unchanged); }
log "debian-modules: disk SHA-256 before and after: ${DISK_BEFORE%% *}"
check initramfs-fetch "+TEST-OS-PCRS $(python3 "$(dirname "$0")/expected-pcrs.py" "$W/www/good" "$INITRD")" \
    "+Loading OS package from initramfs" "+Signatures: 3 found, 3 valid, 2 required" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]" "-network:"

# a hostile first URL: the good second URL boots, and the console says what the first cost
check stall-first "+URL 1 of 2 failed after" "+no response within 10 s" "+what to do:" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
check endless-first "+URL 1 of 2 failed after" "+unexpected bytes at offset 0" "-retrying in" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
# kexec refuses the first (signed) kernel: nothing was measured for it, so the PCRs
# the OS sees are exactly those of the package that booted
check kexec-fails-first "+kexec_file_load failed" "+URL 1 of 2 failed after" "+TEST-OS-PCRS $PCRS" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
n=$(grep -ac "measured OS package archive into PCR 12" "$W/kexec-fails-first.console")
[ "$n" = 1 ] || { log "kexec-fails-first: measured $n times, expected once"; fail=$((fail + 1)); failed+=(kexec-fails-first-measured-once); }

check sigsum "+Sigsum policy: 1 log(s)" "+signature 0 (signature by" "+signature 1 (Sigsum proof by" \
    "+3 of 3 cosignatures by policy witnesses" "+Signatures: 2 found, 2 valid, 2 required" \
    "+TEST-OS-PCRS $(python3 "$(dirname "$0")/expected-pcrs.py" "$W/www/sigsum" "$SIGSUM")" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=sigsum]"
check sigsum-no-policy "+the trust policy has no Sigsum policy (ospkg_trust_policy)" "+Signatures: 2 found, 1 valid, 2 required" \
    "+BOOT FAILED" "-$BOOTED"
check encrypted "+decryption identities: 1 ($(grep -o 'age1[a-z0-9]*' "$W/age/machine.txt"))" \
    "+encother.json is age-encrypted to other recipients: the identity in /etc/trust_policy/decryption_identities cannot decrypt it" \
    "+what to do: encrypt the package to this machine's recipient age1" "+enc.json: decrypted (" "+enc.zip: decrypted to" \
    "+Signatures: 2 found, 2 valid, 2 required" "-AGE-SECRET-KEY" \
    "+UX identity \"rack-7 é\" from TPM NV index 0x01420001" \
    "+TEST-OS-PCRS $(python3 "$(dirname "$0")/expected-pcrs.py" "$W/plain/enc" "$ENC" "$W/encrypted.identity")" \
    "+TEST-OS-PCRS $PREDICTED_ENC" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=enc]"
check attest-retry "+measurement PCRs from trust_policy.json: detail 8, authority 9, identity 15" \
    "+kexec_file_load failed" "+BOOT FAILED at step fetch (attempt 1/2)" "+measured OS package archive into PCR 8" \
    "+measured UX identity into PCR 15" "-into PCR 12" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
n=$(grep -ac "measured OS package archive into PCR" "$W/attest-retry.console")
[ "$n" = 1 ] || { log "attest-retry: measured $n times, expected once"; fail=$((fail + 1)); failed+=(attest-retry-measured-once); }
check vlan "+network: using eth0 52:54:00:12:34:56, eth1 52:54:00:12:34:57; not used: bond0 (bond, not a NIC)" \
    "+VLAN 7 on eth0: eth0.7" "+VLAN 7 on eth1: eth1.7" "+DHCP: eth0.7 won (lease 10.0.2.15 from 10.0.2.2); eth1.7: " \
    "+network: eth0.7 address 10.0.2.15/24 gateway 10.0.2.2" "+Signatures: 3 found, 3 valid, 2 required" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
check too-big "+package size: at most" "+the server announces $(stat -c %s "$W/www/big.zip") bytes, more than the limit of" \
    "+the archive does not fit: at most" "-No space left on device" "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
log "too-big: $(grep -ao 'URL 1 of 2 failed after [0-9.]* s' "$W/too-big.console" | head -1) (the 300 MiB archive refused before its download)"
check ipv6-slaac "+eth0: router advertisement from fe80::" "+prefix 2001:db8::/64 (SLAAC), DNS fe80::" \
    "+DHCP: eth0 won with SLAAC (2001:db8::5054:ff:fe12:3456/64, router fe80::" "+; eth0 DHCPv4: no DHCP answer to" \
    "+network: eth0 address 2001:db8::5054:ff:fe12:3456/64 gateway fe80::" "+Signatures: 3 found, 3 valid, 2 required" \
    "+TEST-OS-PCRS $PCRS" "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
check ipv6-dhcpv6 "+DHCP: IPv6 only (SLAAC or DHCPv6)" "+prefix 2001:db8::/64 (on-link), DNS fe80::" "+addresses from DHCPv6" \
    "+eth0: DHCPv6 address 2001:db8::1" "+passed duplicate address detection after" "+/128 gateway fe80::" \
    "-DHCPDISCOVER" "+Signatures: 3 found, 3 valid, 2 required" "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
# the package went over IPv6: nginx in each namespace logged the guest's address
for s in "ipv6-slaac 2001:db8::5054:ff:fe12:3456" "ipv6-dhcpv6 2001:db8::1[0-9a-f][0-9a-f]"; do
    read -r name client <<< "$s"
    if grep -Eq "^$client .*\"GET /good.zip HTTP/1.1\" 200" "$W/$name-nginx/logs/access.log" 2>/dev/null; then
        log "$name: $(grep -E 'GET /good.zip' "$W/$name-nginx/logs/access.log" | cut -d' ' -f1,6-9)"
    else
        log "$name: nginx on [2001:db8::1] served no good.zip to $client"; fail=$((fail + 1)); failed+=("$name-over-ipv6")
    fi
done
check vlan-untagged "+DHCP: no lease within 8 s (" "+eth0: no answer from a DHCP server" "+eth1: no answer from a DHCP server" \
    "-VLAN 7" "+BOOT FAILED at step network" "-$BOOTED"
# the switch saw stboot's traffic tagged (and none from the untagged machine got through)
for s in vlan vlan-untagged; do log "$s: switch counts: $(cat "$W/$s.switch" 2>/dev/null)"; done
grep -Eq 'tagged_in=[1-9][0-9]* .* to_guest=[1-9]' "$W/vlan.switch" || { log "vlan: the switch forwarded no tagged frames"; fail=$((fail + 1)); failed+=(vlan-switch); }
grep -q 'tagged_in=0 untagged_dropped=[1-9]' "$W/vlan-untagged.switch" || { log "vlan-untagged: the switch saw no untagged frames"; fail=$((fail + 1)); failed+=(vlan-untagged-switch); }
PROVISION_PCRS=$(python3 "$(dirname "$0")/expected-pcrs.py" "$W/www/provision" "$NET")
check provision-ctrl-c "+provisioning package /ospkg/provision.json present: press Ctrl-C within 3 s to boot it instead of the normal boot" \
    "+Ctrl-C on the console: booting the provisioning package" "+Loading the provisioning package from initramfs: /ospkg/provision.zip" \
    "+Signatures: 2 found, 2 valid, 2 required" "-Downloading" "+TEST-OS-PCRS $PROVISION_PCRS" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=provision]"
# the Ctrl-S (XOFF) sent at stboot's first line did not stop the console
grep -q "sent Ctrl-S" "$W/provision-ctrl-c.keys.log" || { log "provision-ctrl-c: no Ctrl-S was sent"; fail=$((fail + 1)); failed+=(provision-ctrl-s); }
check provision-fallback "+press Ctrl-C within 1 s" "+no Ctrl-C within 1 s: normal boot" "+BOOT FAILED at step network (attempt 2/2)" \
    "+giving up after 2 boot attempts" "+falling back to the provisioning package /ospkg/provision.json instead of rebooting" \
    "+TEST-OS-PCRS $PROVISION_PCRS" "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=provision]" "-Recover: rebooting"

check_handoff dhcp-good 'r["version"] == 2' 'r["host_config_source"] == "file /etc/host_configuration.json"' \
    'r["ospkg"]["origin"].startswith("https://10.0.2.2:8443/good.zip")' 'r["failures"] == []' \
    'r["ospkg"]["kernel"] and r["ospkg"]["initramfs"] and len(r["ospkg"]["archive_sha256"]) == 64' \
    '(r["signatures"]["found"], r["signatures"]["valid"], r["signatures"]["threshold"]) == (3, 3, 2)' \
    'all(c["verdict"] == "valid" and c["form"] == "signature" and c["signer"].startswith("CN=") and len(c["certificate_sha256"]) == 64 and c["reason"] is None for c in r["signatures"]["checks"])' \
    'r["eventlog"] == "/stboot/eventlog.bin"' '[s["step"] for s in r["steps"]][:3] == ["config", "network", "fetch"]'
# a failed first URL (kexec refused its kernel) leaves no trace in the log
check_handoff kexec-fails-first 'r["ospkg"]["origin"].startswith("https://10.0.2.2:8443/good.zip")' \
    'len(r["failures"]) == 1' \
    'r["failures"][0]["url"] == "https://10.0.2.2:8443/badkernel.json" and r["failures"][0]["url_index"] == 1 and r["failures"][0]["attempt"] == 1' \
    'r["failures"][0]["step"] == "kexec_load" and r["failures"][0]["kind"] == "boot.kexec" and "kexec_file_load failed" in r["failures"][0]["message"]'
# two failed attempts, then the provisioning package
check_handoff provision-fallback 'r["host_config_source"] == "provisioning package (all 2 boot attempts failed)"' \
    '[(f["attempt"], f["step"], f["url"]) for f in r["failures"]] == [(1, "network", None), (2, "network", None)]' \
    'r["failures"][0]["message"].startswith("no NIC found (links: lo, bond0 [bond]); is the NIC driver loaded?")' \
    'r["ospkg"]["origin"] == "/ospkg/provision.zip"'
check_handoff encrypted 'r["identity"] == "rack-7 é"' 'r["ospkg"]["origin"].startswith("https://10.0.2.2:8443/enc.zip")'
HANDOFF_PCRS="8 9 15" EXPECT=$EXPECTED_MOVED PREDICTED=$PREDICTED_MOVED \
    check_handoff attest-retry 'r["ospkg"]["origin"].startswith("https://10.0.2.2:8450/good.zip")' \
    '[(f["attempt"], f["url_index"], f["step"]) for f in r["failures"]] == [(1, 1, "kexec_load"), (1, 2, "fetch"), (2, 1, "kexec_load")]' \
    'r["failures"][1]["url"] == "https://10.0.2.2:8450/good.json" and r["failures"][1]["kind"].startswith("fetch.")' \
    'r["signatures"]["checks"][0]["signer"].startswith("CN=")'
# stboot.handoff=0: nothing handed over
check initramfs-fetch "+handoff: off (stboot.handoff=0)" "-TEST-OS-EVENTLOG" "-TEST-OS-REPORT-BEGIN"

# the initramfs came from the UKI's .initrd through systemd-stub; the ISO from the CD
check uki "+EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path" "+stboot-rs" "+(stboot@stboot)" "+Signatures: 3 found, 3 valid, 2 required" "+TEST-OS-PCRS $PCRS" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
check iso "+BdsDxe: starting Boot0001 \"UEFI QEMU DVD-ROM" "+EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path" "+stboot-rs" "+(stboot@stboot)" "+Signatures: 3 found, 3 valid, 2 required" "+TEST-OS-PCRS $PCRS" \
    "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
check secureboot "+EFI stub: UEFI Secure Boot is enabled." "+secureboot: Secure boot enabled" "+(stboot@stboot)" \
    "+Signatures: 3 found, 3 valid, 2 required" "+TEST-OS-PCRS $PCRS" "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
for s in secureboot-unsigned secureboot-wrong-key; do
    check $s "+BdsDxe: failed to load Boot0002 \"UEFI Non-Block Boot Device\"" "+: Access Denied" "-Linux version" "-stboot"
done
skipped=0
if [ -n "${COREBOOT_DIR:-}" ]; then
    check coreboot "+coreboot-" "+ramstage starting" "+(stboot@stboot)" "+Signatures: 3 found, 3 valid, 2 required" \
        "+TEST-OS-PCRS $PCRS" "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=good]"
    check coreboot-replaced "+coreboot-" "+(stboot@stboot)" \
        "+TEST-OS-PCRS $(python3 "$(dirname "$0")/expected-pcrs.py" "$W/www/second" "$NET")" \
        "+$BOOTED cmdline=[console=ttyS0 panic=-1 testos=second]"
else
    skipped=2
    log "SKIPPED coreboot, coreboot-replaced: COREBOOT_DIR is not set (a coreboot tree with 3rdparty/vboot cannot be downloaded here); run them with COREBOOT_DIR=/path/to/coreboot bash integration-tests/run.sh"
fi

grep -ah "Timeline:" "$W/dhcp-good.console" | sed 's/^/dhcp-good /' >&2 || true
echo "scenarios: $pass passed, $fail failed, $skipped skipped"
[ $fail = 0 ] || { log "failed: ${failed[*]}"; exit 1; }
