#!/usr/bin/env python3
"""Run a QEMU command whose serial console is on stdout (-serial stdio) and report,
in seconds since the command started, when each marked console line first appeared.

  timed-console.py --console FILE --timeout S --mark NAME=TEXT ... -- qemu-system-x86_64 ...

Prints one JSON object {NAME: seconds or null, ...}. QEMU is stopped once the last
mark has been seen (or at the timeout); the console goes to FILE, QEMU's own messages
to FILE.qemu.log. Wall-clock times,
measured here rather than taken from the guest's own timestamps, so firmware and
kernel decompression count too.
"""
import argparse
import json
import os
import selectors
import signal
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", required=True)
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--mark", action="append", default=[])
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    marks = [m.split("=", 1) for m in a.mark]
    seen = {name: None for name, _ in marks}
    start = time.monotonic()
    qemu_log = open(a.console + ".qemu.log", "wb")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=qemu_log, start_new_session=True)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    buf = b""
    with open(a.console, "wb") as out:
        while time.monotonic() - start < a.timeout and None in seen.values():
            if not sel.select(timeout=0.5):
                if p.poll() is not None:
                    break
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            now = time.monotonic() - start
            out.write(chunk)
            buf = (buf + chunk)[-65536:]
            for name, text in marks:
                if seen[name] is None and text.encode() in buf:
                    seen[name] = round(now, 2)
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    json.dump(seen, sys.stdout)
    print()


if __name__ == "__main__":
    main()
