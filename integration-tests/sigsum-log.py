#!/usr/bin/env python3
"""A Sigsum log and its witnesses, for tests: logs the SHA-256 of a file, signed by a
submitter's Ed25519 key, in a Merkle tree of other leaves, and writes the proof
(sigsum-go's ASCII format, version 2 or 1) and the Sigsum policy that trusts this
log and its witnesses. Written from the Sigsum specifications, independently of the
verifier (stboot-rs uses the `sigsum` crate): its own RFC 6962 tree and path code,
Ed25519 from Python's `cryptography`.

usage: sigsum-log.py STATE_DIR FILE SUBMITTER_KEY_PEM PROOF_OUT [options]
  --policy-out F     write the policy (log, witnesses W1..Wn, quorum)
  --size N           tree size (default 7); --index I where the leaf goes (default N-1)
  --witnesses N      witnesses in the policy (default 3); --quorum K of them (default 2)
  --cosign K         how many of them cosign (default all)
  --version 1|2      proof format (default 2)
  --tamper WHAT      root (proof names another root, log signature then fails),
                     signed-root (the log signs a wrong root), path (a node hash
                     flipped), leafsig (leaf signature by another key),
                     cosig (a policy witness's cosignature is wrong)
Keys of the log and the witnesses live in STATE_DIR, made on first use, so several
proofs share one policy.
"""
import argparse
import base64
import hashlib
import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def h(b):
    return hashlib.sha256(b).digest()


def raw_pub(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def state_key(state, name):
    path = os.path.join(state, name + ".seed")
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(os.urandom(32))
    with open(path, "rb") as f:
        return Ed25519PrivateKey.from_private_bytes(f.read())


# RFC 6962 section 2.1: Merkle tree hash and audit path
def mth(leaves):
    n = len(leaves)
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return h(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m, leaves):
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("state")
    ap.add_argument("file")
    ap.add_argument("submitter")
    ap.add_argument("proof_out")
    ap.add_argument("--policy-out")
    ap.add_argument("--size", type=int, default=7)
    ap.add_argument("--index", type=int)
    ap.add_argument("--witnesses", type=int, default=3)
    ap.add_argument("--quorum", type=int, default=2)
    ap.add_argument("--cosign", type=int)
    ap.add_argument("--version", type=int, default=2, choices=[1, 2])
    ap.add_argument("--tamper", choices=["root", "signed-root", "path", "leafsig", "cosig"])
    a = ap.parse_args()
    os.makedirs(a.state, exist_ok=True)
    log = state_key(a.state, "log")
    witnesses = [state_key(a.state, f"witness{i}") for i in range(1, a.witnesses + 1)]
    with open(a.submitter, "rb") as f:
        submitter = serialization.load_pem_private_key(f.read(), password=None)
    with open(a.file, "rb") as f:
        message = h(f.read())  # what is logged: the SHA-256 of the file
    checksum = h(message)
    keyhash = h(raw_pub(submitter))
    signer = Ed25519PrivateKey.generate() if a.tamper == "leafsig" else submitter
    leaf_sig = signer.sign(b"sigsum.org/v1/tree-leaf\x00" + checksum)

    index = a.size - 1 if a.index is None else a.index
    leaves = []
    for i in range(a.size):
        if i == index:
            leaves.append(h(b"\x00" + checksum + leaf_sig + keyhash))
        else:
            other = Ed25519PrivateKey.generate()
            c = h(os.urandom(32))
            s = other.sign(b"sigsum.org/v1/tree-leaf\x00" + c)
            leaves.append(h(b"\x00" + c + s + h(raw_pub(other))))
    root = mth(leaves)
    nodes = path(index, leaves)
    signed_root = h(b"wrong") if a.tamper == "signed-root" else root
    log_keyhash = h(raw_pub(log)).hex()
    tree_head = f"sigsum.org/v1/tree/{log_keyhash}\n{a.size}\n{base64.b64encode(signed_root).decode()}\n"
    log_sig = log.sign(tree_head.encode())
    shown_root = h(b"another") if a.tamper == "root" else signed_root
    if a.tamper == "path" and nodes:
        nodes[0] = bytes([nodes[0][0] ^ 1]) + nodes[0][1:]

    out = [f"version={a.version}", f"log={log_keyhash}"]
    if a.version == 1:
        out.append(f"leaf={checksum[:2].hex()} {keyhash.hex()} {leaf_sig.hex()}")
    else:
        out.append(f"leaf={keyhash.hex()} {leaf_sig.hex()}")
    out += ["", f"size={a.size}", f"root_hash={shown_root.hex()}", f"signature={log_sig.hex()}"]
    cosigners = witnesses[: (a.witnesses if a.cosign is None else a.cosign)]
    for i, w in enumerate(cosigners):
        ts = 1763800000 + i
        sig = w.sign(f"cosignature/v1\ntime {ts}\n{tree_head}".encode())
        if a.tamper == "cosig" and i == 0:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        out.append(f"cosignature={h(raw_pub(w)).hex()} {ts} {sig.hex()}")
    if a.size > 1:
        out += ["", f"leaf_index={index}"] + [f"node_hash={n.hex()}" for n in nodes]
    with open(a.proof_out, "w") as f:
        f.write("\n".join(out) + "\n")

    if a.policy_out:
        pol = ["# made by integration-tests/sigsum-log.py", f"log {raw_pub(log).hex()} http://log.invalid"]
        for i, w in enumerate(witnesses, 1):
            pol.append(f"witness W{i} {raw_pub(w).hex()}")
        pol.append(f"group G {a.quorum} " + " ".join(f"W{i}" for i in range(1, a.witnesses + 1)))
        pol.append("quorum G")
        with open(a.policy_out, "w") as f:
            f.write("\n".join(pol) + "\n")


if __name__ == "__main__":
    sys.exit(main())
