"""The main job end to end: smm_core.run, each step broken in turn, and the
same envelope from the three front doors (the `smm` command, Python, C)."""

import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import smm_core
from _c_store import c_store_head

ROOT = pathlib.Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
CONTRACT = EX / "workspace.icblabs.v2.json"
CAMPAIGN = EX / "campaign.icblabs.json"
AGENT_RUN = EX / "agent-run.research.json"
NOW = "2025-09-01T12:00:00Z"
WS = "ws-icblabs-0001"


def full_run(store, **kw):
    return smm_core.run(CONTRACT, campaign=CAMPAIGN, agent_run=AGENT_RUN, store=store, now=NOW, **kw)


def write_key(path: pathlib.Path, signer: smm_core.LocalSigner) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(signer.to_pem())


def ledger_clean(ledger: smm_core.UsageLedger) -> None:
    for s in ledger.status(WS, NOW):
        assert (s["used"], s["reserved"]) == (0, 0), s


def test_run_seals_stores_and_verifies(tmp_path):
    result = full_run(tmp_path / "store")
    assert result.verified
    assert result.bundle_id.startswith("sha256:") and len(result.bundle_id) == 71
    assert result.workspace_id == WS
    assert result.action in ("auto_approve", "human_approval")
    assert result.contract_hash == smm_core.contract_hash(smm_core.Contract.from_json(CONTRACT.read_text()))
    d = result.to_dict()
    assert d["bundleId"] == result.bundle_id
    assert d["envelope"].encode() == result.envelope
    assert d["usage"]["amounts"]["tokens"] == 5770
    assert d["usage"]["alreadyRecorded"] is False
    assert result.report.readiness_score.mean == d["simulation"]["readinessScore"]["mean"]
    # Stored, and verifiable by anyone holding the public key.
    store = smm_core.FileBundleStore(tmp_path / "store")
    assert store.get(result.bundle_id) == result.envelope
    # The key was made once beside the store, private.
    key = tmp_path / "store" / "signing-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    # A rerun records the job once and chains to the first bundle.
    again = full_run(tmp_path / "store")
    assert again.to_dict()["usage"]["alreadyRecorded"] is True
    assert again.bundle_id != result.bundle_id
    bundles = store.list(WS)
    assert len(bundles) == 2
    # The ledger holds the run's cost once. (The contract's hardCap bounded
    # the run without being written to the ledger: quotas are the
    # operator's, set here to read the standing.)
    subprocess.run(
        [str(_smm_binary()), "usage", "quota", "--ledger", str(tmp_path / "store" / "usage.sqlite"),
         "--workspace", WS, "--kind", "cost_usd", "--period", "total", "--limit", "5000000000000"],
        capture_output=True, text=True, check=True,
    )
    figures = subprocess.run(
        [str(_smm_binary()), "usage", "report", "--json", "--ledger", str(tmp_path / "store" / "usage.sqlite"),
         "--workspace", WS, "--now", NOW],
        capture_output=True, text=True, check=True,
    )
    assert json.loads(figures.stdout)[0]["used"] == 113_400_000


def test_inputs_may_be_paths_text_dicts_or_objects(tmp_path):
    doc = json.loads(CONTRACT.read_text())
    signer = smm_core.LocalSigner.generate("team-key")
    ids = set()
    for i, contract in enumerate(
        [str(CONTRACT), CONTRACT, CONTRACT.read_text(), doc, smm_core.Contract.from_json(CONTRACT.read_text())]
    ):
        r = smm_core.run(
            contract,
            campaign=json.loads(CAMPAIGN.read_text()),
            agent_run=AGENT_RUN.read_text(),
            store=tmp_path / f"s{i}",
            ledger=smm_core.UsageLedger.memory(),
            key=signer,
            now=NOW,
        )
        assert r.verified
        ids.add(r.bundle_id)
    assert len(ids) == 1


def test_an_invalid_contract_stops_at_the_contract_step(tmp_path):
    ledger = smm_core.UsageLedger.memory()
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.run(CONTRACT, store=tmp_path, now="2027-01-01T00:00:00Z", ledger=ledger)
    assert e.value.step == "contract"
    assert e.value.pointer == "/consentRecords/0/expiresAt"
    assert smm_core.FileBundleStore(tmp_path).list(WS) == []
    # A document that is not a contract at all.
    with pytest.raises(smm_core.SmmError) as e:
        smm_core.run({"hello": 1}, store=tmp_path, now=NOW, ledger=ledger)
    assert e.value.step == "contract"
    # Errors outside `run` have no step.
    with pytest.raises(smm_core.SmmError) as e:
        smm_core.contract_hash({"hello": 1})
    assert e.value.step is None


def test_a_deny_stops_at_the_decision_step(tmp_path):
    doc = json.loads(CONTRACT.read_text())
    doc["emergencyFlags"].update(halted=True, reason="incident 42")
    ledger = smm_core.UsageLedger.memory()
    with pytest.raises(smm_core.PolicyDeniedError) as e:
        smm_core.run(doc, agent_run=AGENT_RUN, store=tmp_path, now=NOW, ledger=ledger)
    assert e.value.step == "decision"
    assert "workspace_halted" in e.value.reasons
    ledger_clean(ledger)
    assert smm_core.FileBundleStore(tmp_path).list(WS) == []


def test_a_quota_block_stops_at_the_usage_step(tmp_path):
    ledger = smm_core.UsageLedger.memory()
    ledger.set_quota(WS, "tokens", 5000, "day")
    with pytest.raises(smm_core.QuotaExceededError) as e:
        full_run(tmp_path, ledger=ledger)
    assert e.value.step == "usage"
    ledger_clean(ledger)
    assert smm_core.FileBundleStore(tmp_path).list(WS) == []


def test_a_signer_failure_stops_at_the_sign_step_and_holds_nothing(tmp_path):
    real = smm_core.LocalSigner.generate("kms-key")

    def throttled(digest: bytes) -> bytes:
        raise RuntimeError("KMS throttled")

    kms = smm_core.ExternalSigner("kms-key", real.public_key_pem, throttled)
    ledger = smm_core.UsageLedger.memory()
    with pytest.raises(smm_core.SignerError) as e:
        full_run(tmp_path, ledger=ledger, key=kms)
    assert e.value.step == "sign"
    assert "KMS throttled" in str(e.value)
    assert isinstance(e.value.__cause__, RuntimeError), "the KMS's exception is the cause"
    ledger_clean(ledger)
    # A KMS that answers works the same as a local key.
    ok = smm_core.ExternalSigner("kms-key", real.public_key_pem, real.sign_digest)
    assert full_run(tmp_path, ledger=ledger, key=ok).verified


def test_a_store_that_does_not_trust_the_key_refuses_it(tmp_path):
    other = smm_core.LocalSigner.generate("other")
    store = smm_core.FileBundleStore(tmp_path, {"other": other.public_key_pem})
    ledger = smm_core.UsageLedger.memory()
    with pytest.raises(smm_core.UntrustedBundleError) as e:
        full_run(store, ledger=ledger, key=smm_core.LocalSigner.generate("mine"))
    assert e.value.step == "store"
    ledger_clean(ledger)


def test_a_missing_or_open_key_file_is_refused(tmp_path):
    with pytest.raises(smm_core.SignerError):
        full_run(tmp_path / "s", key=tmp_path / "missing.pem")
    key = tmp_path / "open.pem"
    write_key(key, smm_core.LocalSigner.generate("k"))
    os.chmod(key, 0o644)
    with pytest.raises(smm_core.SmmError) as e:
        full_run(tmp_path / "s", key=key)
    assert "chmod 600" in str(e.value)


def _smm_binary() -> pathlib.Path:
    exe = os.environ.get("SMM_BIN")
    if exe:
        return pathlib.Path(exe)
    exe = ROOT / "target" / "debug" / "smm"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--quiet", "-p", "smm-cli"], cwd=ROOT, check=True)
    return exe


def _c_flow() -> pathlib.Path:
    exe = os.environ.get("SMM_C_FLOW")
    if exe:
        return pathlib.Path(exe)
    exe = ROOT / "examples" / "c" / "build" / "flow"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--quiet", "-p", "smm-ffi"], cwd=ROOT, check=True)
        exe.parent.mkdir(parents=True, exist_ok=True)
        cc = shutil.which("cc") or "gcc"
        subprocess.run(
            [cc, "-std=c11", "-I", "smm-ffi/include", "examples/c/flow.c", "target/debug/libsmm.a",
             "-lm", "-lpthread", "-ldl", "-o", str(exe)],
            cwd=ROOT, check=True,
        )
    return exe


def test_the_three_front_doors_write_the_same_envelope(tmp_path):
    key = tmp_path / "key.pem"
    write_key(key, smm_core.LocalSigner.generate("any"))

    py = full_run(tmp_path / "py", key=key)

    cli = subprocess.run(
        [str(_smm_binary()), "run", str(CONTRACT), "--campaign", str(CAMPAIGN), "--agent-run", str(AGENT_RUN),
         "--key", str(key), "--store", str(tmp_path / "cli"), "--now", NOW, "--json"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert cli.returncode == 0, cli.stderr
    cli_result = json.loads(cli.stdout)

    c_env = tmp_path / "c-envelope.json"
    c = subprocess.run(
        [str(_c_flow()), str(tmp_path / "c"), str(key), str(c_env)], capture_output=True, text=True, cwd=ROOT
    )
    assert c.returncode == 0, c.stderr

    assert cli_result["bundleId"] == py.bundle_id
    assert cli_result["envelope"].encode() == py.envelope
    assert c_env.read_bytes() == py.envelope
    # And the whole result, not only the envelope, is the same.
    assert cli_result == py.to_dict()


def test_one_instant_is_one_bundle_whatever_its_spelling(tmp_path):
    # The same instant as text in four spellings and as datetimes: one id.
    import datetime as dt

    key = smm_core.LocalSigner.generate("k")
    spellings = [
        "2025-09-01T12:00:00Z",
        "2025-09-01T12:00:00+00:00",
        "2025-09-01T12:00:00.000Z",
        "2025-09-01T14:00:00+02:00",
        dt.datetime(2025, 9, 1, 12, tzinfo=dt.timezone.utc),
        dt.datetime(2025, 9, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    ]
    ids = set()
    for i, now in enumerate(spellings):
        r = smm_core.run(CONTRACT, campaign=CAMPAIGN, agent_run=AGENT_RUN, store=tmp_path / f"s{i}", now=now,
                         key=key, ledger=smm_core.UsageLedger.memory())
        assert json.loads(smm_core.FileBundleStore(tmp_path / f"s{i}").get(r.bundle_id))["payload"]
        ids.add(r.bundle_id)
    assert len(ids) == 1, ids


RACER = """
import sys
import smm_core
store, key, ledger, contract, campaign, actor = sys.argv[1:]
r = smm_core.run(contract, campaign=campaign, store=store, key=key, ledger=ledger,
                 now="2025-09-01T12:00:00Z", actor=actor, threads=1)
assert r.verified
print(r.bundle_id)
"""


def test_racing_processes_form_one_chain(tmp_path):
    """Four Python processes run the main job at once on one file store
    and one SQLite ledger: every run succeeds (a head read while another
    process moves it is never taken for a rollback) and the bundles form
    one linear chain."""
    key = tmp_path / "key.pem"
    write_key(key, smm_core.LocalSigner.generate("k"))
    store_dir, ledger = tmp_path / "store", tmp_path / "ledger.sqlite"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(store_dir), str(key), str(ledger), str(CONTRACT), str(CAMPAIGN),
             f"racer-{i}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(4)
    ]
    ids = []
    for p in racers:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        ids.append(out.strip())
    assert len(set(ids)) == 4
    store = smm_core.FileBundleStore(store_dir)
    listed = [b["bundleId"] for b in store.list(WS)]
    assert sorted(listed) == sorted(ids)
    bundles = [json.loads(base64.b64decode(json.loads(store.get(i))["payload"])) for i in ids]
    report = smm_core.verify_bundle_chain(bundles)
    assert report["valid"] and len(report["order"]) == 4, report
    assert store.head(WS) == store.get(report["order"][-1])


def test_a_rolled_back_file_store_head_stops_the_run(tmp_path):
    """The file store's head record restored from an old copy: the store
    names the bundle already chained to that head, from Python and from C,
    and the run stops before anything is spent instead of forking the
    chain. Put back, the chain goes on."""
    key = smm_core.LocalSigner.generate("k")
    store_dir = tmp_path / "store"
    ledger = smm_core.UsageLedger.memory()
    common = dict(campaign=CAMPAIGN, agent_run=AGENT_RUN, store=store_dir, key=key, ledger=ledger)
    first = smm_core.run(CONTRACT, now=NOW, **common)
    shutil.copytree(store_dir / "heads", tmp_path / "heads-at-first")
    second = smm_core.run(CONTRACT, now="2025-09-01T13:00:00Z", **common)
    shutil.copytree(store_dir / "heads", tmp_path / "heads-at-second")
    shutil.rmtree(store_dir / "heads")
    shutil.copytree(tmp_path / "heads-at-first", store_dir / "heads")

    store = smm_core.FileBundleStore(store_dir)
    with pytest.raises(smm_core.CorruptBundleError, match="rolled back"):
        store.head(WS)
    spent = ledger.usage(WS, "tokens", NOW)
    with pytest.raises(smm_core.CorruptBundleError, match=second.bundle_id):
        smm_core.run(CONTRACT, now="2025-09-01T14:00:00Z", **common)
    assert ledger.usage(WS, "tokens", NOW) == spent
    assert [b["bundleId"] for b in store.list(WS)] == [first.bundle_id, second.bundle_id]

    c = c_store_head(store_dir, key)
    if c is not None:
        assert c[0] == "SMM_CORRUPT_BUNDLE" and "rolled back" in c[1], c

    shutil.rmtree(store_dir / "heads")
    shutil.copytree(tmp_path / "heads-at-second", store_dir / "heads")
    third = smm_core.run(CONTRACT, now="2025-09-01T14:00:00Z", **common)
    assert third.verified
    assert [b["bundleId"] for b in store.list(WS)] == [first.bundle_id, second.bundle_id, third.bundle_id]
