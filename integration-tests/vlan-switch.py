#!/usr/bin/env python3
"""A two-port 802.1Q switch between QEMU socket netdevs (one Ethernet frame per UDP
datagram, on 127.0.0.1): the trunk port faces the guest's NIC and carries only VLAN
VID, tagged; the access port faces QEMU's user network, untagged. Frames from the
trunk that are untagged or carry another VLAN are dropped, so a guest that does not
tag its traffic with VID gets no DHCP lease and no HTTPS.

usage: vlan-switch.py VID TRUNK_PORT GUEST_PORT ACCESS_PORT USERNET_PORT COUNTS_FILE
  listens on TRUNK_PORT (the guest NIC's netdev sends there from GUEST_PORT) and on
  ACCESS_PORT (the user network's netdev sends there from USERNET_PORT); writes the
  frame counts to COUNTS_FILE once a second.
"""
import select, socket, struct, sys, time

vid = int(sys.argv[1])
trunk_port, guest_port, access_port, usernet_port = map(int, sys.argv[2:6])
counts_file = sys.argv[6]
lo = "127.0.0.1"
trunk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
trunk.bind((lo, trunk_port))
access = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
access.bind((lo, access_port))
counts = {"tagged_in": 0, "untagged_dropped": 0, "other_vlan_dropped": 0, "to_guest": 0}
last = 0.0
while True:
    ready, _, _ = select.select([trunk, access], [], [], 1.0)
    for s in ready:
        frame, _ = s.recvfrom(65536)
        if len(frame) < 14:
            continue
        if s is trunk:
            tpid = struct.unpack("!H", frame[12:14])[0]
            if tpid != 0x8100 or len(frame) < 18:
                counts["untagged_dropped"] += 1
                continue
            if struct.unpack("!H", frame[14:16])[0] & 0x0FFF != vid:
                counts["other_vlan_dropped"] += 1
                continue
            counts["tagged_in"] += 1
            access.sendto(frame[:12] + frame[16:], (lo, usernet_port))
        else:
            counts["to_guest"] += 1
            trunk.sendto(frame[:12] + struct.pack("!HH", 0x8100, vid) + frame[12:], (lo, guest_port))
    if time.monotonic() - last >= 1.0:
        last = time.monotonic()
        with open(counts_file, "w") as f:
            f.write(" ".join(f"{k}={v}" for k, v in counts.items()) + "\n")
