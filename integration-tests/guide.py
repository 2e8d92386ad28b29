#!/usr/bin/env python3
"""Runs the operator's guide verbatim: every ```sh block of README.md and
docs/operator-guide.md, in the order the text gives them, in one bash (state such
as `cd`, exported variables and files carries from block to block), from an empty
directory.

A block may be preceded (on the nearest non-blank line) by one directive:

  <!-- guide: skip: REASON -->          not run here; the reason says why and what covers it
  <!-- guide: needs VAR: REASON -->     run only when the environment has VAR, else SKIPPED
  <!-- guide: instead: COMMAND -- REASON -->  COMMAND runs in place of the block
  <!-- guide: expect: TEXT -->          the block's output must contain TEXT
  <!-- guide: exit N: TEXT -->          the block must end with status N, its output contain TEXT

Every skip is printed with its reason, at the start and in the summary. A block
without a directive must succeed (bash -e). Nothing else is changed: the commands
are the text's, byte for byte.

usage: guide.py [--check] [--keep]
  --check  only parse: every directive is known, every skip has a reason (fast; lints)
  --keep   keep the work directory
The environment the guide names: STBOOT_RS_GIT (set to this checkout); COREBOOT_DIR
(optional: the coreboot blocks). Prints "guide: N blocks ran, M skipped" at the end.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "docs/operator-guide.md"]
DIRECTIVE = re.compile(r"^<!-- guide: (skip|needs|instead|expect|exit)\b(.*?)-->\s*$")
TWO_COMMANDS = """bash scripts/demo.sh     # (as root) build everything, sign a demo OS, boot it in QEMU over HTTPS
bash scripts/test.sh     # (as root) all tests: lints, unit, interop and QEMU end-to-end"""
TIMEOUT = int(os.environ.get("GUIDE_TIMEOUT", "1500"))


class Block:
    def __init__(self, doc, line, text, kind, arg):
        self.doc, self.line, self.text, self.kind, self.arg = doc, line, text, kind, arg
        self.skip_reason = None

    def where(self):
        return f"{self.doc}:{self.line}"


def parse_directive(doc, lineno, line):
    m = DIRECTIVE.match(line.strip())
    if not m:
        if line.strip().startswith("<!-- guide"):
            raise SystemExit(f"{doc}:{lineno}: unknown guide directive: {line.strip()}")
        return None, None
    kind, rest = m.group(1), m.group(2).strip()
    if kind == "skip":
        reason = rest.lstrip(":").strip()
        if len(reason) < 10:
            raise SystemExit(f"{doc}:{lineno}: a skip needs its reason: <!-- guide: skip: REASON -->")
        return kind, reason
    if kind == "needs":
        m2 = re.match(r"([A-Z_][A-Z0-9_]*):\s*(.{10,})$", rest)
        if not m2:
            raise SystemExit(f"{doc}:{lineno}: expected <!-- guide: needs VAR: REASON -->")
        return kind, (m2.group(1), m2.group(2))
    if kind == "instead":
        cmd, sep, reason = rest.lstrip(":").partition(" -- ")
        if not sep or len(reason.strip()) < 10:
            raise SystemExit(f"{doc}:{lineno}: expected <!-- guide: instead: COMMAND -- REASON -->")
        return kind, (cmd.strip(), reason.strip())
    if kind == "expect":
        text = rest.lstrip(":").strip()
        if not text:
            raise SystemExit(f"{doc}:{lineno}: expected <!-- guide: expect: TEXT -->")
        return kind, text
    m2 = re.match(r"(\d+):\s*(.+)$", rest)
    if not m2:
        raise SystemExit(f"{doc}:{lineno}: expected <!-- guide: exit N: TEXT -->")
    return kind, (int(m2.group(1)), m2.group(2).strip())


def blocks_of(doc):
    lines = open(os.path.join(ROOT, doc), encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        lang, start = fence.group(2), i
        j = i + 1
        while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        if j == len(lines):
            raise SystemExit(f"{doc}:{start + 1}: a code block that never ends")
        if lang in ("sh", "bash", "shell"):
            k = start - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            kind, arg = parse_directive(doc, k + 1, lines[k]) if k >= 0 else (None, None)
            out.append(Block(doc, start + 1, "\n".join(lines[start + 1 : j]) + "\n", kind, arg))
        else:
            # a directive belongs to a command block; one above anything else is a mistake
            k = start - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            if k >= 0 and lines[k].strip().startswith("<!-- guide"):
                raise SystemExit(f"{doc}:{k + 1}: a guide directive above a ```{lang} block (only sh blocks run)")
        i = j + 1
    return out


def script_for(blocks, work):
    """One bash script: each block runs in the same shell, between marker lines."""
    s = ["set -euo pipefail", f"cd {quote(work)}",
         # what the guide starts in the background: ssh-agent (SSH_AGENT_PID), nginx and
         # swtpm (their command lines name the work directory)
         f"trap 'st=$?; set +e; [ -n \"${{SSH_AGENT_PID:-}}\" ] && kill $SSH_AGENT_PID 2>/dev/null; "
         f"pkill -f -- {quote(work)} 2>/dev/null; exit $st' EXIT"]
    for n, b in enumerate(blocks):
        if b.skip_reason:
            continue
        s.append(f"echo \"@@guide-block {n} $SECONDS@@\"")
        text = b.text
        if b.kind == "instead":
            text = b.arg[0] + "\n"
        if b.kind == "exit":
            # the block's own status is the result; the shell it ran in goes on
            s.append("set +e")
            s.append("(set -e\n" + text + ")")
            s.append(f"echo \"@@guide-status {n} $?@@\"")
            s.append("set -e")
        else:
            s.append(text)
    s.append("echo \"@@guide-end $SECONDS@@\"")
    return "\n".join(s) + "\n"


def quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def main():
    args = sys.argv[1:]
    check_only = "--check" in args
    keep = "--keep" in args
    blocks = []
    for doc in DOCS:
        blocks += blocks_of(doc)
    # README.md opens with the two commands and nothing else (no directive above them)
    first = blocks[0]
    if first.doc != "README.md" or first.text.split() != TWO_COMMANDS.split():
        raise SystemExit(f"{first.where()}: README.md must open with the two commands:\n{TWO_COMMANDS}")
    first.skip_reason = ("the two commands themselves: the test command runs the demo in its demo phase "
                         "and this guide in its guide phase")
    for b in blocks:
        if b.kind == "skip":
            b.skip_reason = b.arg
        elif b.kind == "needs" and not os.environ.get(b.arg[0]):
            b.skip_reason = f"{b.arg[0]} is not set: {b.arg[1]}"
    skipped = [b for b in blocks if b.skip_reason]
    if check_only:
        print(f"guide: {len(blocks)} command blocks, {len(blocks) - len(skipped)} would run here, "
              f"{len(skipped)} skipped with a reason")
        return 0
    for b in skipped:
        print(f"guide: SKIPPED {b.where()}: {b.skip_reason}")
    for b in blocks:
        if b.kind == "instead":
            print(f"guide: INSTEAD {b.where()}: runs `{b.arg[0]}`: {b.arg[1]}")

    base = tempfile.mkdtemp(prefix="stboot-guide-")
    os.chmod(base, 0o755)
    env = dict(os.environ)
    env["STBOOT_RS_GIT"] = ROOT
    env["GUIDE_CHECKOUT"] = ROOT
    log_path = os.path.join(ROOT, "target", "guide.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    t0 = time.time()
    with open(log_path, "w") as log:
        try:
            # from a file outside the work directory: the EXIT trap's pkill must not match bash itself
            script = os.path.join(ROOT, "target", "guide-script.sh")
            with open(script, "w") as f:
                f.write(script_for(blocks, base))
            p = subprocess.run(["bash", script], env=env, stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT, timeout=TIMEOUT)
            status = p.returncode
        except subprocess.TimeoutExpired:
            status = "timeout"
    out = open(log_path, encoding="utf-8", errors="replace").read()
    if not keep:
        shutil.rmtree(base, ignore_errors=True)

    # split the output by block
    parts, current = {}, None
    statuses, started, seconds = {}, {}, {}
    for line in out.split("\n"):
        m = re.match(r"^@@guide-(block (\d+)|end) (\d+)@@$", line)
        if m:
            if current is not None:
                seconds[current] = int(m.group(3)) - started[current]
            if m.group(2) is None:
                current = None
                continue
            current = int(m.group(2))
            parts[current], started[current] = [], int(m.group(3))
            continue
        m = re.match(r"^@@guide-status (\d+) (\d+)@@$", line)
        if m:
            statuses[int(m.group(1))] = int(m.group(2))
            continue
        if current is not None:
            parts[current].append(line)
    failures = []
    ran = 0
    for n, b in enumerate(blocks):
        if b.skip_reason:
            continue
        if n not in parts:
            failures.append(f"{b.where()}: never reached")
            break
        ran += 1
        text = "\n".join(parts[n])
        if b.kind == "expect" and b.arg not in text:
            failures.append(f"{b.where()}: its output lacks {b.arg!r}")
        if b.kind == "exit":
            want, words = b.arg
            if statuses.get(n) != want:
                failures.append(f"{b.where()}: ended with status {statuses.get(n)}, the text says {want}")
            if words not in text:
                failures.append(f"{b.where()}: its output lacks {words!r}")
    if "@@guide-end " not in out or status != 0:
        last = max(parts) if parts else None
        where = blocks[last].where() if last is not None else "before the first block"
        failures.insert(0, f"the run stopped with status {status} in the block at {where}")
    secs = time.time() - t0
    if failures:
        tail = out.split("\n")[-60:]
        print("\n".join(tail))
        for f in failures:
            print(f"guide: FAILED: {f}")
        print(f"guide: {ran} blocks reached, {len(skipped)} skipped, {secs:.0f} s (whole output: {log_path})")
        return 1
    slow = sorted(seconds.items(), key=lambda kv: -kv[1])[:5]
    print("guide: slowest blocks: " + ", ".join(f"{blocks[n].where()} {t} s" for n, t in slow))
    print(f"guide: {ran} blocks ran, {len(skipped)} skipped, {secs:.0f} s (output: {log_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
