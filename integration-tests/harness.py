#!/usr/bin/env python3
"""The QEMU scenario harness: runs the scenarios of scenarios.py (its entry point).

    integration-tests/run.sh [NAME...]     all scenarios, or only those named
    integration-tests/run.sh --list        the scenarios, one per line

What a scenario needs (binaries, PKI, packages, trust policies, kernels, servers) is a
fixture: built or started the first time a scenario asks for it, once, and shared.
Every process the harness starts (servers, swtpm, QEMU, helpers) is registered for
cleanup before it starts and runs in its own process group, which is killed at the
end, also after a failure or Ctrl-C. Ports are allocated, not picked by hand. Two
QEMUs run at a time; each scenario's duration is printed. Artifacts are built with
the shell functions of lib.sh (shared with scripts/demo.sh); results are judged by
the lines on the serial console and what the booted test OS printed.
"""

import argparse
import concurrent.futures
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
W = os.environ.get("W") or os.path.join(ROOT, "target", "it")
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_CODE_SECBOOT = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
BOOTED = "TEST-OS-BOOTED"
ZERO_PCR = "0" * 64
_print_lock = threading.Lock()


def log(msg):
    with _print_lock:
        print(f"{time.strftime('%H:%M:%S')} [it] {msg}", file=sys.stderr, flush=True)


def path(*parts):
    return os.path.join(W, *parts)


class SetupError(Exception):
    """A fixture could not be made: every scenario that needs it fails."""


# -- processes and ports -----------------------------------------------------------


class Processes:
    """Every process the harness starts, and every other thing to undo. `start`
    registers the entry before the process exists, so a failure between the two
    leaves nothing behind; `close` (and `stop`) kill the whole process group: TERM,
    then KILL after 5 s. `on_close` registers an undo (a namespace to delete)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries = []

    def start(self, name, args, **kw):
        entry = {"name": name, "proc": None}
        with self.lock:
            self.entries.append(entry)
        kw.setdefault("stdin", subprocess.DEVNULL)
        entry["proc"] = subprocess.Popen(args, start_new_session=True, **kw)
        return entry["proc"]

    def run(self, name, args, **kw):
        """`args` to its end, registered like a server (a long build is killed with
        the rest after Ctrl-C); returns (exit code, stdout, stderr) as text."""
        proc = self.start(name, args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        out, err = proc.communicate()
        self.stop(proc)
        return proc.returncode, out, err

    def on_close(self, name, undo):
        with self.lock:
            self.entries.append({"name": name, "proc": None, "undo": undo})

    @staticmethod
    def _kill(proc):
        if proc is None or proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(5)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop(self, proc):
        self._kill(proc)
        with self.lock:
            self.entries = [e for e in self.entries if e["proc"] is not proc]

    def close(self):
        with self.lock:
            entries, self.entries = self.entries, []
        for e in reversed(entries):
            self._kill(e["proc"])
            if e.get("undo"):
                with contextlib.suppress(Exception):
                    e["undo"]()


class Ports:
    """Free ports on 127.0.0.1, from the kernel (bind to port 0), never handed out
    twice in one run."""

    def __init__(self):
        self.lock = threading.Lock()
        self.given = set()

    def get(self, kind=socket.SOCK_STREAM):
        with self.lock:
            while True:
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", 0))
                    port = s.getsockname()[1]
                if port not in self.given:
                    self.given.add(port)
                    return port


    def pair(self):
        """Two consecutive free TCP ports (swtpm's TCTI finds the control port at
        the server port + 1)."""
        while True:
            port = self.get()
            with self.lock, socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                if port + 1 not in self.given:
                    self.given.add(port + 1)
                    return port, port + 1


def wait_for(what, cond, timeout=10.0, interval=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(interval)
    raise SetupError(f"{what} did not happen within {timeout:.0f} s")


def tcp_open(host, port, netns=None):
    if netns:
        r = subprocess.run(["ip", "netns", "exec", netns, "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return r.returncode == 0
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def pcr_line(what, text):
    """`pcr12=<64 hex> pcr13=...` from `what`'s output, or an error: an empty line
    would make every "+TEST-OS-PCRS ..." check pass."""
    line = " ".join(text.split())
    if not re.fullmatch(r"pcr\d+=[0-9a-f]{64}( pcr\d+=[0-9a-f]{64})*", line):
        raise SetupError(f"{what} gave {line!r}, not PCR values")
    return line


# -- fixtures ----------------------------------------------------------------------


class Fixtures:
    """Lazily made, memoized artifacts and servers: `ctx.get("pki")` makes the PKI
    the first time (and whatever it needs), once, also when two scenarios ask at the
    same time. A fixture that failed fails every later request with its error."""

    def __init__(self, procs, ports):
        self.procs = procs
        self.ports = ports
        self.lock = threading.Lock()
        self.locks = {}
        self.values = {}
        self.kernel_build = threading.Lock()  # build-kernel.sh has one object directory

    def once(self, key, make):
        """`make()`, the first time `key` is asked for; its value (or its error) after."""
        with self.lock:
            lock = self.locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self.values:
                try:
                    self.values[key] = ("ok", make())
                except Exception as e:  # noqa: BLE001 - recorded, raised to each user
                    self.values[key] = ("err", e)
            state, value = self.values[key]
        if state == "err":
            raise SetupError(f"{'/'.join(map(str, key))}: {value}")
        return value

    def get(self, name, *args):
        """The fixture made by `make_NAME(*args)`."""
        return self.once((name, *args), lambda: getattr(self, "make_" + name.replace("-", "_"))(*args))

    # lib.sh's builders, in bash, with the harness's W
    def sh(self, script, capture=False, env=None):
        """Run lib.sh's `script` (its progress lines shown after it); its stdout if
        `capture`."""
        full = f'set -e; . "{HERE}/lib.sh"; kernel_paths; {script}'
        code, out, err = self.procs.run(script.split()[0], ["bash", "-c", full], cwd=ROOT,
                                        env={**os.environ, "W": W, **(env or {})})
        with _print_lock:
            for line in err.splitlines():
                if " [it] " in line:
                    print(line, file=sys.stderr, flush=True)
        if code != 0:
            raise SetupError(f"{script.split()[0]} failed (exit {code}): {err.strip()[-2000:]}")
        return out.strip() if capture else None

    def var(self, name):
        return self.sh(f'echo "${name}"', capture=True)

    # binaries and files
    def make_binaries(self):
        self.sh("build_all")
        mods = os.path.join(ROOT, "target/kernel/lib/modules")
        return {
            "stmgr": os.path.join(ROOT, "target/x86_64-unknown-linux-musl/release/stmgr"),
            "stboot": os.path.join(ROOT, "target/x86_64-unknown-linux-musl/release/stboot"),
            "kernel": self.var("KERNEL"),
            # by name; tls is net/tls/tls.ko (not another driver's tls.ko)
            "modules": {os.path.basename(f)[:-3]: os.path.join(d, f) for d, _, fs in sorted(os.walk(mods))
                        for f in fs if f.endswith(".ko") and (f != "tls.ko" or d.endswith("/net/tls"))},
        }

    def stmgr(self, *args, capture=True):
        r = subprocess.run([self.get("binaries")["stmgr"], *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        if r.returncode != 0:
            raise SetupError(f"stmgr {' '.join(args[:2])} failed: {r.stderr.strip()[-1000:]}")
        return r.stdout

    def make_packages(self):
        self.get("binaries")
        log("making the test OS, the PKI and the signed packages")
        self.sh("make_testos; make_pki; make_packages")
        return path("www")

    def make_package(self, name):
        """A package beyond make_packages: badkernel, big, provision, enc."""
        self.get("packages")
        script = {
            "badkernel": "make_unbootable_kernel",
            "big": "make_big_pkg big 300",
            "provision": 'make_pkg provision "console=ttyS0 panic=-1 testos=provision" leaf1 leaf3',
            "enc": "make_encrypted_packages",
            "attest": "make_attest_pkg",
            "versions": "make_versioned_pkgs",
            "floor": "make_floor_pkgs",
            "uki": "make_uki_pkg",
            "uki-signed": "make_uki_signed_pkgs",
        }[name]
        if name == "uki-signed":
            self.get("package", "uki")
            self.get("secureboot-keys")
        self.sh(script)
        return path("www", name)

    def make_nonce(self):
        """The verifier's nonce for this run: fresh random bytes, hex."""
        return os.urandom(32).hex()

    def make_trust(self, name):
        """A trust policy directory: net (threshold 2, network), initramfs, sigsum,
        enc (with this machine's age identity), pcrs (measurement_pcrs 8, 9, 15),
        floor2 and floor3 (ospkg_min_version), revoked (leaf2's certificate in
        ospkg_revoked_signers), tpmfloor (ospkg_tpm_floor), ukidb (the Secure Boot
        db certificate in ospkg_uki_db.pem)."""
        self.get("packages")
        method = "initramfs" if name == "initramfs" else "network"
        d = self.sh(f"make_trust_policy {name} 2 {method}", capture=True)
        if name == "sigsum":
            shutil.copy(path("sigsum.policy"), os.path.join(d, "ospkg_trust_policy"))
        elif name == "enc":
            self.get("package", "enc")
            shutil.copy(path("age", "machine.txt"), os.path.join(d, "decryption_identities"))
        elif name in ("floor2", "floor3"):
            with open(os.path.join(d, "trust_policy.json"), "w") as f:
                f.write('{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network", '
                        f'"ospkg_min_version": {name[-1]}}}\n')
        elif name == "tpmfloor":
            with open(os.path.join(d, "trust_policy.json"), "w") as f:
                f.write('{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network", "ospkg_tpm_floor": true}\n')
        elif name == "revoked":
            import ssl
            der = ssl.PEM_cert_to_DER_cert(read(path("pki", "leaf2.pem")))
            with open(os.path.join(d, "ospkg_revoked_signers"), "w") as f:
                f.write(f"# leaf2's key leaked\nsha256:{hashlib.sha256(der).hexdigest()}  leaf2\n")
        elif name == "ukidb":
            shutil.copy(os.path.join(self.get("secureboot-keys"), "db.crt"), os.path.join(d, "ospkg_uki_db.pem"))
        elif name == "pcrs":
            with open(os.path.join(d, "trust_policy.json"), "w") as f:
                f.write('{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network", '
                        '"measurement_pcrs": {"detail": 8, "authority": 9, "identity": 15}}\n')
        return d

    def make_linuxboot_kernel(self):
        with self.kernel_build:
            log("building the LinuxBoot kernel (scripts/build-kernel.sh; cached by its inputs)")
            code, out, err = self.procs.run("build-kernel.sh", ["bash", os.path.join(ROOT, "scripts/build-kernel.sh")])
        if code != 0:
            raise SetupError(f"building the LinuxBoot kernel failed: {err.strip()[-3000:]}")
        return out.strip()

    def embed_kernel(self, name):
        """The LinuxBoot kernel with W/NAME.cpio.gz embedded, as W/NAME.bzImage."""
        self.get("linuxboot-kernel")  # the full build first: the embedded one relinks
        with self.kernel_build:
            self.sh(f"embed_kernel {name}")
        return path(f"{name}.bzImage")

    def make_expected_pcrs(self, pkg, trust, identity=None, tpm_floor=None):
        """expected-pcrs.py's "pcrN=... ..." for a package under a trust policy (on a
        machine whose TPM floor is `tpm_floor`, when the policy asks for one)."""
        args = [sys.executable, os.path.join(HERE, "expected-pcrs.py"), pkg, self.get("trust", trust)]
        if identity:
            args.append(identity)
        if tpm_floor is not None:
            args.append(f"--tpm-floor={tpm_floor}")
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise SetupError(f"expected-pcrs.py failed: {r.stderr.strip()}")
        return pcr_line("expected-pcrs.py", r.stdout)

    def make_predicted_pcrs(self, pkg, trust, identity=None, tpm_floor=None):
        """stmgr tpm predict's PCRs, as "pcrN=... ..." (before any boot)."""
        args = ["tpm", "predict", "-trustPolicy", self.get("trust", trust), "-ospkg", pkg]
        if identity:
            args += ["-identity", identity]
        if tpm_floor is not None:
            args += ["-tpmFloor", str(tpm_floor)]
        return pcr_line("stmgr tpm predict", self.stmgr(*args).replace("PCR", "pcr"))

    def make_secureboot_keys(self):
        self.get("binaries")
        self.sh("make_secureboot_keys")
        return path("sb")

    # servers
    def make_nginx(self, cert, netns=None, listen="127.0.0.1", port=None):
        """nginx serving W/www over TLS with the server certificate of `cert` (a CA
        name in the PKI); returns its port."""
        self.get("packages")
        port = port or self.ports.get()
        name = f"nginx-{cert}-{port}" + (f"-{netns}" if netns else "")
        d = path(name)
        self.sh(f'nginx_conf "{d}" {port} {cert} "{listen}"')
        prefix = ["ip", "netns", "exec", netns] if netns else []
        proc = self.procs.start(name, [*prefix, "nginx", "-c", f"{d}/nginx.conf", "-p", d],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(f"nginx on {listen}:{port}", lambda: proc.poll() is None
                     and tcp_open(listen.strip("[]"), port, netns), timeout=10)
        except SetupError:
            log(open(os.path.join(d, "logs", "error.log")).read()[-2000:])
            raise
        return {"port": port, "dir": d, "proc": proc}

    def make_hostile(self):
        """integration-tests/hostile-server.py: returns its TLS port."""
        self.get("packages")
        tls, http, silent = self.ports.get(), self.ports.get(), self.ports.get()
        out = open(path("hostile.ready"), "w")
        self.procs.start("hostile-server", [
            sys.executable, os.path.join(HERE, "hostile-server.py"), "--tls-port", str(tls), "--http-port", str(http),
            "--silent-port", str(silent), "--cert", path("pki/tls-ca-server.pem"),
            "--key", path("pki/tls-ca-server.key"), "--root", path("www"), "--lifetime", "1800"],
            stdout=out, stderr=open(path("hostile.log"), "w"))
        wait_for("the hostile server's ready line", lambda: "ready" in open(path("hostile.ready")).read(), 10)
        return tls

    def make_down_port(self):
        """A port nothing listens on."""
        return self.ports.get()

    def make_late_port(self, _scenario):
        """The port of a server a scenario starts late (nothing listens before)."""
        return self.ports.get()

    def make_port(self, _scenario, _index):
        """A UDP port of a scenario's own (QEMU socket netdevs, the VLAN switch)."""
        return self.ports.get(socket.SOCK_DGRAM)

    def make_ipv6_net(self, name, *dnsmasq_args):
        """The network namespace stit-NAME for an IPv6 scenario: a bridge with
        2001:db8::1/64 and the tap device tap0 QEMU attaches to; dnsmasq sends router
        advertisements (plus DNSMASQ_ARGS) and answers DNS for os.test with
        2001:db8::1 (AAAA; the A query gets "no data": a REFUSED one, dnsmasq's answer
        without --local, makes musl's getaddrinfo fail as a whole); nginx serves W/www
        on [2001:db8::1]:8443. No IPv4 on that link; nothing leaves the namespace."""
        self.get("packages")
        ns = f"stit-{name}"
        self.procs.on_close(f"netns {ns}", lambda: subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL))
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        for cmd in (["netns", "add", ns], ["-n", ns, "link", "set", "lo", "up"],
                    ["-n", ns, "link", "add", "br0", "type", "bridge"], ["-n", ns, "link", "set", "br0", "up"],
                    ["-n", ns, "addr", "add", "2001:db8::1/64", "dev", "br0", "nodad"],
                    ["-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap"],
                    ["-n", ns, "link", "set", "tap0", "master", "br0"], ["-n", ns, "link", "set", "tap0", "up"]):
            r = subprocess.run(["ip", *cmd], stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                raise SetupError(f"ip {' '.join(cmd)}: {r.stderr.strip()}")
        # (--bind-dynamic: br0 gets its link-local address, which dnsmasq advertises as
        # DNS server, only once QEMU opens tap0); -k: in the foreground, so its PID is ours
        self.procs.start(f"dnsmasq {ns}", [
            "ip", "netns", "exec", ns, "dnsmasq", "-k", "--interface=br0", "--bind-dynamic", "--no-resolv",
            "--no-hosts", "--host-record=os.test,2001:db8::1", "--local=/test/", "--enable-ra", *dnsmasq_args,
            "--conf-file=/dev/null", "--dhcp-leasefile=/dev/null", f"--pid-file={path(name + '.dnsmasq.pid')}",
            f"--log-facility={path(name + '.dnsmasq.log')}", "--log-dhcp"])
        return {"netns": ns, "nginx": self.make_nginx("tls-ca", netns=ns, listen="[2001:db8::1]", port=8443)}


# -- booting -----------------------------------------------------------------------


def ovmf_args(vars_file, code=OVMF_CODE):
    return ["-machine", "q35", "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}"]


def start_swtpm(ctx, name, identity=None, enrol=False, floor=None, state_of=None):
    """A fresh swtpm for one boot (its state in W/tpm-NAME), with the UX identity in
    NV index 0x01420001 when `identity` (a file) is given, as stprov leaves it. With
    `enrol`, the TPM is manufactured first (swtpm_setup: an EK certificate from
    swtpm's local CA) and its AK enrolled by the four stmgr attest commands, as an
    operator would before the machine's first boot; the record is W/NAME.enrol/ak.json.
    With `floor`, its TPM floor is defined at that value (stmgr tpm floor init).
    With `state_of`, it is not fresh: it goes on from scenario STATE_OF's TPM as
    that boot left it (NV kept, PCRs reset as by a power cycle)."""
    d = path(f"tpm-{name}")
    shutil.rmtree(d, ignore_errors=True)
    if state_of:
        shutil.copytree(path(f"tpm-{state_of}"), d, ignore=shutil.ignore_patterns("sock"))
    else:
        os.makedirs(d)
    if enrol:
        r = subprocess.run(["swtpm_setup", "--tpm2", "--create-ek-cert", "--overwrite", "--tpmstate", d],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise SetupError(f"swtpm_setup: {r.stdout.strip()[-2000:]}")
    if identity or enrol or floor is not None:
        port, ctrl = ctx.ports.pair()
        p = ctx.procs.start(f"swtpm {name} (provisioning)", [
            "swtpm", "socket", "--tpm2", "--tpmstate", f"dir={d}", "--server",
            f"type=tcp,port={port},bindaddr=127.0.0.1", "--ctrl", f"type=tcp,port={ctrl},bindaddr=127.0.0.1",
            "--flags", "not-need-init,startup-clear"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("swtpm's TCP port", lambda: tcp_open("127.0.0.1", port))
        t = f"swtpm:host=127.0.0.1,port={port}"
        cmds = []
        if identity:
            size = str(os.path.getsize(identity))
            cmds += [["tpm2_nvdefine", "-T", t, "0x01420001", "-C", "o", "-s", size, "-a",
                      "ownerwrite|ownerread|authwrite|authread"],
                     ["tpm2_nvwrite", "-T", t, "0x01420001", "-C", "o", "-i", identity]]
        if enrol:
            e, stmgr, tpm = path(f"{name}.enrol"), ctx.get("binaries")["stmgr"], f"tcp:127.0.0.1:{port}"
            shutil.rmtree(e, ignore_errors=True)
            os.makedirs(e)
            cmds += [[stmgr, "attest", "request", "-tpm", tpm, "-out", f"{e}/request.json"],
                     [stmgr, "attest", "challenge", "-request", f"{e}/request.json", "-ekCA",
                      "/var/lib/swtpm-localca/issuercert.pem", "-out", f"{e}/challenge.json", "-state",
                      f"{e}/pending.json"],
                     [stmgr, "attest", "activate", "-tpm", tpm, "-challenge", f"{e}/challenge.json", "-out",
                      f"{e}/answer.json"],
                     [stmgr, "attest", "enrol", "-state", f"{e}/pending.json", "-answer", f"{e}/answer.json",
                      "-out", f"{e}/ak.json"]]
        if floor is not None:
            cmds.append([ctx.get("binaries")["stmgr"], "tpm", "floor", "init", "-tpm", f"tcp:127.0.0.1:{port}",
                         "-floor", str(floor)])
        cmds.append(["tpm2_shutdown", "-T", t])
        for cmd in cmds:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise SetupError(f"{os.path.basename(cmd[0])} {cmd[1]}: {r.stdout.strip()}")
            if enrol and cmd[1] == "attest":
                with open(path(f"{name}.enrol", "log.txt"), "a") as f:
                    f.write(f"$ stmgr {' '.join(cmd[1:3])} ...\n{r.stdout}")
        subprocess.run(["swtpm_ioctl", "--tcp", f"127.0.0.1:{ctrl}", "-s"], stdout=subprocess.DEVNULL)
        p.wait(10)
        ctx.procs.stop(p)
    sock = os.path.join(d, "sock")
    proc = ctx.procs.start(f"swtpm {name}", ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={d}",
                                             "--ctrl", f"type=unixio,path={sock}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for("swtpm's socket", lambda: unix_open(sock))
    return proc, sock


def unix_open(sock):
    """Something accepts on the Unix socket `sock` (its file exists from bind(),
    before listen(): a QEMU connecting then would be refused)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(sock)
            return True
        except OSError:
            return False


def boot(ctx, s, live=False):
    """Boot scenario `s` in QEMU, its console in W/NAME.console; returns when QEMU
    ended (the guest powered off or panicked, `stop_at` appeared, or the timeout)."""
    name = s.name
    console = path(f"{name}.console")
    open(console, "w").close()
    args = ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "1", "-display", "none",
            "-monitor", "none", "-no-reboot"]
    cmdline = f"console=ttyS0 panic=-1 {s.append}"
    kind = s.payload
    if kind in ("initrd", "debian", "efivar"):
        kernel = ctx.get("binaries")["kernel"] if kind == "debian" else ctx.get("linuxboot-kernel")
        args += ["-kernel", kernel, "-initrd", path(f"{name}.cpio.gz"), "-append", cmdline]
    elif kind == "embedded":
        args += ["-kernel", ctx.embed_kernel(name), "-append", cmdline]
    elif kind == "rom":
        args += ["-machine", "q35", "-bios", path(f"{name}.rom")]
    elif kind in ("esp", "iso", "secureboot"):
        shutil.copy(OVMF_VARS if kind != "secureboot" else path("sb", "enrolled.vars"), path(f"{name}.vars"))
        if kind == "secureboot":
            args += ["-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on",
                     "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE_SECBOOT}",
                     "-drive", f"if=pflash,format=raw,unit=1,file={path(name + '.vars')}"]
        else:
            args += ovmf_args(path(f"{name}.vars"))
        if kind == "iso":
            args += ["-cdrom", path(f"{name}.iso")]
        else:
            args += ["-drive", f"file={path(name + '.esp')},format=raw,if=virtio"]
    if kind == "efivar":
        args += ovmf_args(path(f"{name}.vars"))
    nic = s.nic(ctx)
    args += nic if nic is not None else ["-nic", "user,model=e1000"]
    args += s.qemu(ctx)
    swtpm, sock = start_swtpm(ctx, name, path(f"{name}.identity") if s.identity else None, s.enrol, s.tpm_floor,
                              s.tpm_state_of)
    args += ["-chardev", f"socket,id=chrtpm,path={sock}", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
             "-device", "tpm-tis,tpmdev=tpm0"]
    helper = None
    if s.ctrl_c_at:
        # the serial line is a socket an "operator" (serial-ctrl-c.py) types Ctrl-C
        # into once the console shows ctrl_c_at (and Ctrl-S, XOFF, at ctrl_s_at before
        # it: a stray byte that must not stop the console)
        serial = path(f"{name}.serial")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(serial)
        args += ["-chardev", f"socket,id=ser0,path={serial},server=on,wait=off", "-serial", "chardev:ser0"]
        helper = ctx.procs.start(f"serial-ctrl-c {name}", [
            sys.executable, os.path.join(HERE, "serial-ctrl-c.py"), serial, s.ctrl_c_at, str(s.timeout), console,
            s.ctrl_s_at or "", s.serial_text(ctx)], stderr=open(path(f"{name}.keys.log"), "w"))
    else:
        args += ["-serial", f"file:{console}"]
    prefix = ["ip", "netns", "exec", s.netns] if s.netns else []
    qemu = ctx.procs.start(f"qemu {name}", [*prefix, *args], stdout=open(path(f"{name}.qemu.log"), "w"),
                           stderr=subprocess.STDOUT)
    s.done = threading.Event()
    hooks = [threading.Thread(target=h, args=(ctx, s), daemon=True) for h in s.during]
    for h in hooks:
        h.start()
    end = time.monotonic() + s.timeout
    shown = 0
    while qemu.poll() is None and time.monotonic() < end:
        if s.stop_at and s.stop_at in read(console):
            break
        if live:
            text = read(console)
            sys.stdout.write(text[shown:])
            sys.stdout.flush()
            shown = len(text)
        time.sleep(0.2)
    if qemu.poll() is None and time.monotonic() >= end:
        log(f"{name}: QEMU still running after {s.timeout} s: stopped")
    s.done.set()
    ctx.procs.stop(qemu)
    if helper:
        with contextlib.suppress(subprocess.TimeoutExpired):
            helper.wait(10)
        ctx.procs.stop(helper)
    ctx.procs.stop(swtpm)
    for h in hooks:
        h.join(30)
    if live:
        sys.stdout.write(read(console)[shown:])


def read(p):
    try:
        with open(p, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def wait_console(s, pattern):
    """Block until scenario s's console shows `pattern` (for hooks that act
    mid-boot); false if its QEMU ended first."""
    while not s.done.is_set():
        if pattern in read(path(f"{s.name}.console")):
            return True
        time.sleep(0.2)
    return False


# -- judging -----------------------------------------------------------------------


def console_errors(name, patterns):
    """"+pattern" must be on the console, "-pattern" must not."""
    text = read(path(f"{name}.console"))
    errs = []
    for p in patterns:
        want, pat = p[0], p[1:]
        if want == "+" and pat not in text:
            errs.append(f"missing on console: {pat}")
        elif want == "-" and pat in text:
            errs.append(f"unexpected on console: {pat}")
    return errs


def handoff_errors(ctx, name, checks, pcrs=(12, 13, 14), expect=()):
    """What stboot handed to the OS (/stboot, printed by the test OS): the event log
    replays (stmgr tpm replay) to exactly the PCRs the OS read through sysfs and
    TPM2_PCR_Read, every other PCR from 8 to 15 but IMA's 10 is still zero (nothing
    was measured anywhere else), tpm2_eventlog parses the log, and the boot report is
    JSON on which each check (a Python expression over `r`) is true. `expect`: the
    "pcrN=.. ..." the replay must equal (expected-pcrs.py's, stmgr tpm predict's)."""
    import base64
    text = read(path(f"{name}.console")).replace("\r", "")
    lines = text.split("\n")
    errs = []
    b64 = "".join(ln[len("TEST-OS-EVENTLOG "):] for ln in lines if ln.startswith("TEST-OS-EVENTLOG "))
    evlog = path(f"{name}.eventlog.bin")
    try:
        with open(evlog, "wb") as f:
            f.write(base64.b64decode(b64))
    except ValueError:
        errs.append("the event log printed by the test OS is not base64")
    r = subprocess.run([ctx.get("binaries")["stmgr"], "tpm", "replay", evlog], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    replayed = " ".join(ln.replace("PCR", "pcr") for ln in r.stdout.split("\n") if ln.startswith("PCR"))
    values = dict(kv.split("=", 1) for kv in replayed.split())
    if sorted(values) != sorted(f"pcr{n}" for n in pcrs):
        errs.append(f"the event log does not replay to PCRs {pcrs} ({replayed})")
    for want in expect:
        if replayed != want:
            errs.append(f"the replayed log gives {replayed}, expected {want}")
    for how in ("TEST-OS-SYSFS-PCRS", "TEST-OS-PCRS-8-15"):
        line = " " + next((ln for ln in lines if ln.startswith(how + " ")), "") + " "
        for n in range(8, 16):
            want = f"pcr{n}={values.get(f'pcr{n}', ZERO_PCR)}"
            if n == 10 and f"pcr{n}" not in values:
                continue
            if f" {want} " not in line:
                errs.append(f"{how}: expected {want} (replayed log: {replayed})")
    r = subprocess.run(["tpm2_eventlog", evlog], stdout=open(path(f"{name}.tpm2_eventlog.txt"), "w"),
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        errs.append("tpm2_eventlog cannot parse the log")
    try:
        begin = next(i for i, ln in enumerate(lines) if ln.startswith("TEST-OS-REPORT-BEGIN"))
        end = next(i for i, ln in enumerate(lines) if i > begin and ln.startswith("TEST-OS-REPORT-END"))
        report = json.loads("\n".join(lines[begin + 1:end]))
    except (StopIteration, ValueError):
        return errs + ["the boot report is missing or not JSON"]
    with open(path(f"{name}.report.json"), "w") as f:
        json.dump(report, f, indent=2)
    # the verified descriptor, the bytes whose SHA-256 the report (and PCR 12) names
    b64 = "".join(ln[len("TEST-OS-DESCRIPTOR "):] for ln in lines if ln.startswith("TEST-OS-DESCRIPTOR "))
    try:
        descriptor = base64.b64decode(b64, validate=True)
    except ValueError:
        descriptor = b""
    if not descriptor or hashlib.sha256(descriptor).hexdigest() != report.get("ospkg", {}).get("descriptor_sha256"):
        errs.append("/stboot/descriptor.json is missing, or not the descriptor the report names")
    for c in checks:
        try:
            ok = eval(c, {}, {"r": report})  # noqa: S307 - the checks are this suite's own
        except Exception as e:  # noqa: BLE001
            ok, c = False, f"{c} ({type(e).__name__}: {e})"
        if not ok:
            errs.append(f"the boot report does not satisfy: {c}")
    return errs


# -- running -----------------------------------------------------------------------


def run_scenario(ctx, s, live=False):
    """Set up, boot and judge one scenario; returns (errors, seconds)."""
    t = time.monotonic()
    try:
        if s.skip_reason:
            return None, 0.0
        s.setup(ctx)
        log(f"boot {s.name}")
        boot(ctx, s, live)
        errs = console_errors(s.name, s.expect(ctx))
        for check in s.checks:
            errs += check(ctx)
        if s.handoff is not None:
            errs += [f"handoff: {e}" for e in handoff_errors(ctx, s.name, s.handoff(ctx), s.handoff_pcrs,
                                                               s.handoff_expect(ctx))]
        if s.then and not errs:
            # the same machine's next boot (its TPM as this boot left it)
            then_errs, _ = run_scenario(ctx, s.then, live)
            errs += [f"{s.then.name}: {e}" for e in then_errs or []]
    except SetupError as e:
        errs = [f"setup: {e}"]
    except Exception as e:  # noqa: BLE001 - a bug in a scenario fails that scenario, not the run
        import traceback
        errs = [f"{type(e).__name__}: {e}", *traceback.format_exc().rstrip().split("\n")[-6:]]
    return errs, time.monotonic() - t


def prefetch(ctx, name):
    """Make fixture `name` now; a failure is kept and raised to whoever asks for it."""
    with contextlib.suppress(SetupError):
        ctx.get(name)


def main(table):
    """Run the scenarios of `table` the command line names (all by default)."""
    ap = argparse.ArgumentParser(prog="integration-tests/run.sh", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and what each shows")
    ap.add_argument("--live", action="store_true", help="show the console of a single scenario as it runs")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="QEMUs at a time (default 2: one per core)")
    a = ap.parse_args()
    if a.list:
        for s in table:
            print(f"{s.name:24} {s.doc}")
        return 0
    unknown = [n for n in a.names if n not in {s.name for s in table}]
    if unknown:
        import difflib
        for n in unknown:
            near = difflib.get_close_matches(n, [s.name for s in table], 1)
            print(f"run.sh: no scenario {n!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                  + "; --list lists them", file=sys.stderr)
        return 2
    chosen = [s for s in table if not a.names or s.name in a.names]
    if not a.names:
        shutil.rmtree(W, ignore_errors=True)
    os.makedirs(W, exist_ok=True)
    procs, ports = Processes(), Ports()
    ctx = Fixtures(procs, ports)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    results = {}
    t0 = time.monotonic()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs))
    try:
        # the LinuxBoot kernel needs nothing from the stboot build: it builds beside it
        # (its failure is recorded and reported by the scenarios that need it)
        if any(s.payload != "debian" for s in chosen):
            threading.Thread(target=prefetch, args=(ctx, "linuxboot-kernel"), daemon=True).start()
        # what almost every scenario needs, built before the first boot
        ctx.get("packages")
        futures = {pool.submit(run_scenario, ctx, s, a.live and len(chosen) == 1): s for s in chosen}
        for f in concurrent.futures.as_completed(futures):
            s = futures[f]
            errs, secs = f.result()
            results[s.name] = (errs, secs)
            if errs is None:
                log(f"SKIPPED {s.name}: {s.skip_reason}")
            elif errs:
                log(f"FAIL {s.name} ({secs:.0f} s; console: {path(s.name + '.console')})")
                for e in errs:
                    log(f"    {s.name}: {e}")
                tail = read(path(f"{s.name}.console")).replace("\r", "").split("\n")[-40:]
                with _print_lock:
                    print("\n".join(f"    {s.name}| {ln}" for ln in tail), file=sys.stderr)
            else:
                log(f"PASS {s.name} ({secs:.0f} s)")
    except SetupError as e:
        log(f"setup failed: {e}")
        return 1
    except KeyboardInterrupt as e:
        log(f"interrupted ({e or 'Ctrl-C'}): stopping every QEMU and server")
        return 130
    finally:
        # the processes first: a scenario still booting then ends at once
        procs.close()
        pool.shutdown(wait=True, cancel_futures=True)
        procs.close()
    for s in chosen:
        if results.get(s.name, (None, 0))[0] is not None:
            try:
                for line in s.report(ctx):
                    log(f"{s.name}: {line}")
            except (OSError, SetupError) as e:
                log(f"{s.name}: no report ({e})")
    passed = [n for n, (e, _) in results.items() if e == []]
    failed = [n for n, (e, _) in results.items() if e]
    skipped = [n for n, (e, _) in results.items() if e is None]
    with _print_lock:
        print("== scenario times", file=sys.stderr)
        for s in chosen:
            errs, secs = results.get(s.name, (["not run"], 0))
            verdict = "skipped" if errs is None else "FAIL" if errs else "pass"
            print(f"  {s.name:24} {secs:5.0f} s  {verdict}", file=sys.stderr)
    print(f"scenarios: {len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped "
          f"({time.monotonic() - t0:.0f} s)")
    if failed:
        log(f"failed: {' '.join(failed)}")
    return 1 if failed or len(results) < len(chosen) else 0

