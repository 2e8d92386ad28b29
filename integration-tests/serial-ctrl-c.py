#!/usr/bin/env python3
"""Play the operator at the serial console: connect to QEMU's serial chardev socket,
wait until the console shows PATTERN, then send Ctrl-C (0x03), and keep reading
(QEMU must not block on a full socket) until QEMU closes it. Everything read is
written to CONSOLE: the chardev's own logfile= is not used, because QEMU logs a
chunk again when the socket made it retry the write (seen as doubled letters).

usage: serial-ctrl-c.py SOCKET PATTERN TIMEOUT_SECONDS CONSOLE [CTRL_S_PATTERN [TEXT]]
With CTRL_S_PATTERN, a Ctrl-S (0x13, XOFF) is sent first, when that line appears:
a stray byte that must not stop the console (software flow control is off).
With TEXT, TEXT is typed at PATTERN instead of Ctrl-C (a verifier's nonce).
Prints "sent Ctrl-S", "sent Ctrl-C" (or "sent N bytes") or "pattern not seen" on stderr.
"""
import socket, sys, time

path, pattern = sys.argv[1], sys.argv[2].encode()
timeout = float(sys.argv[3])
xoff_at = sys.argv[5].encode() if len(sys.argv) > 5 and sys.argv[5] else None
text = sys.argv[6].encode() if len(sys.argv) > 6 and sys.argv[6] else b"\x03"
console = open(sys.argv[4], "wb", buffering=0)
end = time.time() + timeout
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
while True:
    try:
        s.connect(path)
        break
    except OSError:
        if time.time() > end:
            sys.exit("serial-ctrl-c: cannot connect to " + path)
        time.sleep(0.05)
s.settimeout(1)
seen, sent = b"", False
while time.time() < end:
    try:
        data = s.recv(65536)
    except socket.timeout:
        continue
    if not data:
        break
    console.write(data)
    if not sent:
        seen = (seen + data)[-4096:]
        if xoff_at is not None:
            if xoff_at in seen:
                s.sendall(b"\x13")
                xoff_at, seen = None, b""
                print("serial-ctrl-c: sent Ctrl-S", file=sys.stderr)
        elif pattern in seen:
            s.sendall(text)
            sent = True
            what = "Ctrl-C" if text == b"\x03" else f"{len(text)} bytes"
            print(f"serial-ctrl-c: sent {what}", file=sys.stderr)
if not sent:
    print("serial-ctrl-c: pattern not seen", file=sys.stderr)
