"""Policies in Rego, decisions and decision cards from Python."""

import copy
import io
import json
import os
import pathlib
import pickle
import tarfile

import pytest

import smm_core

ROOT = pathlib.Path(__file__).resolve().parents[2]
V2 = (ROOT / "examples" / "workspace.icblabs.v2.json").read_text()
INPUT = json.loads((ROOT / "examples" / "policy-input.icblabs.json").read_text())


@pytest.fixture(scope="module")
def bundle():
    return smm_core.PolicyBundle.default()


def test_default_bundle_allows_the_example(bundle):
    d = bundle.evaluate(INPUT)
    assert d and d.allow is True and d.deny == []
    assert d.require_human_approval  # synthetic voice under legalManualApproval
    assert "legal_review_required" in d.reasons
    assert d.warnings == sorted(d.warnings)
    assert d.bundle_checksum == bundle.checksum == smm_core.Contract.from_json(V2).to_dict()["policyBundleChecksum"]
    assert d.engine == "regorus" and d.engine_version == smm_core.REGORUS_VERSION
    assert d.evaluation_id.startswith("sha256:") and len(d.evaluation_id) == 71
    assert d.evaluated_at == "2025-09-01T12:00:00Z"
    assert d.to_dict()["evaluationId"] == d.evaluation_id
    # JSON text and bytes are the same input; the interpreter agrees.
    assert bundle.evaluate(json.dumps(INPUT)) == d
    assert bundle.evaluate(json.dumps(INPUT).encode(), engine="interpreter") == d
    assert pickle.loads(pickle.dumps(d)) == d
    assert smm_core.Decision.from_json(d.to_json()) == d


def test_denials_and_their_codes(bundle):
    i = copy.deepcopy(INPUT)
    i["currentSpend"]["thisWeek"] = 1190
    i["workspace"]["emergencyFlags"] = {"halted": True, "budgetOverride": False,
                                        "humanApprovalRequired": False, "reason": "breach",
                                        "haltedAt": "2025-09-01T11:00:00Z"}
    d = bundle.evaluate(i)
    assert not d and d.deny == ["weekly_budget_exceeded", "workspace_halted"]


def test_bad_input_is_a_validation_error_with_a_pointer(bundle):
    i = copy.deepcopy(INPUT)
    i["workflow"][0]["type"] = "pubish"
    with pytest.raises(smm_core.ValidationError) as e:
        bundle.evaluate(i)
    assert e.value.pointer == "/workflow/0/type"
    assert e.value.code == 3 and e.value.name == "SMM_INVALID_INPUT" and e.value.category == "input"
    i = copy.deepcopy(INPUT)
    i["workspace"]["budget"]["hardCap"] = -1
    with pytest.raises(smm_core.ValidationError) as e:
        bundle.evaluate(i)
    assert e.value.pointer == "/workspace/budget/hardCap"
    with pytest.raises(smm_core.ValidationError):
        bundle.evaluate({"timestamp": "now"})
    with pytest.raises(smm_core.ValidationError, match="engine"):
        bundle.evaluate(INPUT, engine="jit")


def test_query_any_rule(bundle):
    assert bundle.query("data.smm.allow", INPUT) is True
    assert bundle.query("data.smm.budget.workflow_cost", INPUT) == 400
    assert bundle.query("data.smm.lib.now_ns", {}) is None
    assert bundle.query(smm_core.DECISION_RULE, {})["allow"] is False


def test_rego_unit_tests_with_full_coverage(bundle):
    report = bundle.test()
    assert report["failed"] == 0 and report["passed"] >= 70
    assert report["coveragePercent"] == 100.0
    assert all(not f["notCovered"] for f in report["coverage"])
    assert {r["outcome"] for r in report["results"]} == {"pass"}


def test_modules_data_and_pickling(bundle):
    assert "smm/decision.rego" in bundle.modules
    assert bundle.data["smm"]["config"]["hallucination"]["minConfidence"] == 0.85
    again = pickle.loads(pickle.dumps(bundle))
    assert again.checksum == bundle.checksum
    assert again.evaluate(INPUT) == bundle.evaluate(INPUT)


def test_broken_rego_names_module_and_line():
    with pytest.raises(smm_core.PolicyError) as e:
        smm_core.PolicyBundle.from_modules({"pkg/p.rego": "package p\nimport rego.v1\n\nn := count(1)\n"})
    assert e.value.module == "pkg/p.rego" and e.value.line == 4
    assert e.value.category == "input" and e.value.name == "SMM_POLICY"
    with pytest.raises(smm_core.PolicyError) as e:
        smm_core.PolicyBundle.from_modules({"p.rego": "package p\nallow if {\n"})
    assert e.value.module == "p.rego"


def _opa_archive(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo("/" + name)  # opa build writes a leading slash
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_from_dir_and_from_archive_agree(bundle, tmp_path):
    files = {p: s for p, s in bundle.modules.items()}
    files["data.json"] = json.dumps(bundle.data, indent=4)
    files[".manifest"] = json.dumps({"revision": "r1", "roots": ["smm"]})
    for name, text in files.items():
        target = tmp_path / "dir" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    from_dir = smm_core.PolicyBundle.from_dir(tmp_path / "dir")
    _opa_archive(tmp_path / "bundle.tar.gz", files)
    from_archive = smm_core.PolicyBundle.from_archive(tmp_path / "bundle.tar.gz")
    # Pinned: on the pin it loads; off it, it is refused before parsing.
    assert smm_core.PolicyBundle.from_dir(tmp_path / "dir", checksum=bundle.checksum).checksum == bundle.checksum
    assert smm_core.PolicyBundle.from_archive(tmp_path / "bundle.tar.gz", bundle.checksum).checksum == bundle.checksum
    for load in (smm_core.PolicyBundle.from_dir, smm_core.PolicyBundle.from_archive):
        with pytest.raises(smm_core.PolicyChecksumError):
            load(tmp_path / ("dir" if load is smm_core.PolicyBundle.from_dir else "bundle.tar.gz"), checksum="0" * 64)
    assert from_dir.checksum == from_archive.checksum == bundle.checksum
    (tmp_path / "dir" / "link.rego").symlink_to(tmp_path / "dir" / "smm" / "lib.rego")
    with pytest.raises(smm_core.PolicyError, match="symbolic link"):
        smm_core.PolicyBundle.from_dir(tmp_path / "dir")
    with pytest.raises(smm_core.PolicyError):
        smm_core.PolicyBundle.from_archive(tmp_path / "missing.tar.gz")


def test_decision_card(bundle):
    report = smm_core.simulate(smm_core.Contract.from_json(V2).to_dict(), iterations=1000, seed=42)
    d = bundle.evaluate(INPUT)
    card = smm_core.decision_card(report, d, smm_core.Contract.from_json(V2))
    assert card["action"] == "human_approval"
    assert card["reasonCodes"] == ["legal_approval_required", "paid_spend_needs_approval",
                                   "policy_requires_approval", "readiness_below_threshold"]
    assert card["canary"] == {"initialPct": 0.05, "watchWindowHours": 48.0}
    assert card["evaluationId"] == d.evaluation_id
    assert card["costEstimate"]["weeklyCap"] == 1200
    # The dict forms work too.
    assert smm_core.decision_card(report.to_dict(), d.to_dict(), V2) == card


def test_decision_card_refuses_another_bundles_decision():
    other = smm_core.PolicyBundle.from_modules({"smm/d.rego": (
        "package smm\nimport rego.v1\n\ndecision := {\"allow\": true, \"deny\": [], \"warnings\": [], "
        "\"reasons\": [], \"require_human_approval\": false}\n")})
    d = other.evaluate(INPUT)
    report = smm_core.simulate(smm_core.Contract.from_json(V2).to_dict(), iterations=200)
    with pytest.raises(smm_core.PolicyChecksumError) as e:
        smm_core.decision_card(report, d, V2)
    assert other.checksum in str(e.value)
    assert e.value.code == 16


# The C names of the ABI's own statuses, and the Python class each core
# kind's category implies for builtins.
ABI_OWN = {0, 1, 2, 9, 100}


def test_every_core_error_kind_has_its_class_code_and_name():
    # The Rust side walks every variant of every core error to its kind
    # (smm-core's `samples`, behind the test-util feature, not in this
    # wheel); here every kind reaches its exception through the binding's
    # own exhaustive mapping.
    from smm_core import _smm_core

    # The test fixtures of the core are not in the shipped wheel.
    assert not hasattr(_smm_core, "_error_samples") and not hasattr(_smm_core, "_error_table")
    kinds = _smm_core._error_kinds()
    assert len(kinds) == 27
    codes = [e.code for e in kinds]
    assert codes == sorted(set(codes)) and not ABI_OWN & set(codes)
    for exc in kinds:
        assert isinstance(exc, smm_core.SmmError)
        assert getattr(smm_core, type(exc).__name__) is type(exc)
        assert exc.name.startswith("SMM_") and exc.category and str(exc)
        # Bad input, and only bad input, is a ValueError.
        assert isinstance(exc, ValueError) == (
            exc.category == "input" and type(exc).__name__ in ("ValidationError", "ShardError", "UnknownReservationError")
        ), exc.name
    by_name = {e.name: e for e in kinds}
    assert type(by_name["SMM_INVALID_INPUT"]) is smm_core.ValidationError
    assert type(by_name["SMM_CANCELLED"]) is smm_core.CancelledError
    assert by_name["SMM_INTERNAL"].code == 99 and by_name["SMM_INTERNAL"].category == "internal"


def test_python_names_are_the_c_status_names():
    # The two bindings name each kind by their own exhaustive matches; the
    # names must agree. Needs the C library (scripts/test sets SMM_C_LIB).
    import ctypes

    lib_path = os.environ.get("SMM_C_LIB")
    if not lib_path:
        pytest.skip("SMM_C_LIB (the path of libsmm.so) is not set: run through scripts/test")
    from smm_core import _smm_core

    lib = ctypes.CDLL(lib_path)
    lib.smm_status_name.restype = ctypes.c_char_p
    lib.smm_status_name.argtypes = [ctypes.c_uint32]
    for exc in _smm_core._error_kinds():
        assert lib.smm_status_name(exc.code).decode() == exc.name, exc.name


def test_hostile_policy_sources_are_policy_errors(tmp_path):
    # Each of these crashed or hung the process before.
    for src in (
        "package p\nimport rego.v1\nf(x) := f(x)\nr := f(1)\n",
        "package p\nimport rego.v1\nr := " + "[" * 300 + "1" + "]" * 300 + "\n",
    ):
        with pytest.raises(smm_core.PolicyError) as e:
            smm_core.PolicyBundle.from_modules({"p.rego": src})
        assert e.value.module == "p.rego" and e.value.line == 3
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "x.rego")
    with pytest.raises(smm_core.PolicyError, match="not a regular file"):
        smm_core.PolicyBundle.from_dir(fifo)
    # A link among the entries is refused, not followed to a device, and a
    # file past the bundle limit is refused without being read whole.
    linked = tmp_path / "linked"
    linked.mkdir()
    os.symlink("/dev/zero", linked / "z.rego")
    with pytest.raises(smm_core.PolicyError, match="symbolic link"):
        smm_core.PolicyBundle.from_dir(linked)
    big = tmp_path / "big.tar.gz"
    with open(big, "wb") as f:
        f.truncate(40 << 20)
    with pytest.raises(smm_core.PolicyError, match="the archive exceeds"):
        smm_core.PolicyBundle.from_archive(big)


def test_a_prepared_input_decides_as_the_document_does(bundle):
    prepared = smm_core.PolicyInput(INPUT)
    assert bundle.evaluate(prepared) == bundle.evaluate(INPUT)
    assert bundle.evaluate(prepared, engine="interpreter") == bundle.evaluate(prepared)
    assert prepared.to_dict()["workspace"]["workspaceId"] == INPUT["workspace"]["workspaceId"]
    assert json.loads(prepared.to_json()) == prepared.to_dict()
    # Around an already validated contract: the same input, the same id.
    contract = smm_core.Contract.from_dict(INPUT["workspace"])
    rest = {k: v for k, v in INPUT.items() if k != "workspace"}
    around = smm_core.PolicyInput(rest, contract=contract)
    assert around == prepared
    assert bundle.evaluate(around).evaluation_id == bundle.evaluate(INPUT).evaluation_id
    # The rest is still checked, naming the field; a workspace given twice
    # is refused.
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.PolicyInput(dict(rest, timestamp="yesterday"), contract=contract)
    assert e.value.pointer == "/timestamp"
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.PolicyInput(INPUT, contract=contract)
    assert e.value.pointer == "/workspace"
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.PolicyInput(dict(INPUT, timestamp="yesterday"))
    assert e.value.pointer == "/timestamp"


def _same_but_engine(a, b):
    x, y = a.to_dict(), b.to_dict()
    for d in (x, y):
        d.pop("engine")
        d.pop("engineVersion")
    return x == y


def test_native_decisions_are_the_vms(bundle):
    """engine="native": the default bundle's rules in Rust, the VM's
    decisions (codes, bundle, evaluation id) under their own engine name."""
    assert bundle.has_native
    prepared = smm_core.PolicyInput(INPUT)
    native = bundle.evaluate(prepared, engine="native")
    assert native.engine == "smm-native" and native.engine_version == smm_core.__version__
    assert _same_but_engine(native, bundle.evaluate(prepared))
    # Around the thresholds and on denials too.
    for patch in (
        {"currentSpend": {"thisWeek": 960, "total": 1800, "currency": "USD"}},
        {"currentSpend": {"thisWeek": 1190, "total": 1800, "currency": "USD"}},
        {"quotas": [{"kind": "tokens", "period": "day", "limit": 100, "used": 80}]},
        {"timestamp": "2026-07-25T10:15:00Z"},
        {"timestamp": "2026-02-24T11:00:00Z"},
    ):
        doc = dict(copy.deepcopy(INPUT), **patch)
        p = smm_core.PolicyInput(doc)
        assert _same_but_engine(bundle.evaluate(p, engine="native"), bundle.evaluate(p)), patch
    # A dict input is validated, then decided natively.
    assert _same_but_engine(bundle.evaluate(INPUT, engine="native"), native)


def test_another_policy_has_no_native_form():
    other = smm_core.PolicyBundle.from_modules(
        {"smm/d.rego": 'package smm\nimport rego.v1\n\ndecision := {"allow": true, "deny": [], '
                       '"warnings": [], "reasons": [], "require_human_approval": false}\n'})
    assert not other.has_native
    with pytest.raises(smm_core.PolicyError, match="native"):
        other.evaluate(INPUT, engine="native")


def test_a_time_the_engine_cannot_compare_is_refused_naming_it(bundle):
    """A consent valid until 2999 used to be decided as expired on the VM
    (the engine's nanosecond clock ends in 2262, and the VM left the rule
    undefined): now the input is refused, naming the field."""
    i = copy.deepcopy(INPUT)
    i["workspace"]["consentRecords"][0]["expiresAt"] = "2999-01-01T00:00:00Z"
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.PolicyInput(i)
    assert e.value.pointer == "/workspace/consentRecords/0/expiresAt"
    assert "2262" in str(e.value)
