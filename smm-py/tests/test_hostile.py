"""Valid documents damaged at random go through the Python front door:
every failure is an SmmError (never a PanicException or another crash),
every success a correct, finite result."""

import base64
import json
import math
import pathlib
import random

import pytest

import smm_core

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEEDS = ROOT / "fuzz" / "seeds"
HOSTILE = [None, -1, 0, -0.0, 1e308, -1e308, 5e-324, 0.9999999999999999, 2**64, -(2**63) - 1,
           "", "../../etc", "sha256:" + "0" * 64, True, [], {}, "\u0000", 10**30]


def mutate(text: str, rng: random.Random) -> bytes:
    kind = rng.random()
    data = text.encode()
    if kind < 0.6:
        doc = json.loads(text)
        path = []
        node = doc
        for _ in range(rng.randint(1, 6)):
            if isinstance(node, dict) and node:
                key = rng.choice(sorted(node))
            elif isinstance(node, list) and node:
                key = rng.randrange(len(node))
            else:
                break
            path.append(key)
            node = node[key]
        if not path:
            return json.dumps(rng.choice(HOSTILE)).encode()
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = rng.choice(HOSTILE)
        return json.dumps(doc).encode()
    if kind < 0.75 and data:
        i = rng.randrange(len(data))
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
    if kind < 0.9:
        return data[: rng.randrange(len(data) + 1)]
    i = rng.randrange(len(data) + 1)
    return data[:i] + bytes([rng.randrange(256)]) + data[i:]


def seed(target: str, name: str) -> str:
    return (SEEDS / target / name).read_text()


def finite_report(report) -> None:
    d = report.to_dict()
    for key in ("readinessScore", "policyPassPct", "costEstimateUSD"):
        assert all(math.isfinite(v) for v in [d[key]["mean"], d[key]["std"], d[key]["confidence"]["lower"]])


def run_all(target: str, name: str, fn, cases: int = 250) -> None:
    rng = random.Random(f"{target}/{name}")
    text = seed(target, name)
    for _ in range(cases):
        bad = mutate(text, rng)
        try:
            fn(bad)
        except smm_core.SmmError:
            pass
        except UnicodeDecodeError:
            pass


def partial(bad: bytes) -> None:
    p = smm_core.PartialResult.from_json(bad.decode())
    finite_report(smm_core.merge_partials([p], threads=1))


@pytest.mark.parametrize("name", ["exact.json", "bounded.json"])
def test_damaged_partial_results(name):
    run_all("partial", name, partial)


def test_a_negative_zero_sample_under_a_zero_minimum_merges():
    # -0.0 equals a 0.0 minimum, so it passes the range check; the exact
    # percentiles order by bits, and once subtracted past zero (a panic).
    doc = json.loads(seed("partial", "exact.json"))
    col = next(i for i, m in enumerate(doc["moments"]) if m["min"] >= 0.0)
    doc["moments"][col]["min"] = 0.0
    doc["samples"][col][0] = -0.0
    text = json.dumps(doc)
    assert "-0.0" in text
    p = smm_core.PartialResult.from_json(text)
    finite_report(smm_core.merge_partials([p], threads=2))


def test_damaged_requests():
    def request(bad: bytes) -> None:
        doc = json.loads(bad)
        if isinstance(doc, dict) and isinstance(doc.get("simulationConfig"), dict):
            it = doc["simulationConfig"].get("iterations")
            if isinstance(it, int) and it > 512:
                doc["simulationConfig"]["iterations"] = 512
        finite_report(smm_core.simulate_request(doc, threads=1))

    def parse_or_skip(bad: bytes) -> None:
        try:
            json.loads(bad)
        except ValueError:
            with pytest.raises(smm_core.SmmError):
                smm_core.simulate_request(bad, threads=1)
            return
        request(bad)

    run_all("request", "icblabs-seed42.json", parse_or_skip)


def fuzz_key_pem() -> str:
    """The fuzz targets' key (the P-256 scalar 0x07 * 32) as PKCS#8 PEM."""
    prefix = bytes.fromhex("3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420")
    body = base64.b64encode(prefix + bytes([7]) * 32).decode()
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN PRIVATE KEY-----\n{lines}\n-----END PRIVATE KEY-----\n"


def test_damaged_envelopes():
    signer = smm_core.LocalSigner.from_pem("fuzz-key", fuzz_key_pem())
    keys = {"fuzz-key": signer.public_key_pem}
    original = seed("envelope", "signed.json")
    assert smm_core.verify_bundle(original, keys).verified

    def envelope(bad: bytes) -> None:
        r = smm_core.verify_bundle(bad, keys)
        if r.verified:
            # Only a change outside what is signed can still verify.
            assert json.loads(bad)["payload"] == json.loads(original)["payload"]

    run_all("envelope", "signed.json", envelope)


def test_damaged_policy_inputs():
    bundle = smm_core.PolicyBundle.default()
    run_all("policy_input", "icblabs.json", lambda bad: bundle.evaluate(bad), cases=150)


def test_damaged_contracts():
    run_all("contract", "workspace.icblabs.v2.json", lambda bad: smm_core.Contract.from_json(bad).validate("2025-09-01T00:00:00Z"))
