"""Signed audit bundles from Python."""

import hashlib
import json
import os
import pathlib
import threading

import pytest

import smm_core

ROOT = pathlib.Path(__file__).resolve().parents[2]
V2 = (ROOT / "examples" / "workspace.icblabs.v2.json").read_text()
REQUEST = json.loads((ROOT / "examples" / "icblabs-seed42.request.json").read_text())
POLICY_INPUT = json.loads((ROOT / "examples" / "policy-input.icblabs.json").read_text())
WYCHEPROOF = ROOT / "smm-core" / "tests" / "data" / "wycheproof" / "ecdsa_secp256r1_sha256_test.json"

ALLOW_ALL = (
    "package smm\nimport rego.v1\n\ndecision := {\"allow\": true, \"deny\": [], \"warnings\": [], "
    "\"reasons\": [], \"require_human_approval\": false}\n"
)

TRAIL = [
    {"timestamp": "2025-09-01T12:00:00Z", "event": "bundle_created", "actor": "system", "details": {}},
    {"timestamp": "2025-09-01T12:00:01Z", "event": "simulation_executed", "actor": "system", "details": {"iterations": 1000}},
    {"timestamp": "2025-09-01T12:00:02Z", "event": "bundle_sealed", "actor": "system", "details": {}},
]


def make_bundle(created_at="2025-09-01T12:00:00Z", previous=None):
    report = smm_core.simulate_request(REQUEST, threads=1)
    contract = smm_core.Contract.from_json(V2)
    decision = smm_core.PolicyBundle.default().evaluate(POLICY_INPUT)
    card = smm_core.decision_card(report, decision, contract)
    return smm_core.assemble_bundle(
        contract, report, created_at=created_at, audit_trail=TRAIL,
        policy_decision=decision, decision_card=card,
        agent_runs=[], previous_bundle_ref=previous,
    )


def test_sign_and_verify_with_a_local_key():
    bundle = make_bundle()
    assert bundle["bundleVersion"] == "smm-audit-bundle/v1"
    assert [e["sequence"] for e in bundle["auditTrail"]] == [0, 1, 2]
    assert bundle["auditTrail"][1]["previousEventHash"] == bundle["auditTrail"][0]["eventHash"]
    signer = smm_core.LocalSigner.generate("local-1")
    assert "PRIVATE" not in repr(signer)
    env = smm_core.sign_bundle(bundle, signer)
    assert json.loads(env)["payloadType"] == smm_core.BUNDLE_PAYLOAD_TYPE
    result = smm_core.verify_bundle(env, {"local-1": signer.public_key_pem})
    assert result and result.verified and result.key_id == "local-1"
    assert result.signed_by == ["local-1"]
    assert result.bundle_id == smm_core.bundle_id(bundle)
    assert [c["name"] for c in result.checks][:3] == ["envelope", "payloadType", "signature"]
    other = smm_core.LocalSigner.generate("local-1")
    assert not smm_core.verify_bundle(env, [("local-1", other.public_key_pem)]).verified
    # PEM round trip: deterministic signatures agree.
    again = smm_core.LocalSigner.from_pem("local-1", signer.to_pem())
    assert smm_core.sign_bundle(bundle, again) == env
    tampered = bytearray(env)
    tampered[len(tampered) // 2] ^= 1
    assert not smm_core.verify_bundle(bytes(tampered), {"local-1": signer.public_key_pem}).verified


# RFC 6979 appendix A.2.5 (P-256, SHA-256): the local signer's answers,
# strict DER with low S (the "sample" S is the RFC's n - s).
RFC6979_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgya+p2EW6dRZrXCFX
Z7HWk05Qw9s26JsSe4piKxIPZyGhRANCAARg/tS6JVqdMclh63TGNW1owEm4kjth
+mzmaWIuYPKftnkD/hAIuLyZpBrp6VYovGTy8bIMLX6fUXejwpTURiKZ
-----END PRIVATE KEY-----
"""
RFC6979_VECTORS = [
    ("sample", "3045022100efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
               "02200834e36ad29a83bf2bc9385e491d6099c8fdf9d1ed67aa7ea5f51f93782857a9"),
    ("test", "3045022100f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367"
             "0220019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083"),
]


def test_local_signer_reproduces_rfc6979_vectors():
    signer = smm_core.LocalSigner.from_pem("rfc6979", RFC6979_KEY_PEM)
    for message, der in RFC6979_VECTORS:
        digest = hashlib.sha256(message.encode()).digest()
        assert signer.sign_digest(digest).hex() == der, message


def test_external_signer_callback():
    kms_key = smm_core.LocalSigner.generate("inner")
    calls = []

    def aws_kms_sign(digest: bytes) -> bytes:
        # Stand-in for boto3 kms.sign(KeyId=..., Message=digest, MessageType="DIGEST",
        # SigningAlgorithm="ECDSA_SHA_256")["Signature"]: a DER signature of the digest.
        calls.append(digest)
        return kms_key.sign_digest(digest)

    ext = smm_core.ExternalSigner("arn:aws:kms:eu-west-1:1:key/abc", kms_key.public_key_pem, aws_kms_sign)
    env = smm_core.sign_bundle(make_bundle(), ext)
    assert len(calls) == 1 and len(calls[0]) == 32
    assert smm_core.verify_bundle(env, {"arn:aws:kms:eu-west-1:1:key/abc": kms_key.public_key_pem}).verified

    liar = smm_core.ExternalSigner("key-liar", kms_key.public_key_pem, lambda d: b"\x30\x00")
    with pytest.raises(smm_core.SignerError, match="key-liar"):
        smm_core.sign_bundle(make_bundle(), liar)

    def down(_digest):
        raise RuntimeError("KMS throttled")

    with pytest.raises(smm_core.SignerError, match="KMS throttled") as raised:
        smm_core.sign_bundle(make_bundle(), smm_core.ExternalSigner("key-down", kms_key.public_key_pem, down))
    # The KMS client's own exception reaches the caller, as the cause.
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert str(raised.value.__cause__) == "KMS throttled"
    with pytest.raises(smm_core.ValidationError):
        smm_core.ExternalSigner("k", "not a key", lambda d: d)
    with pytest.raises(smm_core.ValidationError, match="32 bytes"):
        kms_key.sign_digest(b"short")
    assert smm_core.ecdsa_p256_verify(kms_key.public_key_pem, b"m", b"") is False


def test_ecdsa_verify_agrees_with_wycheproof():
    doc = json.loads(WYCHEPROOF.read_text())
    n = 0
    for g in doc["testGroups"]:
        key = bytes.fromhex(g["publicKey"]["uncompressed"])
        for t in g["tests"]:
            got = smm_core.ecdsa_p256_verify(key, bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]))
            if t["result"] == "valid":
                assert got, t["tcId"]
            elif t["result"] == "invalid":
                assert not got, t["tcId"]
            n += 1
    assert n == 484
    with pytest.raises(smm_core.ValidationError, match="format"):
        smm_core.ecdsa_p256_verify(key, b"", b"", format="jwk")


def test_assembler_refusals_name_the_field():
    report = smm_core.simulate_request(REQUEST, threads=1)
    decision = smm_core.PolicyBundle.default().evaluate(POLICY_INPUT)
    card = smm_core.decision_card(report, decision, V2)
    common = dict(created_at="2025-09-01T12:00:00Z", policy_decision=decision, decision_card=card)
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.assemble_bundle(V2, report, audit_trail=[], **common)
    assert e.value.pointer == "/auditTrail"
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.assemble_bundle(V2, report, audit_trail=TRAIL, previous_bundle_ref="b-1", **common)
    assert e.value.pointer == "/previousBundleRef"
    bundle = make_bundle()
    chained = bundle["auditTrail"]
    chained[1]["actor"] = "mallory"
    with pytest.raises(smm_core.ValidationError, match="audit trail broken at event 1"):
        smm_core.assemble_bundle(V2, report, audit_trail=chained, **common)
    # A decision of another policy bundle than the contract names.
    other = smm_core.PolicyBundle.from_modules({"smm/d.rego": ALLOW_ALL})
    foreign = other.evaluate(POLICY_INPUT)
    with pytest.raises(smm_core.PolicyChecksumError) as e:
        smm_core.assemble_bundle(V2, report, audit_trail=TRAIL, created_at="2025-09-01T12:00:00Z",
                                 policy_decision=foreign, decision_card=card)
    assert other.checksum in str(e.value) and smm_core.PolicyBundle.default().checksum in str(e.value)
    assert isinstance(e.value, smm_core.IntegrityError) and e.value.category == "integrity"


def test_batch_verification_and_chains():
    signer = smm_core.LocalSigner.generate("k")
    a = make_bundle("2025-09-01T12:00:00Z")
    b = make_bundle("2025-09-02T12:00:00Z", smm_core.bundle_id(a))
    envs = [smm_core.sign_bundle(x, signer) for x in (a, b)]
    results = smm_core.verify_bundles(envs + [b"{}"], {"k": signer.public_key_pem}, threads=2)
    assert [r.verified for r in results] == [True, True, False]
    assert smm_core.verify_bundle_chain([b, a])["valid"]
    report = smm_core.verify_bundle_chain([b])
    assert report["issues"][0]["kind"] == "missing"


def test_file_store(tmp_path):
    signer = smm_core.LocalSigner.generate("k")
    rotated = smm_core.LocalSigner.generate("k2")
    # Without trusted keys a store is read-only.
    with pytest.raises(smm_core.StorageError, match="read-only"):
        smm_core.FileBundleStore(tmp_path).put(smm_core.sign_bundle(make_bundle(), signer))
    store = smm_core.FileBundleStore(tmp_path, {"k": signer.public_key_pem, "k2": rotated.public_key_pem})
    env = smm_core.sign_bundle(make_bundle(), signer)
    bid = store.put(env)
    assert store.put(env) == bid
    # A garbage or untrusted envelope never takes the id.
    with pytest.raises(smm_core.UntrustedBundleError) as e:
        store.put(smm_core.sign_bundle(make_bundle(), smm_core.LocalSigner.generate("k3")))
    assert isinstance(e.value, smm_core.IntegrityError) and e.value.code == 17
    # Another trusted key signs the stored bundle: the signature is added.
    assert store.put(smm_core.sign_bundle(make_bundle(), rotated)) == bid
    assert [(h["event"], h["keyIds"]) for h in store.history(bid)] == [("stored", ["k"]), ("signatures_added", ["k2"])]
    both = store.get(bid)
    assert [s["keyid"] for s in json.loads(both)["signatures"]] == ["k", "k2"]
    assert smm_core.verify_bundle(both, {"k2": rotated.public_key_pem}).verified
    assert store.get(bid) == both
    # Ids that would walk out of the store are refused before any path.
    for bad in ["/etc/passwd", "sha256:../../../etc", "sha256:" + "0" * 63 + "/"]:
        with pytest.raises(smm_core.ValidationError):
            store.snapshot(bad)
        with pytest.raises(smm_core.ValidationError):
            store.get(bad)
    assert store.get("sha256:" + "0" * 64) is None
    assert [x["bundleId"] for x in store.list("ws-icblabs-0001", start="2025-09-01T00:00:00Z")] == [bid]
    assert store.list("ws-icblabs-0001", end="2025-09-01T00:00:00Z") == []
    assert store.all() == store.list("ws-icblabs-0001")
    assert store.snapshot(bid)["contractId"] == "ws-icblabs-0001-v1.1.0"
    files = [p for p in tmp_path.rglob("*.json.gz")]
    assert any(p.parent.name == "2025-09-01" and p.name.startswith("bundle-ws-icblabs-0001-") for p in files)
    # A FIFO planted as the bundle's locator is refused on its open handle
    # (its open used to wait for a writer forever).
    locator = tmp_path / "audit-snapshots" / bid[len("sha256:"):] / "bundle.json.gz"
    locator.unlink()
    os.mkfifo(locator)
    with pytest.raises(smm_core.CorruptBundleError, match="not a regular file"):
        smm_core.FileBundleStore(tmp_path).get(bid)
    # So is a FIFO planted as the bundle's lock file (a writer's open of it
    # waited for a reader forever): guarded, so that a regression fails.
    lock = tmp_path / "locks" / (bid[len("sha256:"):] + ".lock")
    lock.unlink()
    os.mkfifo(lock)
    outcome = []

    def put():
        try:
            store.put(env)
        except smm_core.CorruptBundleError as e:
            outcome.append(str(e))

    writer = threading.Thread(target=put, daemon=True)
    writer.start()
    writer.join(120)
    assert not writer.is_alive(), "put hung on a FIFO planted as a lock file"
    assert len(outcome) == 1 and "not a regular file" in outcome[0]


def test_file_store_pages_heads_and_workspaces(tmp_path):
    signer = smm_core.LocalSigner.generate("k")
    store = smm_core.FileBundleStore(tmp_path, {"k": signer.public_key_pem})
    ws = "ws-icblabs-0001"
    assert store.head(ws) is None and store.workspaces() == []
    ids, previous = [], None
    for day in range(1, 6):
        bundle = make_bundle(f"2025-09-0{day}T12:00:00Z", previous)
        previous = store.put(smm_core.sign_bundle(bundle, signer))
        ids.append(previous)
    assert store.workspaces() == [ws]
    assert store.head(ws) == store.get(ids[-1])
    seen, after = [], None
    while True:
        page = store.list_page(ws, after=after, limit=2)
        assert len(page["bundles"]) <= 2
        seen += [b["bundleId"] for b in page["bundles"]]
        after = page["next"]
        if after is None:
            break
    assert seen == ids == [b["bundleId"] for b in store.list(ws)]
    assert store.list_page(ws, limit=10_000)["next"] is None
    with pytest.raises(smm_core.ValidationError, match="/limit"):
        store.list_page(ws, limit=0)
    with pytest.raises(smm_core.ValidationError, match="/after"):
        store.list_page(ws, after="sha256:" + "0" * 64)
    with pytest.raises(smm_core.ValidationError, match="/after") as e:
        store.list_page(ws, after="../../etc/passwd")
    assert e.value.pointer == "/after"
    with pytest.raises(OverflowError):
        store.list_page(ws, limit=-1)


def test_ids_that_are_not_text_are_validation_errors(tmp_path):
    store = smm_core.FileBundleStore(tmp_path)
    for call in (
        lambda: store.get("sha256:\ud800"),
        lambda: store.history("\udfff"),
        lambda: store.list("ws\ud800"),
        lambda: smm_core.LocalSigner.generate("k\ud800"),
    ):
        with pytest.raises(smm_core.ValidationError):
            call()
