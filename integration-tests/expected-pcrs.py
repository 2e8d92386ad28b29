#!/usr/bin/env python3
"""Expected PCRs after stboot booted a package, computed independently of stboot's
code: upstream's layout, SHA-256 bank extended with SHA-256(D), into 12/13/14 or
the PCRs trust_policy.json's "measurement_pcrs" chooses.

usage: expected-pcrs.py PKG_STEM TRUST_POLICY_DIR [IDENTITY_FILE] [--tpm-floor=N|none]
       -> "pcr12=.. pcr13=.. pcr14=.." (one pcrN= per PCR, ascending)
IDENTITY_FILE: the bytes of TPM NV index 0x01420001 (NULs at both ends are trimmed,
as upstream does); without it the identity is empty. --tpm-floor: the machine's
TPM floor, measured when the trust policy has "ospkg_tpm_floor": true.
"""
import hashlib, json, os, ssl, sys, zipfile

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

floor_args = [a for a in sys.argv if a.startswith("--tpm-floor=")]
sys.argv = [a for a in sys.argv if a not in floor_args]
stem, tp = sys.argv[1], sys.argv[2]
policy = json.load(open(tp + "/trust_policy.json"))
measured = {"ospkg_signature_threshold": policy["ospkg_signature_threshold"],
            "ospkg_fetch_method": policy["ospkg_fetch_method"]}
chosen = {"detail": 12, "authority": 13, "identity": 14}
if policy.get("measurement_pcrs") is not None:
    chosen.update(policy["measurement_pcrs"])
    measured["measurement_pcrs"] = {k: chosen[k] for k in ("detail", "authority", "identity")}
if policy.get("ospkg_min_version") is not None:
    measured["ospkg_min_version"] = policy["ospkg_min_version"]
if policy.get("ospkg_tpm_floor") is not None:
    measured["ospkg_tpm_floor"] = policy["ospkg_tpm_floor"]
compact = json.dumps(measured, separators=(",", ":"))
identity = open(sys.argv[3], "rb").read().strip(b"\0") if len(sys.argv) > 3 else b""
events = [("detail", h(open(stem + ".zip", "rb").read())), ("detail", h(open(stem + ".json", "rb").read()))]
version = json.loads(zipfile.ZipFile(stem + ".zip").read("manifest.json")).get("ospkg_version")
if version is not None:  # stboot-rs: the package's version, as decimal text
    events += [("detail", h(str(version).encode()))]
if policy.get("ospkg_tpm_floor"):  # stboot-rs: the TPM floor in force, as decimal text or "none"
    if not floor_args:
        sys.exit("the trust policy asks for a TPM floor: give the machine's with --tpm-floor=N|none")
    events += [("detail", h(floor_args[0].split("=", 1)[1].encode()))]
events += [("authority", h(compact.encode()))]
events += [("authority", h(r)) for r in pems(tp + "/ospkg_signing_root.pem")]
events += [("authority", h(b"".join(pems(tp + "/tls_roots.pem"))))]
if os.path.exists(tp + "/ospkg_trust_policy"):
    events += [("authority", h(open(tp + "/ospkg_trust_policy", "rb").read()))]
if os.path.exists(tp + "/ospkg_revoked_signers"):
    events += [("authority", h(open(tp + "/ospkg_revoked_signers", "rb").read()))]
if os.path.exists(tp + "/ospkg_uki_db.pem"):  # stboot-rs: the UEFI db UKIs must be signed for
    events += [("authority", h(open(tp + "/ospkg_uki_db.pem", "rb").read()))]
events += [("identity", h(identity))]
pcrs = {}
for group, d in events:
    n = chosen[group]
    pcrs[n] = h(pcrs.get(n, bytes(32)) + h(d))  # upstream extends with SHA-256(D)
print(" ".join(f"pcr{n}={pcrs[n].hex()}" for n in sorted(pcrs)))
