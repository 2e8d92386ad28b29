"""The QEMU scenarios, each defined here once: what it builds, how QEMU boots it,
what must (+) and must not (-) appear on its serial console, and what else is
checked (the handoff to the booted OS, servers' logs, the disk). harness.py runs
them: `integration-tests/run.sh [NAME...]`, `--list`.

stboot is PID 1 under the project's LinuxBoot kernel (kernel-config/), booted with
`qemu -kernel`: dhcp-good with its initramfs embedded, as firmware carries it, the
others with the same kernel and their initramfs beside it (-initrd: the same bytes
reach the same rootfs, without a kernel link per scenario). debian-modules boots
Debian's generic kernel with the NIC driver, bonding and tls as modules;
efivar-dhcp, uki, iso and secureboot boot through OVMF; coreboot and
coreboot-replaced boot a coreboot ROM when COREBOOT_DIR is set (skipped, and said
so, without). The HTTPS servers are nginx on 127.0.0.1 (the guest's 10.0.2.2), DHCP
is QEMU's, the signatures are real.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

import harness
from harness import BOOTED, HERE, ROOT, SetupError, log, path, read, wait_console

NET, INITRD, SIGSUM, ENC, PCRTP = "net", "initramfs", "sigsum", "enc", "pcrs"


class Scenario:
    """One scenario. `setup(ctx)` builds what it boots (W/NAME.cpio.gz, ...);
    `payload`: initrd (the LinuxBoot kernel, -initrd), embedded, debian (Debian's
    kernel, -initrd), efivar (initrd under OVMF with W/NAME.vars), esp, iso,
    secureboot, rom; `nic(ctx)`: the NIC arguments (None: one e1000 on QEMU's user
    network); `qemu(ctx)`: more QEMU arguments; `expect(ctx)`: "+line"/"-line";
    `checks`: functions of ctx returning errors; `handoff(ctx)`: the boot report's
    checks (None: no handoff check); `during`: functions run beside QEMU (a server
    that comes up late); `report(ctx)`: lines to log after the run; `enrol`: the
    swtpm is manufactured and its AK enrolled before the boot; `serial_text(ctx)`:
    what is typed on the serial line at `ctrl_c_at` instead of Ctrl-C; `tpm_floor`:
    the TPM floor defined before the boot; `then`: a scenario booted after this one
    passed, on the TPM this boot left (`tpm_state_of` names the scenario whose TPM
    a boot goes on from)."""

    def __init__(self, name, doc, setup, expect, payload="initrd", append="stboot.boot_attempts=1", nic=None,
                 qemu=None, identity=False, ctrl_c_at=None, ctrl_s_at=None, stop_at=None, netns=None, timeout=150,
                 during=(), checks=(), handoff=None, handoff_pcrs=(12, 13, 14), handoff_expect=None, report=None,
                 skip_reason=None, enrol=False, serial_text=None, tpm_floor=None, then=None, tpm_state_of=None):
        self.name, self.doc, self._setup, self._expect = name, doc, setup, expect
        self.payload, self.append, self._nic, self._qemu = payload, append, nic, qemu
        self.identity, self.ctrl_c_at, self.ctrl_s_at, self.stop_at = identity, ctrl_c_at, ctrl_s_at, stop_at
        self.netns, self.timeout, self.during, self.checks = netns, timeout, during, checks
        self.handoff, self.handoff_pcrs, self._handoff_expect = handoff, handoff_pcrs, handoff_expect
        self._report, self.skip_reason = report, skip_reason
        self.enrol, self._serial_text = enrol, serial_text
        self.tpm_floor, self.then, self.tpm_state_of = tpm_floor, then, tpm_state_of

    def setup(self, ctx):
        self._setup(ctx, self.name)

    def expect(self, ctx):
        return self._expect(ctx)

    def nic(self, ctx):
        return self._nic(ctx) if self._nic else None

    def qemu(self, ctx):
        return self._qemu(ctx) if self._qemu else []

    def handoff_expect(self, ctx):
        return self._handoff_expect(ctx) if self._handoff_expect else []

    def report(self, ctx):
        return self._report(ctx) if self._report else []

    def serial_text(self, ctx):
        """What the operator types at ctrl_c_at: Ctrl-C, or `serial_text(ctx)`."""
        return self._serial_text(ctx) if self._serial_text else "\x03"


# -- what scenarios build from ------------------------------------------------------


def good(ctx):
    """https://10.0.2.2:PORT of the nginx with the pinned CA's certificate."""
    return f"https://10.0.2.2:{ctx.get('nginx', 'tls-ca')['port']}"


def dhcp(url):
    return f'{{"network_mode":"dhcp","ospkg_pointer":"{url}"}}'


def initramfs(ctx, name, trust, host, *extra, modules=()):
    """W/NAME.cpio.gz: stboot with trust policy `trust` and host configuration
    `host` (JSON text; "" for none); `modules` by name (the LinuxBoot kernel has its
    NIC driver built in)."""
    b = ctx.get("binaries")
    args = ["initramfs", "build", "-stboot", b["stboot"], "-trustPolicy", ctx.get("trust", trust),
            "-out", path(f"{name}.cpio.gz")]
    for m in modules:
        args += ["-module", b["modules"][m]]
    if host:
        with open(path(f"{name}.host.json"), "w") as f:
            f.write(host + "\n")
        args += ["-hostConfig", path(f"{name}.host.json")]
    ctx.stmgr(*args, *extra)


def with_host(host, trust=NET, *extra, modules=()):
    """A setup: the initramfs with host configuration `host(ctx)`."""
    return lambda ctx, name: initramfs(ctx, name, trust, host(ctx), *extra, modules=modules)


def pcrs(pkg, trust=NET, identity=None, tpm_floor=None):
    """The PCRs expected-pcrs.py computes for package W/www/PKG (or a path)."""
    return lambda ctx: ctx.get("expected-pcrs", pkg if "/" in pkg else path("www", pkg), trust, identity, tpm_floor)


def predicted(pkg, trust=NET, identity=None, tpm_floor=None):
    return lambda ctx: ctx.get("predicted-pcrs", pkg if "/" in pkg else path("www", pkg), trust, identity,
                               tpm_floor)


def booted(testos):
    return f"+{BOOTED} cmdline=[console=ttyS0 panic=-1 testos={testos}]"


def good_boot(c):
    """stboot (the LinuxBoot kernel's: its host name) verified the good package, and
    it booted with the PCRs expected-pcrs.py computes."""
    return ["+(stboot@stboot)", "+Signatures: 3 found, 3 valid, 2 required", f"+TEST-OS-PCRS {pcrs('good')(c)}",
            booted("good")]


# the initramfs came from the UKI's .initrd through systemd-stub
EFI_STUB_INITRD = "+EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path"


def late_server(pattern):
    """A `during` hook: the nginx of this scenario's late port starts once its
    console shows `pattern` (before that, connections are refused)."""
    def hook(ctx, s):
        if wait_console(s, pattern):
            ctx.make_nginx("tls-ca", port=ctx.get("late-port", s.name))
    return hook


def late_url(ctx, name, file="good.json"):
    return f"https://10.0.2.2:{ctx.get('late-port', name)}/{file}"


def served_range(url_path):
    """The hostile server answered the second request for url_path with 206 (a range)."""
    def check(ctx):
        log = read(path("hostile.log"))
        if re.search(rf'"GET {re.escape(url_path)} HTTP/1.1" 206', log):
            return []
        return [f"the hostile server's log has no 206 for {url_path}"]
    return check


def measured_once(name, what):
    def check(ctx):
        n = read(path(f"{name}.console")).count(what)
        return [] if n == 1 else [f"{what!r}: {n} times, expected once"]
    return check


# -- the UEFI images: the LinuxBoot kernel and stboot's initramfs in a UKI -------------


def uki_images(ctx):
    """W/uki.uki (unsigned) and W/iso.iso (stmgr uki create), W/secureboot.uki signed
    with the enrolled db key, W/secureboot-wrong-key.uki with a stranger's (with a
    line added to the stub's SBAT, which must not upset the firmware)."""
    def make():
        initramfs(ctx, "uki", NET, dhcp(f"{good(ctx)}/good.json"))
        kernel, cmdline = ctx.get("linuxboot-kernel"), "console=ttyS0 panic=-1 stboot.boot_attempts=1"
        ctx.stmgr("uki", "create", "-format", "uki,iso", "-kernel", kernel, "-initramfs", path("uki.cpio.gz"),
                  "-cmdline", cmdline, "-out", path("uki"))
        os.replace(path("uki.iso"), path("iso.iso"))
        sb = ctx.get("secureboot-keys")
        with open(path("sb", "sbat.csv"), "w") as f:
            f.write("stboot,1,System Transparency,stboot-rs,0.1,https://system-transparency.org\n")
        for out, key in (("secureboot", "db"), ("secureboot-wrong-key", "stranger")):
            ctx.stmgr("uki", "create", "-format", "uki", "-kernel", kernel, "-initramfs", path("uki.cpio.gz"),
                      "-cmdline", cmdline, "-out", path(out), "-signkey", f"{sb}/{key}.key",
                      "-signcert", f"{sb}/{key}.crt", "-sbat", path("sb", "sbat.csv"), "-append-sbat")
    return ctx.once(("uki-images",), make)


def esp(uki):
    """A setup: W/NAME.esp, a FAT EFI system partition with W/UKI.uki as
    EFI/BOOT/BOOTX64.EFI (booted as removable media)."""
    def setup(ctx, name):
        uki_images(ctx)
        ctx.sh(f'make_esp "$W/{name}.esp" "$W/{uki}.uki"')
    return setup


# -- the networks of the VLAN and IPv6 scenarios --------------------------------------


def vlan_setup(host):
    """The initramfs, and vlan-switch.py (VLAN 7) between the guest's first NIC (the
    trunk) and QEMU's user network; its frame counts go to W/NAME.switch."""
    def setup(ctx, name):
        initramfs(ctx, name, NET, host(ctx))
        trunk, guest, access, usernet, nowhere, nowhere_local = (ctx.get("port", name, i) for i in range(6))
        ctx.procs.start(f"vlan-switch {name}", [sys.executable, os.path.join(HERE, "vlan-switch.py"), "7",
                                               str(trunk), str(guest), str(access), str(usernet),
                                               path(f"{name}.switch")])
    return setup


def vlan_nic(name):
    """eth0 to the switch's trunk port, eth1 to nowhere (carrier, no DHCP server),
    and a hub joining the switch's access port to QEMU's user network."""
    def nic(ctx):
        trunk, guest, access, usernet, nowhere, nowhere_local = (ctx.get("port", name, i) for i in range(6))
        lo = "127.0.0.1"
        return ["-nic", "none",
                "-netdev", f"socket,id=trunk,udp={lo}:{trunk},localaddr={lo}:{guest}", "-device", "e1000,netdev=trunk",
                "-netdev", f"socket,id=nowhere,udp={lo}:{nowhere},localaddr={lo}:{nowhere_local}",
                "-device", "e1000,netdev=nowhere", "-netdev", "user,id=u0",
                "-netdev", f"socket,id=access,udp={lo}:{access},localaddr={lo}:{usernet}",
                "-netdev", "hubport,id=h0,hubid=1,netdev=u0", "-netdev", "hubport,id=h1,hubid=1,netdev=access"]
    return nic


def switch_counts(name, pattern, what):
    def check(ctx):
        time.sleep(1.5)  # the switch writes its counts once a second
        counts = read(path(f"{name}.switch"))
        return [] if re.search(pattern, counts) else [f"{what} (switch counts: {counts.strip()})"]
    return check


def ipv6_setup(host, *dnsmasq_args):
    """The initramfs, and the scenario's IPv6-only network namespace (harness.py
    make_ipv6_net: dnsmasq's router advertisements and DNS, nginx on
    [2001:db8::1]:8443). QEMU's user network would forward fec0::2 to the host's
    ::1, where no test server may listen."""
    def setup(ctx, name):
        initramfs(ctx, name, NET, host)
        ctx.get("ipv6-net", name, *dnsmasq_args)
    return setup


IPV6_NIC = ["-nic", "none", "-netdev", "tap,id=t0,ifname=tap0,script=no,downscript=no", "-device", "e1000,netdev=t0"]


def served_over_ipv6(name, client):
    """nginx in the namespace logged the guest's address fetching good.zip."""
    def check(ctx):
        net = ctx.get("ipv6-net", name, *IPV6_DNSMASQ[name])
        access = read(os.path.join(net["nginx"]["dir"], "logs", "access.log"))
        if re.search(rf"^{client} .*\"GET /good.zip HTTP/1.1\" 200", access, re.M):
            return []
        return [f"nginx on [2001:db8::1] served no good.zip to {client}"]
    return check


IPV6_DNSMASQ = {
    "ipv6-slaac": ("--dhcp-range=2001:db8::,ra-only,64",),
    "ipv6-dhcpv6": ("--dhcp-range=2001:db8::100,2001:db8::1ff,64,1h",),
}


# -- debian-modules: Debian's kernel, with modules, and a disk that must not change ---


def debian_setup(ctx, name):
    virtio = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk"]
    host = ('{"network_mode":"dhcp","ospkg_pointer":"' + good(ctx) + '/good.json","bonding_mode":"active-backup",'
            '"bond_name":"bond0","network_interfaces":[{"interface_name":"eth0"},{"interface_name":"eth1"}]}')
    initramfs(ctx, name, NET, host, modules=["e1000", "tls", "bonding", *virtio])
    with open(path("disk.raw"), "wb") as f:
        f.write(os.urandom(64 << 20))
    ctx.once(("disk-before",), lambda: sha256(path("disk.raw")))


def pcr_policy_holds(ctx):
    """The UKI's signed PCR 11 policy (.pcrsig, from systemd-measure sign) has an
    entry for the PCR 11 the booted OS read: its policy digest is TPM2_PolicyPCR
    (SHA-256 bank, PCR 11) over that value, so systemd-cryptsetup would unlock."""
    import json
    m = re.search(r"TEST-OS-SYSFS-PCRS.* pcr11=([0-9a-f]{64})", read(path("uki-package.console")))
    if not m:
        return ["the OS printed no PCR 11"]
    selection = (1).to_bytes(4, "big") + (0x000B).to_bytes(2, "big") + bytes([3, 0x00, 0x08, 0x00])
    digest = hashlib.sha256(bytes.fromhex(m.group(1))).digest()
    policy = hashlib.sha256(bytes(32) + (0x17F).to_bytes(4, "big") + selection + digest).hexdigest()
    with open(path("uki-pkg", "pcrsig.json")) as f:
        signed = [e["pol"] for e in json.load(f).get("sha256", [])]
    return [] if policy in signed else [f"no signed PCR policy for PCR 11 = {m.group(1)} (policy {policy}; signed: {signed})"]


def uki_package_after_stub(ctx, name):
    """stboot in a UKI of its own (systemd-stub, OVMF) that boots the UKI package."""
    ctx.get("package", "uki")
    initramfs(ctx, name, NET, dhcp(f"{good(ctx)}/uki-package.json"))
    ctx.stmgr("uki", "create", "-format", "uki", "-kernel", ctx.get("linuxboot-kernel"), "-initramfs",
              path(f"{name}.cpio.gz"), "-cmdline", "console=ttyS0 panic=-1 stboot.boot_attempts=1",
              "-out", path(name))
    ctx.sh(f'make_esp "$W/{name}.esp" "$W/{name}.uki"')


def pcr11_taken(ctx):
    """As docs/formats.md says: PCR 11 in the OS is not the value systemd-measure
    calculates for the UKI (systemd-stub measured stboot's own UKI first), and it is
    the value stboot predicted in the boot report."""
    import json
    text = read(path("uki-package-after-stub.console")).replace("\r", "")
    m = re.search(r"TEST-OS-SYSFS-PCRS.* pcr11=([0-9a-f]{64})", text)
    if not m:
        return ["the OS printed no PCR 11"]
    errs = []
    if m.group(1) == read(path("uki-pkg", "pcr11")).strip():
        errs.append("PCR 11 equals systemd-measure's value, though systemd-stub measured stboot's UKI before")
    try:
        report = json.loads(text.split("TEST-OS-REPORT-BEGIN\n", 1)[1].split("TEST-OS-REPORT-END", 1)[0])
        if report["pcrs"].get("11") != m.group(1):
            errs.append(f"the boot report predicted PCR 11 = {report['pcrs'].get('11')}, the OS read {m.group(1)}")
    except (IndexError, ValueError, KeyError) as e:
        errs.append(f"no boot report to compare with: {e}")
    return errs


def b64_of(p):
    import base64
    with open(p, "rb") as f:
        return base64.b64encode(f.read()).decode()


def sha256(p):
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def disk_unchanged(ctx):
    before, after = ctx.once(("disk-before",), lambda: None), sha256(path("disk.raw"))
    return [] if before == after else [f"the disk changed (SHA-256 {before} before, {after} after)"]


# -- the table -------------------------------------------------------------------------

GOOD_REPORT = [
    'r["version"] == 2', 'r["host_config_source"] == "file /etc/host_configuration.json"',
    'r["ospkg"]["origin"].startswith("https://10.0.2.2:") and "/good.zip" in r["ospkg"]["origin"]',
    'r["failures"] == []',
    'r["ospkg"]["kernel"] and r["ospkg"]["initramfs"] and len(r["ospkg"]["archive_sha256"]) == 64',
    '(r["signatures"]["found"], r["signatures"]["valid"], r["signatures"]["threshold"]) == (3, 3, 2)',
    'all(c["verdict"] == "valid" and c["form"] == "signature" and c["signer"].startswith("CN=") '
    'and len(c["certificate_sha256"]) == 64 and c["reason"] is None for c in r["signatures"]["checks"])',
    'r["eventlog"] == "/stboot/eventlog.bin"', '[s["step"] for s in r["steps"]][:3] == ["config", "network", "fetch"]',
]


def coreboot_setup(pkg):
    def setup(ctx, name):
        initramfs(ctx, name, NET, dhcp(f"{good(ctx)}/{pkg}.json"))
        ctx.embed_kernel(name)
        env = {"ROM_CMDLINE": "console=ttyS0 panic=-1 stboot.boot_attempts=1"}
        def rom():
            log(f"building the coreboot ROM from {os.environ['COREBOOT_DIR']}")
            code, _, err = ctx.procs.run("build-rom.sh", ["bash", f"{ROOT}/scripts/build-rom.sh",
                                         path("coreboot.bzImage"), path("coreboot.rom")], env={**os.environ, **env})
            if code != 0:
                raise SetupError(f"build-rom.sh: {err[-2000:]}")
        if name == "coreboot":
            ctx.once(("coreboot-rom",), rom)
        else:
            ctx.once(("coreboot-rom",), rom)
            shutil.copy(path("coreboot.rom"), path(f"{name}.rom"))
            code, _, err = ctx.procs.run("build-rom.sh --replace", ["bash", f"{ROOT}/scripts/build-rom.sh", "--replace",
                                         path(f"{name}.rom"), path(f"{name}.bzImage")], env={**os.environ, **env})
            if code != 0:
                raise SetupError(f"replacing the payload failed: {err[-2000:]}")
    return setup


NO_COREBOOT = None if os.environ.get("COREBOOT_DIR") else (
    "COREBOOT_DIR is not set (a coreboot tree with 3rdparty/vboot cannot be downloaded here); run it with "
    "COREBOOT_DIR=/path/to/coreboot integration-tests/run.sh coreboot coreboot-replaced")


def efivar_setup(ctx, name):
    """No host configuration file: it is in OVMF's variable store (STHostConfig,
    written by stmgr hostconfig efivar), with an unknown key (a typo): stboot warns
    and boots, as upstream ignores it."""
    initramfs(ctx, name, NET, "")
    ctx.get("binaries")
    host = '{"network_mode":"dhcp","ospkg_pointer":"' + good(ctx) + '/second.json","bonding_mod":""}'
    # as an operator writes it (-force: the typo is the point of this scenario)
    ctx.stmgr("hostconfig", "efivar", "-hostConfig", host, "-vars", "/usr/share/OVMF/OVMF_VARS_4M.fd",
              "-out", path(f"{name}.vars"), "-force")


def encrypted_setup(ctx, name):
    ctx.get("package", "enc")
    initramfs(ctx, name, ENC, dhcp(f"{good(ctx)}/encother.json,{good(ctx)}/enc.json"))
    with open(path(f"{name}.identity"), "wb") as f:
        f.write("rack-7 é".encode() + b"\0\0")


def attest_setup(ctx, name):
    ctx.get("package", "attest")
    initramfs(ctx, name, SIGSUM, dhcp(f"{good(ctx)}/attest.json"))
    with open(path(f"{name}.identity"), "wb") as f:
        f.write(b"server-7\0")


def attest_verify(ctx, nonce=None, trust=SIGSUM):
    """stmgr attest verify of the evidence the test OS printed (written to
    W/attest.evidence.json); (exit code, output)."""
    import base64
    lines = read(path("attest.console")).replace("\r", "").split("\n")
    b64 = "".join(ln[len("TEST-OS-EVIDENCE "):] for ln in lines if ln.startswith("TEST-OS-EVIDENCE "))
    with open(path("attest.evidence.json"), "wb") as f:
        f.write(base64.b64decode(b64))
    r = subprocess.run([ctx.get("binaries")["stmgr"], "attest", "verify", "-evidence", path("attest.evidence.json"),
                        "-nonce", nonce or ctx.get("nonce"), "-key", path("attest.wg0.pub"), "-enrolment",
                        path("attest.enrol", "ak.json"), "-trustPolicy", ctx.get("trust", trust), "-json",
                        path("attest.verdict.json")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(path("attest.verify.txt"), "a") as f:
        f.write(f"$ stmgr attest verify (nonce {'given' if nonce is None else 'another'}, trust {trust})\n"
                f"{r.stdout}exit {r.returncode}\n")
    return r.returncode, r.stdout


def attest_checks(ctx):
    """The host verifies the evidence: accepted with the run's nonce, and the verdict
    names the package, both signers, the Sigsum log entry and the key; refused with
    another nonce (quote.nonce) and under another trust policy (authority)."""
    errs = []
    code, out = attest_verify(ctx)
    key = hashlib.sha256(read(path("attest.wg0.pub")).encode()).hexdigest()
    want = ['this machine booted OS package "test OS attest" (archive attest.zip sha256:',
            "logged in Sigsum log ", " at index 6", f"its key sha256:{key} is bound to this quote",
            "ok   eventlog           PCRs 0,1,2,3,4,5,6,7,12,13,14 replay from the event logs to the quoted values",
            "ok   signatures         Signatures: 2 found, 2 valid, 2 required",
            'ok   identity           UX identity "server-7" measured into PCR 14',
            "firmware PCRs 0-7: replayed from the firmware's event log"]
    if code != 0:
        errs.append(f"stmgr attest verify exited {code}:\n{out}")
    errs += [f"the verdict lacks {w!r}" for w in want if w not in out]
    if out.count('"CN=') < 2:
        errs.append(f"the verdict does not name two signers: {out}")
    code, out = attest_verify(ctx, nonce=os.urandom(32).hex())
    if code != 1 or "FAIL quote.nonce" not in out:
        errs.append(f"another nonce was not refused by quote.nonce (exit {code}):\n{out}")
    code, out = attest_verify(ctx, trust=NET)
    if code != 1 or "FAIL authority" not in out:
        errs.append(f"another trust policy was not refused by authority (exit {code}):\n{out}")
    return errs


def provision_setup(ctx, name):
    ctx.get("package", "provision")
    initramfs(ctx, name, NET, dhcp(f"{good(ctx)}/good.json"), "-ospkg", path("www", "provision"))


def hostile(ctx):
    return f"https://10.0.2.2:{ctx.get('hostile')}"


SCENARIOS = [
    Scenario(
        "dhcp-good", "DHCP, the good package, the LinuxBoot kernel with its initramfs embedded",
        with_host(lambda c: dhcp(f"{good(c)}/good.json")), payload="embedded",
        expect=lambda c: [
            "+(stboot@stboot)", "+unpacked while downloading into", "-module e1000.ko",
            "+UX identity: none (TPM NV index 0x01420001 is not defined)", f"+TEST-OS-PCRS {pcrs('good')(c)}",
            f"+TEST-OS-PCRS {predicted('good')(c)}", "+measured OS package archive into PCR 12",
            "+Signatures: 3 found, 3 valid, 2 required", "+OS package passed verification", "+Timeline:",
            "+kexec_core: Starting new kernel", booted("good"), "+network: eth0 address 10.0.2.15/24"],
        handoff=lambda c: GOOD_REPORT,
        report=lambda c: [ln.strip() for ln in read(path("dhcp-good.console")).split("\n") if "Timeline:" in ln]),
    Scenario(
        "static-good", "static address; no RDRAND (-cpu qemu64): stboot waits for entropy and says so",
        with_host(lambda c: '{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2",'
                  '"dns":["10.0.2.3"],"network_interfaces":[{"interface_name":"eth0"}],"ospkg_pointer":"'
                  + good(c) + '/good.json"}'),
        qemu=lambda c: ["-cpu", "qemu64"],
        expect=lambda c: [
            "+the kernel's random pool is not initialised yet", "+random pool ready after waiting",
            "+network: eth0 address 10.0.2.15/24 gateway 10.0.2.2", booted("good")]),
    Scenario(
        "bad-signature", "every signature has a flipped bit: refused, reboot",
        with_host(lambda c: dhcp(f"{good(c)}/badsig.json")),
        expect=lambda c: [
            "+options from the kernel command line: stboot.boot_attempts=1", "+bad signature", "+0 valid, 2 required",
            "+BOOT FAILED at step fetch (attempt 1/1)", "+Recover: rebooting", f"-{BOOTED}", "-kexec_core"]),
    Scenario(
        "too-few-signers", "one valid signature of the two required",
        with_host(lambda c: dhcp(f"{good(c)}/fewsig.json")),
        expect=lambda c: ["+Signatures: 1 found, 1 valid, 2 required", "+BOOT FAILED", "+Recover: rebooting",
                          f"-{BOOTED}"]),
    Scenario(
        "wrong-root", "signed under another root: the remedy names the machine's root file",
        with_host(lambda c: dhcp(f"{good(c)}/wrongroot.json")),
        expect=lambda c: [
            "+untrusted certificate", "+is not a configured signing root", "+BOOT FAILED", f"-{BOOTED}",
            "+what to do: the signer's root is not in this machine's /etc/trust_policy/ospkg_signing_root.pem"]),
    Scenario(
        "tls-unpinned", "the server's certificate is from a CA that is not pinned",
        with_host(lambda c: dhcp(f"https://10.0.2.2:{c.get('nginx', 'rogue-ca')['port']}/good.json")),
        expect=lambda c: ["+TLS: the server's certificate is not trusted", "+BOOT FAILED", f"-{BOOTED}"]),
    Scenario(
        "fallback", "404, a server that is down, a bad signature, then a URL with credentials boots",
        # credentials in a URL (nginx ignores them) must never reach the console
        with_host(lambda c: dhcp(f"{good(c)}/missing.json,https://10.0.2.2:{c.get('down-port')}/down.json,"
                                 f"{good(c)}/badsig.json,https://stboot:s3cret@{good(c)[8:]}/second.json")),
        expect=lambda c: [
            "+404 Not Found", f"+https://10.0.2.2:{c.get('down-port')}/down.json", "+bad signature",
            f"+OS package https://***@{good(c)[8:]}/second.zip", "-s3cret", booted("second")]),
    Scenario(
        "debian-modules", "Debian's kernel: e1000, bonding, tls and virtio-blk as modules; the disk is not written",
        debian_setup, payload="debian",
        qemu=lambda c: ["-nic", "user,model=e1000", "-drive", f"file={path('disk.raw')},format=raw,if=virtio"],
        expect=lambda c: [
            "-(stboot@stboot)", "+module e1000.ko loaded", "+module bonding.ko loaded", "+module virtio_blk.ko loaded",
            "+[vda] 131072 512-byte logical blocks", "+bond bond0 (active-backup) created",
            "+network: bond0 address 10.0.2.15/24", booted("good")],
        checks=[disk_unchanged],
        report=lambda c: [f"disk SHA-256 before and after: {c.once(('disk-before',), lambda: None)}"]),
    Scenario(
        "server-late", "the server comes up only after stboot saw it refuse: the retry boots",
        lambda c, n: initramfs(c, n, NET, dhcp(late_url(c, n))), append="stboot.boot_attempts=1 stboot.handoff=0",
        during=[late_server("retrying in")],
        expect=lambda c: ["+retrying in", booted("good")]),
    Scenario(
        "initramfs-fetch", "the package comes from the initramfs (fetch method initramfs); no network; no handoff",
        with_host(lambda c: '{"network_mode":"dhcp","ospkg_pointer":"good.zip"}', INITRD, "-ospkg",
                  path("www", "good")),
        append="stboot.boot_attempts=1 stboot.handoff=0", nic=lambda c: ["-nic", "none"],
        expect=lambda c: [
            f"+TEST-OS-PCRS {pcrs('good', INITRD)(c)}", "+Loading OS package from initramfs",
            "+Signatures: 3 found, 3 valid, 2 required", booted("good"), "-network:",
            "+handoff: off (stboot.handoff=0)", "-TEST-OS-EVENTLOG", "-TEST-OS-REPORT-BEGIN"]),
    Scenario(
        "stall-first", "the first server sends no headers: the second URL boots",
        with_host(lambda c: dhcp(f"{hostile(c)}/stall-headers/good.json,{good(c)}/good.json")),
        expect=lambda c: ["+URL 1 of 2 failed after", "+no response within 10 s", "+what to do:", booted("good")]),
    Scenario(
        "endless-first", "the first server sends endless garbage: the second URL boots",
        with_host(lambda c: dhcp(f"{hostile(c)}/endless/good.json,{good(c)}/good.json")),
        expect=lambda c: ["+URL 1 of 2 failed after", "+unexpected bytes at offset 0", "-retrying in",
                          booted("good")]),
    Scenario(
        "resume", "the server cuts the archive after a tenth (TCP reset): stboot asks for the rest with Range and "
        "If-Range, the one-pass hash and unpacking go on, and the package boots with its PCRs",
        with_host(lambda c: dhcp(f"{hostile(c)}/resume/good.json")),
        expect=lambda c: ["+archive https://10.0.2.2:", "+(attempt 1, retrying in", '+resuming at byte',
                          '+(Range, If-Range "v1")', f"+TEST-OS-PCRS {pcrs('good')(c)}", booted("good")],
        checks=[served_range("/resume/good.zip")]),
    Scenario(
        "sigsum", "a threshold of 2 met only when the Sigsum proof counts",
        with_host(lambda c: dhcp(f"{good(c)}/sigsum.json"), SIGSUM),
        expect=lambda c: [
            "+Sigsum policy: 1 log(s)", "+signature 0 (signature by", "+signature 1 (Sigsum proof by",
            "+3 of 3 cosignatures by policy witnesses", "+Signatures: 2 found, 2 valid, 2 required",
            f"+TEST-OS-PCRS {pcrs('sigsum', SIGSUM)(c)}", booted("sigsum")]),
    Scenario(
        "sigsum-no-policy", "the same package without a Sigsum policy: the proof does not count",
        with_host(lambda c: dhcp(f"{good(c)}/sigsum.json")),
        expect=lambda c: ["+the trust policy has no Sigsum policy (ospkg_trust_policy)",
                          "+Signatures: 2 found, 1 valid, 2 required", "+BOOT FAILED", f"-{BOOTED}"]),
    Scenario(
        "provision-ctrl-c", "Ctrl-S then Ctrl-C on the serial line: the provisioning package boots",
        provision_setup, ctrl_s_at="starting (PID 1)", ctrl_c_at="press Ctrl-C within",
        expect=lambda c: [
            "+provisioning package /ospkg/provision.json present: press Ctrl-C within 3 s to boot it instead of the "
            "normal boot", "+Ctrl-C on the console: booting the provisioning package",
            "+Loading the provisioning package from initramfs: /ospkg/provision.zip",
            "+Signatures: 2 found, 2 valid, 2 required", "-Downloading",
            f"+TEST-OS-PCRS {pcrs('provision')(c)}", booted("provision")],
        # the Ctrl-S (XOFF) sent at stboot's first line did not stop the console
        checks=[lambda c: [] if "sent Ctrl-S" in read(path("provision-ctrl-c.keys.log")) else ["no Ctrl-S was sent"]]),
    Scenario(
        "provision-fallback", "no network, every attempt fails: the provisioning package boots instead of a reboot",
        provision_setup, append="stboot.boot_attempts=2 stboot.provision_wait=1 stboot.dhcp_timeout=5",
        nic=lambda c: ["-nic", "none"],
        expect=lambda c: [
            "+press Ctrl-C within 1 s", "+no Ctrl-C within 1 s: normal boot",
            "+BOOT FAILED at step network (attempt 2/2)", "+giving up after 2 boot attempts",
            "+falling back to the provisioning package /ospkg/provision.json instead of rebooting",
            f"+TEST-OS-PCRS {pcrs('provision')(c)}", booted("provision"), "-Recover: rebooting"],
        handoff=lambda c: [
            'r["host_config_source"] == "provisioning package (all 2 boot attempts failed)"',
            '[(f["attempt"], f["step"], f["url"]) for f in r["failures"]] == [(1, "network", None), (2, "network", None)]',
            'r["failures"][0]["message"].startswith("no NIC found (links: lo, bond0 [bond]); is the NIC driver loaded?")',
            'r["ospkg"]["origin"] == "/ospkg/provision.zip"']),
    Scenario(
        "attest", "a verifier's nonce over the serial line; the OS quotes with the enrolled AK; the host verifies",
        attest_setup, identity=True, enrol=True, ctrl_c_at="TEST-OS-NONCE?",
        serial_text=lambda c: c.get("nonce") + "\n", timeout=240,
        expect=lambda c: [
            "+signature 1 (Sigsum proof by", "+Signatures: 2 found, 2 valid, 2 required",
            f"+TEST-OS-NONCE {c.get('nonce')}", "+quoted PCRs 0,1,2,3,4,5,6,7,12,13,14 with AK",
            "+TEST-OS-QUOTE-STATUS 0", "+TEST-OS-EVIDENCE ", booted("attest")],
        checks=[attest_checks],
        report=lambda c: [ln for ln in read(path("attest.verify.txt")).split("\n")
                          if ln.startswith("this machine booted")][:1]),
    Scenario(
        "rollback", "a version below the trust policy's floor is refused naming both numbers; the next URL's boots",
        lambda c, n: (c.get("package", "versions"),
                      initramfs(c, n, "floor2", dhcp(f"{good(c)}/v1.json,{good(c)}/v2.json"))),
        expect=lambda c: [
            "+OS package version 1 is below this machine's floor 2 (trust_policy.json ospkg_min_version): "
            "a downgrade, refused", "+what to do: serve a package whose version",
            "+OS package version 2 (floor 2: trust_policy.json ospkg_min_version)",
            "+signatures meet the threshold until",
            f"+TEST-OS-PCRS {pcrs('v2', 'floor2')(c)}", f"+TEST-OS-PCRS {predicted('v2', 'floor2')(c)}",
            booted("v2")],
        handoff=lambda c: ['r["ospkg"]["version"] == 2 and r["ospkg"]["min_version"] == 2',
                           '[f["kind"] for f in r["failures"]] == ["verify.rollback"]']),
    Scenario(
        "rollback-floor", "a floor of 3: versions 1 and 2 are both refused, nothing boots",
        lambda c, n: (c.get("package", "versions"),
                      initramfs(c, n, "floor3", dhcp(f"{good(c)}/v1.json,{good(c)}/v2.json"))),
        expect=lambda c: ["+OS package version 1 is below this machine's floor 3",
                          "+OS package version 2 is below this machine's floor 3", "+BOOT FAILED", f"-{BOOTED}"]),
    Scenario(
        "revoked", "leaf2 revoked: a package it co-signed falls below the threshold; one signed by two others boots",
        with_host(lambda c: dhcp(f"{good(c)}/second.json,{good(c)}/good.json"), "revoked"),
        expect=lambda c: [
            "+not counted: revoked: the certificate sha256:", "+is listed in ospkg_revoked_signers line 2",
            "+Signatures: 2 found, 1 valid, 2 required", "+Signatures: 3 found, 2 valid, 2 required",
            f"+TEST-OS-PCRS {pcrs('good', 'revoked')(c)}", f"+TEST-OS-PCRS {predicted('good', 'revoked')(c)}",
            booted("good")],
        handoff=lambda c: ['[k["verdict"] for k in r["signatures"]["checks"]] == ["valid", "revoked", "valid"]']),
    Scenario(
        "uki-package", "a UKI as the OS package (Debian's systemd-stub, a PCR 11 policy signed by systemd-measure): "
        "stboot boots its sections; PCR 11 in the OS equals systemd-measure's; /.extra holds the policy and its key",
        lambda c, n: (c.get("package", "uki"), initramfs(c, n, NET, dhcp(f"{good(c)}/uki-package.json"))),
        expect=lambda c: [
            '+booting "test OS uki-package": UKI boot/os.uki (kernel, initrd and command line from its sections)',
            "+UKI: its sections are measured into PCR 11 as its systemd-stub 252",
            "+measured UKI section .linux into PCR 11", "+measured UKI section .pcrpkey into PCR 11",
            f"+pcr11={read(path('uki-pkg', 'pcr11')).strip()} ",
            f"+TEST-OS-EXTRA tpm2-pcr-signature.json {b64_of(path('uki-pkg', 'pcrsig.json'))}",
            f"+TEST-OS-EXTRA tpm2-pcr-public-key.pem {b64_of(path('uki-pkg', 'pcr.pem'))}",
            booted("uki-package")],
        checks=[pcr_policy_holds],
        handoff=lambda c: ['r["ospkg"]["uki"] == "boot/os.uki" and r["ospkg"]["kernel"] == ""'],
        handoff_pcrs=(11, 12, 13, 14), handoff_expect=lambda c: [predicted("uki-package")(c)]),
    Scenario(
        "uki-package-db", "the trust policy has the UEFI db (ospkg_uki_db.pem): a UKI that systemd's ukify 254 "
        "built around systemd-stub 254, signed by sbsign with a stranger's key, and the unsigned UKI package are "
        "refused with their reasons; the ukify UKI signed with the db key boots, PCR 11 as systemd-measure 254 "
        "calculates it (stub 254 also measures .uname and .sbat), the db measured into PCR 13",
        lambda c, n: (c.get("package", "uki-signed"), initramfs(c, n, "ukidb", dhcp(
            f"{good(c)}/uki-stranger.json,{good(c)}/uki-package.json,{good(c)}/uki-db.json"))),
        expect=lambda c: [
            '+the UKI "boot/os-stranger.uki": its Secure Boot signature does not verify against ospkg_uki_db.pem: '
            'signature 1: signed by "CN=stboot-rs test Secure Boot stranger"',
            '+the UKI "boot/os.uki": its Secure Boot signature does not verify against ospkg_uki_db.pem: '
            'it has no Secure Boot (Authenticode) signature',
            "+what to do: sign the UKI for this machine's db",
            '+UKI boot/os-db.uki: Secure Boot signature by "CN=stboot-rs test Secure Boot db" verifies against '
            'ospkg_uki_db.pem certificate #0', "+measured UKI Secure Boot db into PCR 13",
            "+UKI: its sections are measured into PCR 11 as its systemd-stub 254.26",
            "+measured UKI section .uname into PCR 11", "+measured UKI section .sbat into PCR 11",
            f"+pcr11={read(path('uki-pkg', 'pcr11-254')).strip()} ",
            f"+TEST-OS-PCRS {pcrs('uki-db', 'ukidb')(c)}", booted("uki-package")],
        handoff=lambda c: ['[f["kind"] for f in r["failures"]] == ["verify.secure-boot", "verify.secure-boot"]'],
        handoff_pcrs=(11, 12, 13, 14), handoff_expect=lambda c: [predicted("uki-db", "ukidb")(c)]),
    Scenario(
        "uki-package-after-stub", "the UKI package again, but stboot itself starts from a UKI under OVMF: "
        "systemd-stub measured stboot's UKI into PCR 11 first, stboot says so, and PCR 11 is not systemd-measure's",
        uki_package_after_stub, payload="esp", timeout=200,
        expect=lambda c: [
            "+PCR 11 is not zero before stboot measures the UKI", "+boot stboot from the ROM",
            "+measured UKI section .linux into PCR 11", booted("uki-package")],
        checks=[pcr11_taken]),
    Scenario(
        "tpm-floor", "a TPM floor of 1 (ospkg_tpm_floor): version 2 boots and the OS confirms it, raising the floor "
        "to 2; the machine's next boot (same TPM) refuses version 1 naming both numbers and boots version 2",
        lambda c, n: (c.get("package", "floor"), initramfs(c, n, "tpmfloor", dhcp(f"{good(c)}/fv2.json"))),
        tpm_floor=1, timeout=200,
        expect=lambda c: [
            "+TPM floor 1 (NV index 0x01420002)",
            "+OS package version 2 (floor 1: the TPM floor, NV index 0x01420002)", "+measured TPM floor into PCR 12",
            f"+TEST-OS-PCRS {pcrs('fv2', 'tpmfloor', tpm_floor=1)(c)}",
            f"+TEST-OS-PCRS {predicted('fv2', 'tpmfloor', tpm_floor=1)(c)}",
            "+TPM floor raised from 1 to 2", "+TEST-OS-FLOOR-STATUS 0", booted("fv2")],
        handoff=lambda c: ['r["ospkg"]["version"] == 2 and r["ospkg"]["tpm_floor"] == 1 '
                           'and r["ospkg"]["min_version"] == 0'],
        then=Scenario(
            "tpm-floor-next", "the tpm-floor machine's next boot",
            lambda c, n: initramfs(c, n, "tpmfloor", dhcp(f"{good(c)}/fv1.json,{good(c)}/fv2.json")),
            tpm_state_of="tpm-floor", timeout=200,
            expect=lambda c: [
                "+TPM floor 2 (NV index 0x01420002)",
                "+OS package version 1 is below this machine's floor 2 (the TPM floor, NV index 0x01420002): "
                "a downgrade, refused", "+or for the TPM floor have the TPM owner reset it",
                "+OS package version 2 (floor 2: the TPM floor, NV index 0x01420002)",
                f"+TEST-OS-PCRS {pcrs('fv2', 'tpmfloor', tpm_floor=2)(c)}",
                f"+TEST-OS-PCRS {predicted('fv2', 'tpmfloor', tpm_floor=2)(c)}",
                "+TPM floor 2: already at or above version 2, unchanged", "+TEST-OS-FLOOR-STATUS 0", booted("fv2")],
            handoff=lambda c: ['r["ospkg"]["tpm_floor"] == 2',
                               '[f["kind"] for f in r["failures"]] == ["verify.rollback"]'])),
    Scenario(
        "attest-retry", "measurements in PCRs 8, 9, 15; the boot that succeeds comes after failures; the log replays",
        # attempt 1: kexec refuses URL 1's (signed) kernel, URL 2's server is down;
        # attempt 2: URL 1 fails again and URL 2, now up, boots
        lambda c, n: (c.get("package", "badkernel"),
                      initramfs(c, n, PCRTP, dhcp(f"{good(c)}/badkernel.json,{late_url(c, n)}"))),
        append="stboot.boot_attempts=2", during=[late_server("BOOT FAILED at step fetch (attempt 1/2)")],
        timeout=200,
        expect=lambda c: [
            "+measurement PCRs from trust_policy.json: detail 8, authority 9, identity 15", "+kexec_file_load failed",
            "+BOOT FAILED at step fetch (attempt 1/2)", "+measured OS package archive into PCR 8",
            "+measured UX identity into PCR 15", "-into PCR 12", booted("good")],
        checks=[measured_once("attest-retry", "measured OS package archive into PCR")],
        handoff=lambda c: [
            'r["ospkg"]["origin"].startswith("%s")' % late_url(c, "attest-retry", "good.zip"),
            '[(f["attempt"], f["url_index"], f["step"]) for f in r["failures"]] == '
            '[(1, 1, "kexec_load"), (1, 2, "fetch"), (2, 1, "kexec_load")]',
            'r["failures"][1]["url"] == "%s" and r["failures"][1]["kind"].startswith("fetch.")'
            % late_url(c, "attest-retry"),
            'r["signatures"]["checks"][0]["signer"].startswith("CN=")'],
        handoff_pcrs=(8, 9, 15), handoff_expect=lambda c: [pcrs("good", PCRTP)(c), predicted("good", PCRTP)(c)]),
    Scenario(
        "encrypted", "age: the first URL is for another machine (refused, with the remedy), the second boots; "
        "a UX identity in the TPM",
        encrypted_setup, identity=True,
        expect=lambda c: [
            f"+decryption identities: 1 ({re.search(r'age1[a-z0-9]*', read(path('age/machine.txt'))).group(0)})",
            "+encother.json is age-encrypted to other recipients: the identity in "
            "/etc/trust_policy/decryption_identities cannot decrypt it",
            "+what to do: encrypt the package to this machine's recipient age1", "+enc.json: decrypted (",
            "+enc.zip: decrypted to", "+Signatures: 2 found, 2 valid, 2 required", "-AGE-SECRET-KEY",
            "+UX identity \"rack-7 é\" from TPM NV index 0x01420001",
            f"+TEST-OS-PCRS {pcrs(path('plain', 'enc'), ENC, path('encrypted.identity'))(c)}",
            f"+TEST-OS-PCRS {predicted(path('plain', 'enc'), ENC, 'rack-7 é')(c)}", booted("enc")],
        handoff=lambda c: ['r["identity"] == "rack-7 é"', '"/enc.zip" in r["ospkg"]["origin"]']),
    Scenario(
        "coreboot", "a coreboot ROM (q35) with the LinuxBoot kernel as payload",
        coreboot_setup("good"), payload="rom", skip_reason=NO_COREBOOT,
        expect=lambda c: ["+coreboot-", "+ramstage starting", *good_boot(c)]),
    Scenario(
        "coreboot-replaced", "the same ROM after a new stboot initramfs was put in with cbfstool",
        coreboot_setup("second"), payload="rom", skip_reason=NO_COREBOOT,
        expect=lambda c: ["+coreboot-", "+(stboot@stboot)", f"+TEST-OS-PCRS {pcrs('second')(c)}",
                          booted("second")]),
    Scenario(
        "uki", "the LinuxBoot kernel and stboot's initramfs in a UKI on an EFI system partition (OVMF)",
        esp("uki"), payload="esp",
        expect=lambda c: [EFI_STUB_INITRD, "+stboot-rs", *good_boot(c)]),
    Scenario(
        "iso", "the same UKI in stmgr's ISO (El Torito), on OVMF's CD drive",
        lambda c, n: uki_images(c), payload="iso",
        expect=lambda c: ["+BdsDxe: starting Boot0001 \"UEFI QEMU DVD-ROM", EFI_STUB_INITRD, "+stboot-rs",
                          *good_boot(c)]),
    Scenario(
        "secureboot", "Secure Boot enforced with our PK, KEK and db: the UKI signed with db boots",
        esp("secureboot"), payload="secureboot",
        expect=lambda c: ["+EFI stub: UEFI Secure Boot is enabled.", "+secureboot: Secure boot enabled",
                          *good_boot(c)]),
    *[Scenario(
        name, f"Secure Boot refuses the UKI {how}", esp(uki), payload="secureboot", nic=lambda c: ["-nic", "none"],
        # a firmware that refused to boot waits for a key press: the run ends at the refusal
        stop_at=": Access Denied",
        expect=lambda c: ["+BdsDxe: failed to load Boot0002 \"UEFI Non-Block Boot Device\"", "+: Access Denied",
                          "-Linux version", "-stboot"])
      for name, uki, how in (("secureboot-unsigned", "uki", "unsigned"),
                             ("secureboot-wrong-key", "secureboot-wrong-key", "signed by a key it does not know"))],
    Scenario(
        "kexec-fails-first", "kexec refuses the first (signed) kernel: nothing was measured for it",
        lambda c, n: (c.get("package", "badkernel"),
                      initramfs(c, n, NET, dhcp(f"{good(c)}/badkernel.json,{good(c)}/good.json"))),
        expect=lambda c: ["+kexec_file_load failed", "+URL 1 of 2 failed after", f"+TEST-OS-PCRS {pcrs('good')(c)}",
                          booted("good")],
        checks=[measured_once("kexec-fails-first", "measured OS package archive into PCR 12")],
        handoff=lambda c: [
            '"/good.zip" in r["ospkg"]["origin"]', 'len(r["failures"]) == 1',
            'r["failures"][0]["url"] == "%s/badkernel.json" and r["failures"][0]["url_index"] == 1 '
            'and r["failures"][0]["attempt"] == 1' % good(c),
            'r["failures"][0]["step"] == "kexec_load" and r["failures"][0]["kind"] == "boot.kexec" '
            'and "kexec_file_load failed" in r["failures"][0]["message"]']),
    Scenario(
        "efivar-dhcp", "the host configuration from an EFI variable (OVMF), with a misspelt key",
        efivar_setup, payload="efivar",
        expect=lambda c: [
            "+host configuration from EFI variable "
            "/sys/firmware/efi/efivars/STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7",
            "+unknown key \"bonding_mod\" (did you mean \"bonding_mode\"?)", booted("second")]),
    Scenario(
        "vlan", "VLAN 7 through an 802.1Q switch: eth0.7 wins the DHCP race, the console says where eth1.7 stood",
        vlan_setup(lambda c: '{"network_mode":"dhcp","ospkg_pointer":"' + good(c) + '/good.json","vlan_id":7}'),
        nic=vlan_nic("vlan"),
        expect=lambda c: [
            "+network: using eth0 52:54:00:12:34:56, eth1 52:54:00:12:34:57; not used: bond0 (bond, not a NIC)",
            "+VLAN 7 on eth0: eth0.7", "+VLAN 7 on eth1: eth1.7",
            "+DHCP: eth0.7 won (lease 10.0.2.15 from 10.0.2.2); eth1.7: ",
            "+network: eth0.7 address 10.0.2.15/24 gateway 10.0.2.2", "+Signatures: 3 found, 3 valid, 2 required",
            booted("good")],
        checks=[switch_counts("vlan", r"tagged_in=[1-9][0-9]* .* to_guest=[1-9]",
                              "the switch forwarded no tagged frames")],
        report=lambda c: [f"switch counts: {read(path('vlan.switch')).strip()}"]),
    Scenario(
        "vlan-untagged", "the same switch without vlan_id: no lease, and the switch saw only untagged frames",
        vlan_setup(lambda c: dhcp(f"{good(c)}/good.json")), nic=vlan_nic("vlan-untagged"),
        append="stboot.boot_attempts=1 stboot.dhcp_timeout=8",
        expect=lambda c: ["+DHCP: no lease within 8 s (", "+eth0: no answer from a DHCP server",
                          "+eth1: no answer from a DHCP server", "-VLAN 7", "+BOOT FAILED at step network",
                          f"-{BOOTED}"],
        checks=[switch_counts("vlan-untagged", r"tagged_in=0 untagged_dropped=[1-9]",
                              "the switch saw no untagged frames")],
        report=lambda c: [f"switch counts: {read(path('vlan-untagged.switch')).strip()}"]),
    Scenario(
        "ipv6-slaac", "IPv6 only: SLAAC wins the race with DHCPv4, the server's name resolves over IPv6 DNS",
        ipv6_setup(dhcp("https://os.test:8443/good.json"), *IPV6_DNSMASQ["ipv6-slaac"]), nic=lambda c: IPV6_NIC,
        netns="stit-ipv6-slaac",
        expect=lambda c: [
            "+eth0: router advertisement from fe80::", "+prefix 2001:db8::/64 (SLAAC), DNS fe80::",
            "+DHCP: eth0 won with SLAAC (2001:db8::5054:ff:fe12:3456/64, router fe80::",
            "+; eth0 DHCPv4: no DHCP answer to", "+network: eth0 address 2001:db8::5054:ff:fe12:3456/64 gateway fe80::",
            "+Signatures: 3 found, 3 valid, 2 required", f"+TEST-OS-PCRS {pcrs('good')(c)}", booted("good")],
        checks=[served_over_ipv6("ipv6-slaac", "2001:db8::5054:ff:fe12:3456")]),
    Scenario(
        "ipv6-dhcpv6", "IPv6 only, \"managed\": an address from DHCPv6, duplicate address detection",
        ipv6_setup(dhcp("https://[2001:db8::1]:8443/good.json"), *IPV6_DNSMASQ["ipv6-dhcpv6"]),
        nic=lambda c: IPV6_NIC, netns="stit-ipv6-dhcpv6",
        expect=lambda c: [
            "+DHCP: IPv6 only (SLAAC or DHCPv6)", "+prefix 2001:db8::/64 (on-link), DNS fe80::",
            "+addresses from DHCPv6", "+eth0: DHCPv6 address 2001:db8::1", "+passed duplicate address detection after",
            "+/128 gateway fe80::", "-DHCPDISCOVER", "+Signatures: 3 found, 3 valid, 2 required", booted("good")],
        checks=[served_over_ipv6("ipv6-dhcpv6", "2001:db8::1[0-9a-f][0-9a-f]")]),
    Scenario(
        "config-typo", "a typo in the only URL's scheme: a configuration error, reported once, not retried",
        with_host(lambda c: dhcp(f"htps://{good(c)[8:]}/good.json")), append="stboot.boot_attempts=3",
        nic=lambda c: ["-nic", "none"],
        expect=lambda c: [
            "+ospkg_pointer: URL 1: scheme \"htps\" is not http or https; skipped",
            "+BOOT FAILED at step configuration (attempt 1/3)", "+what to do: fix the file the message names",
            "+a configuration error is the same on every attempt: not trying again",
            "+giving up after 1 boot attempt", "-attempt 2/3", "-retrying the whole boot", "+Recover: rebooting",
            f"-{BOOTED}"]),
    Scenario(
        "too-big", "a 300 MiB package in a 512 MiB guest: refused from its Content-Length, the next URL boots",
        lambda c, n: (c.get("package", "big"), initramfs(c, n, NET, dhcp(f"{good(c)}/big.json,{good(c)}/good.json"))),
        expect=lambda c: [
            "+package size: at most",
            f"+the server announces {os.path.getsize(path('www', 'big.zip'))} bytes, more than the limit of",
            "+the archive does not fit: at most", "-No space left on device", booted("good")],
        report=lambda c: [m.group(0) + " (the 300 MiB archive refused before its download)" for m in
                          [re.search(r"URL 1 of 2 failed after [0-9.]* s", read(path("too-big.console")))] if m]),
]

if __name__ == "__main__":
    sys.exit(harness.main(SCENARIOS))
