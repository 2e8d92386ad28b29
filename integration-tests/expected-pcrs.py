#!/usr/bin/env python3
"""Expected PCRs 12-14 after stboot booted a package, computed independently of
stboot's code: upstream's layout, SHA-256 bank extended with SHA-256(D).

usage: expected-pcrs.py PKG_STEM TRUST_POLICY_DIR [IDENTITY_FILE]
       -> "pcr12=.. pcr13=.. pcr14=.."
IDENTITY_FILE: the bytes of TPM NV index 0x01420001 (NULs at both ends are trimmed,
as upstream does); without it the identity is empty.
"""
import hashlib, json, os, ssl, sys

def h(b): return hashlib.sha256(b).digest()

def pems(path):
    text = open(path).read()
    out, cur = [], None
    for line in text.splitlines(keepends=True):
        if line.startswith("-----BEGIN CERTIFICATE-----"): cur = line
        elif cur is not None:
            cur += line
            if line.startswith("-----END CERTIFICATE-----"):
                out.append(ssl.PEM_cert_to_DER_cert(cur)); cur = None
    return out

def replay(digests):
    pcr = bytes(32)
    for d in digests:
        pcr = h(pcr + h(d))  # upstream extends with SHA-256(D)
    return pcr.hex()

stem, tp = sys.argv[1], sys.argv[2]
policy = json.load(open(tp + "/trust_policy.json"))
compact = json.dumps({"ospkg_signature_threshold": policy["ospkg_signature_threshold"],
                      "ospkg_fetch_method": policy["ospkg_fetch_method"]}, separators=(",", ":"))
p12 = replay([h(open(stem + ".zip", "rb").read()), h(open(stem + ".json", "rb").read())])
p13 = replay([h(compact.encode())] + [h(r) for r in pems(tp + "/ospkg_signing_root.pem")]
             + [h(b"".join(pems(tp + "/tls_roots.pem")))]
             + ([h(open(tp + "/ospkg_trust_policy", "rb").read())] if os.path.exists(tp + "/ospkg_trust_policy") else []))
identity = open(sys.argv[3], "rb").read().strip(b"\0") if len(sys.argv) > 3 else b""
p14 = replay([h(identity)])
print(f"pcr12={p12} pcr13={p13} pcr14={p14}")
