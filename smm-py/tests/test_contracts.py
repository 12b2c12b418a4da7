"""Workspace contracts from Python."""

import datetime
import json
import os
import pathlib
import pickle

import pytest

import smm_core

ROOT = pathlib.Path(__file__).resolve().parents[2]
V1 = (ROOT / "examples" / "workspace.icblabs.v1.json").read_text()
V2 = (ROOT / "examples" / "workspace.icblabs.v2.json").read_text()
NOW = "2025-09-01T00:00:00Z"


def v2(**changes):
    doc = json.loads(V2)
    for pointer, value in changes.items():
        *path, last = pointer.split("__")
        target = doc
        for p in path:
            target = target[int(p)] if isinstance(target, list) else target[p]
        target[last] = value
    return doc


def test_is_canonical_judges_text_as_canonicalize_does():
    assert smm_core.is_canonical('{"a":[true,"\\n",1.5],"b":1}') is True
    assert smm_core.is_canonical(b'{"a":[true,"\\n",1.5],"b":1}') is True
    for text in ['{"b":1,"a":2}', '{"a": 1}', "[1.0]", '"\\u0041"', "[1e3]"]:
        assert smm_core.is_canonical(text) is False, text
        assert smm_core.canonicalize(text) != text.encode()
    with pytest.raises(smm_core.ValidationError, match="duplicate key"):
        smm_core.is_canonical('{"a":1,"a":2}')
    with pytest.raises(smm_core.ValidationError):
        smm_core.is_canonical({"a": 1})


def test_canonicalize_text_bytes_and_values():
    assert smm_core.canonicalize('{"b": 1.0, "a": [true, "\\u00e9"]}') == '{"a":[true,"é"],"b":1}'.encode()
    assert smm_core.canonicalize(b'[1e0, 0.000001, 1E21]') == b"[1,0.000001,1e+21]"
    assert smm_core.canonicalize({"z": None, "a": 2.50}) == b'{"a":2.5,"z":null}'
    with pytest.raises(smm_core.ValidationError, match="duplicate key") as e:
        smm_core.canonicalize('{"a": {"x": 1, "x": 2}}')
    assert e.value.pointer == "/a/x"
    with pytest.raises(smm_core.ValidationError, match="9007199254740992"):
        smm_core.canonicalize({"id": 9007199254740993})
    with pytest.raises(smm_core.ValidationError, match="lone surrogate"):
        smm_core.canonicalize('["\\udc00"]')
    with pytest.raises(smm_core.ValidationError, match="finite"):
        smm_core.canonicalize({"x": float("inf")})


def test_contract_from_json_and_hash():
    c = smm_core.Contract.from_json(V2)
    assert c.contract_id == "ws-icblabs-0001-v1.1.0"
    assert c.lifecycle == "signed"
    assert c.terms_hash.startswith("sha256:") and len(c.terms_hash) == 71
    assert smm_core.contract_hash(json.loads(V2)) == c.terms_hash
    assert smm_core.contract_hash(c) == c.terms_hash
    assert c == smm_core.Contract.from_json(c.to_json())
    assert pickle.loads(pickle.dumps(c)) == c
    assert c.to_dict()["workspaceId"] == "ws-icblabs-0001"
    # Nested terms count: the original system's hash ignored them.
    assert smm_core.contract_hash(v2(budget__hardCap=5001)) != c.terms_hash
    assert smm_core.contract_hash(v2(goals__0__target=251)) != c.terms_hash
    assert smm_core.contract_hash(v2(lifecycle="active")) == c.terms_hash


def test_v1_is_migrated_explicitly():
    with pytest.raises(smm_core.ValidationError, match="migrate") as e:
        smm_core.Contract.from_json(V1)
    assert e.value.pointer == "/emergencyFlags/pauseAll"
    migrated = smm_core.migrate_v1(V1)
    assert migrated["emergencyFlags"] == {"halted": False, "budgetOverride": False, "humanApprovalRequired": False}
    v1 = smm_core.Contract.from_json(migrated)
    v2c = smm_core.Contract.from_json(V2)
    assert v2c.previous_contract_ref == v1.terms_hash
    assert v1.check_change(v2c)["kind"] == "newVersion"


def test_validation_lists_every_violation():
    doc = v2(budget__currency="usd", ttlHours=12)
    doc["connectors"][0]["colour"] = "blue"
    got = smm_core.validate_contract(doc, NOW)
    pointers = {(v.pointer, v.rule) for v in got}
    assert ("/budget/currency", "schema.pattern") in pointers
    assert ("/connectors/0/colour", "schema.additionalProperties") in pointers
    assert all(isinstance(v, smm_core.Violation) and v.is_error for v in got)
    assert "colour" in next(v.message for v in got if v.pointer == "/connectors/0/colour")
    # Schema holds: business rules, at the time given.
    rules = smm_core.validate_contract(v2(ttlHours=12), NOW)
    assert [v.rule for v in rules if v.is_error] == ["rule.minimumTtl"]
    c = smm_core.Contract.from_json(V2)
    assert not [v for v in c.validate(NOW) if v.is_error]
    late = datetime.datetime(2026, 9, 1, tzinfo=datetime.timezone.utc)
    assert "rule.consentUnexpired" in {v.rule for v in c.validate(late)}
    with pytest.raises(smm_core.ValidationError, match="timezone-aware"):
        c.validate(datetime.datetime(2026, 9, 1))
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.Contract.from_json(doc)
    assert len(e.value.violations) == 2 and e.value.pointer in {"/budget/currency", "/connectors/0/colour"}


def test_lifecycle_and_the_change_gate():
    c = smm_core.Contract.from_json(V2)
    p = c.transition("provisioning")
    assert p.lifecycle == "provisioning" and p.terms_hash == c.terms_hash
    assert c.check_change(p) == {"kind": "sameTerms"}
    with pytest.raises(smm_core.LifecycleError, match="signed -> active"):
        c.transition("active")
    with pytest.raises(smm_core.ValidationError):
        c.transition("archived")
    with pytest.raises(smm_core.ImmutabilityError, match="/budget/hardCap") as e:
        c.check_change(v2(budget__hardCap=9000))
    assert isinstance(e.value, smm_core.ContractError) and isinstance(e.value, smm_core.SmmError)
    bumped = v2(budget__hardCap=9000, contractVersion="v1.2.0")
    with pytest.raises(smm_core.VersionError, match="previousContractRef"):
        c.check_change(bumped)
    bumped["previousContractRef"] = c.terms_hash
    change = c.check_change(bumped)
    assert change == {"kind": "newVersion", "from": "v1.1.0", "to": "v1.2.0", "changed": ["/budget/hardCap", "/contractVersion", "/previousContractRef"]}


def test_history_verification():
    v1 = smm_core.Contract.from_json(smm_core.migrate_v1(V1))
    v2c = smm_core.Contract.from_json(V2)
    v3 = v2(budget__hardCap=6000, contractVersion="v1.2.0", previousContractRef=v2c.terms_hash)
    h = smm_core.ContractHistory([v2c, v1])
    h.add(v3)
    assert len(h) == 3
    report = h.verify()
    assert report["valid"] and report["versions"][-1] == "ws-icblabs-0001-v1.2.0"
    snap = v2c.snapshot()
    snap["content"]["budget"]["hardCap"] = 1
    broken = smm_core.ContractHistory([v1, snap, v3]).verify()
    assert not broken["valid"]
    kinds = [i["kind"] for i in broken["issues"]]
    assert kinds[0] == "tampered" and "brokenLink" in kinds
    assert smm_core.ContractHistory([v2c]).verify()["issues"][0]["kind"] == "missingVersion"


def test_load_from_dict_and_a_path_given_as_text(tmp_path):
    path = ROOT / "examples" / "workspace.icblabs.v2.json"
    c = smm_core.Contract.load(path)
    assert c == smm_core.Contract.load(str(path)) == smm_core.Contract.from_dict(json.loads(V2))
    assert c.terms_hash == smm_core.Contract.from_json(V2).terms_hash
    # A missing file is a FileNotFoundError (and an SmmError) naming it.
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError) as e:
        smm_core.Contract.load(missing)
    assert isinstance(e.value, smm_core.MissingFileError) and isinstance(e.value, smm_core.SmmError)
    assert e.value.filename == str(missing) and e.value.errno == 2
    # from_json given a path says so, and names the right call.
    with pytest.raises(smm_core.ValidationError, match=r"given a path .*Contract\.load"):
        smm_core.Contract.from_json("examples/workspace.icblabs.v2.json")
    with pytest.raises(TypeError):
        smm_core.Contract.from_dict(V2)
    # A bad file is a ContractViolationError: a ValidationError and a ContractError.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(v2(ttlHours="soon")))
    with pytest.raises(smm_core.ContractViolationError) as e:
        smm_core.Contract.load(bad)
    assert isinstance(e.value, smm_core.ValidationError) and isinstance(e.value, smm_core.ContractError)
    assert e.value.pointer == "/ttlHours" and e.value.violations
    # A file that never ends is read no further than the document limit.
    if os.path.exists("/dev/zero"):
        with pytest.raises(smm_core.ValidationError, match="MAX_DOCUMENT_BYTES"):
            smm_core.Contract.load("/dev/zero")


def test_validate_can_raise_as_pydantic_does():
    c = smm_core.Contract.from_json(V2)
    assert c.validate(NOW, raise_errors=True) == [] or all(not v.is_error for v in c.validate(NOW, raise_errors=True))
    late = datetime.datetime(2026, 9, 1, tzinfo=datetime.timezone.utc)
    listed = c.validate(late)
    assert any(v.is_error for v in listed)
    with pytest.raises(smm_core.ContractError) as e:
        c.validate(late, raise_errors=True)
    assert isinstance(e.value, smm_core.ContractViolationError)
    assert e.value.violations[0].is_error
    assert sorted(v.rule for v in e.value.violations) == sorted(v.rule for v in listed)
    assert e.value.pointer == e.value.violations[0].pointer


def test_run_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="contract"):
        smm_core.run(tmp_path / "missing.json", store=tmp_path / "store", now=NOW)
