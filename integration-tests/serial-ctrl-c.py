#!/usr/bin/env python3
"""Play the operator at the serial console: connect to QEMU's serial chardev socket,
wait until the console shows PATTERN, then send Ctrl-C (0x03), and keep reading
(QEMU must not block on a full socket) until QEMU closes it. Everything read is
written to CONSOLE: the chardev's own logfile= is not used, because QEMU logs a
chunk again when the socket made it retry the write (seen as doubled letters).

usage: serial-ctrl-c.py SOCKET PATTERN TIMEOUT_SECONDS CONSOLE
Prints "sent Ctrl-C" or "pattern not seen" on stderr.
"""
import socket, sys, time

path, pattern = sys.argv[1], sys.argv[2].encode()
timeout = float(sys.argv[3])
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
        if pattern in seen:
            s.sendall(b"\x03")
            sent = True
            print("serial-ctrl-c: sent Ctrl-C", file=sys.stderr)
if not sent:
    print("serial-ctrl-c: pattern not seen", file=sys.stderr)
