"""Cost controls from Python: the usage ledger, prices, agent runs, the
budget-breach playbook, agent tokens, retention."""

import decimal
import json
import pathlib
import sqlite3
import subprocess
import sys
import threading

import pytest

import smm_core

ROOT = pathlib.Path(__file__).resolve().parents[2]
V2 = (ROOT / "examples" / "workspace.icblabs.v2.json").read_text()
REQUEST = json.loads((ROOT / "examples" / "icblabs-seed42.request.json").read_text())
POLICY_INPUT = json.loads((ROOT / "examples" / "policy-input.icblabs.json").read_text())
PRICES = ROOT / "examples" / "prices.example.json"
NOW = "2025-09-01T12:00:00Z"
WS = "ws-icblabs-0001"


@pytest.fixture(params=["memory", "sqlite", "sqlite-full"])
def ledger(request, tmp_path):
    if request.param == "memory":
        return smm_core.UsageLedger.memory()
    if request.param == "sqlite-full":
        return smm_core.UsageLedger.open(tmp_path / "ledger.sqlite", durability="full")
    return smm_core.UsageLedger.open(tmp_path / "ledger.sqlite")


def test_sqlite_durability_is_the_connections(tmp_path):
    path = tmp_path / "ledger.sqlite"
    full = smm_core.UsageLedger.open(path, durability="full")
    assert full.durability == "full"
    full.set_quota("ws", "tokens", 10, "day")
    r = full.reserve("ws", "job", {"tokens": 4}, NOW)
    full.commit(r.id, {"tokens": 4}, NOW)
    plain = smm_core.UsageLedger.open(path)
    assert plain.durability == "normal"
    assert plain.usage("ws", "tokens", NOW, "day") == 4
    assert smm_core.UsageLedger.memory().durability is None
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.UsageLedger.open(path, durability="FULL")
    assert e.value.pointer == "/durability" and "normal" in str(e.value)


def test_reserve_warn_block_commit_release(ledger):
    ledger.set_quota("ws", "tokens", 1000, "day")
    ledger.set_quota("ws", "cost_usd", 0.05, "month")
    assert {(q["kind"], q["period"]) for q in ledger.quotas("ws")} == {("tokens", "day"), ("cost_usd", "month")}
    a = ledger.reserve("ws", "job-1", {"tokens": 500, "cost_usd": 0.015}, NOW)
    assert a.outcome == "allow" and a.allowed and a and a.id
    assert a.amounts == {"tokens": 500, "cost_usd": decimal.Decimal("0.015")}
    assert smm_core.DEFAULT_RESERVATION_TTL_SECONDS == 900 and a.expires_at == "2025-09-01T12:15:00Z"
    assert a.to_dict()["amounts"] == {"tokens": 500, "cost_usd": 15_000_000}
    b = ledger.reserve("ws", "job-2", {"tokens": 300}, NOW)
    assert b.outcome == "warn" and b.allowed
    assert any("80%" in r for r in b.reasons)
    c = ledger.reserve("ws", "job-3", {"tokens": 201}, NOW)
    assert c.outcome == "block" and not c.allowed and not c and c.id == ""
    assert "> limit 1000" in c.reasons[0]
    with pytest.raises(smm_core.QuotaExceededError) as e:
        ledger.reserve("ws", "job-3", {"tokens": 201}, NOW, strict=True)
    assert e.value.reasons == c.reasons and e.value.category == "quota"
    assert isinstance(e.value, smm_core.QuotaError)
    # Release gives it back; releasing twice is an unknown reservation.
    ledger.release(b.id)
    with pytest.raises(smm_core.UnknownReservationError):
        ledger.release(b.id)
    # Commit is idempotent by job.
    receipt = ledger.commit(a.id, {"tokens": 450, "cost_usd": "0.0135"}, NOW)
    assert receipt["alreadyCommitted"] is False
    again = ledger.commit(a.id, {"tokens": 9999}, NOW)
    assert again["alreadyCommitted"] is True and again["amounts"]["tokens"] == 450
    assert ledger.usage("ws", "tokens", NOW, "day") == 450
    assert ledger.usage("ws", "cost_usd", NOW, "month") == decimal.Decimal("0.0135")  # exact dollars
    assert ledger.usage("ws", "tokens", "2025-09-02T00:00:00Z", "day") == 0
    with pytest.raises(smm_core.LedgerConflictError):
        ledger.reserve("ws", "job-1", {"tokens": 1}, NOW)
    assert ledger.workspaces() == ["ws"]
    status = ledger.status("ws", NOW)
    tokens = next(s for s in status if s["quota"]["kind"] == "tokens")
    assert tokens["used"] == 450 and tokens["reserved"] == 0
    figures = ledger.policy_figures("ws", NOW)
    assert {"kind": "tokens", "period": "day", "used": 450.0, "limit": 1000.0} in figures
    with pytest.raises(smm_core.UnknownReservationError) as e:
        ledger.commit("res-999999", {"tokens": 1}, NOW)
    assert isinstance(e.value, smm_core.ValidationError)


def test_dollars_are_exact_and_bad_amounts_name_the_field(ledger):
    ledger.set_quota("ws", "cost_usd", "10", "total")
    for amount in (0.1, "0.1", decimal.Decimal("0.1")):
        r = ledger.reserve("ws", f"job-{amount!r}", {"cost_usd": amount}, NOW)
        assert r.to_dict()["amounts"]["cost_usd"] == 100_000_000
        ledger.commit(r.id, {"cost_usd": amount}, NOW)
    assert ledger.usage("ws", "cost_usd", NOW) == decimal.Decimal("0.3")
    assert ledger.status("ws", NOW)[0]["used"] == decimal.Decimal("0.3")  # no float drift
    for bad, pointer in [
        ({"cost_usd": -1.0}, "/usage/cost_usd"),
        ({"cost_usd": float("nan")}, "/usage/cost_usd"),
        ({"cost_usd": "0.0000000001"}, "/usage/cost_usd"),
        ({"cost_usd": "1e3"}, "/usage/cost_usd"),
        ({"tokens": 1.5}, "/usage/tokens"),
        ({"tokens": -1}, "/usage/tokens"),
        ({"tokens": True}, "/usage/tokens"),
        ({"tokens": 2**64}, "/usage/tokens"),
        ({"a/b": "x"}, "/usage/a~1b"),
    ]:
        with pytest.raises(smm_core.ValidationError) as e:
            ledger.reserve("ws", "job-bad", bad, NOW)
        assert e.value.pointer == pointer, (bad, e.value)
    with pytest.raises(smm_core.ValidationError):
        ledger.reserve("ws", "job-bad", [("tokens", 1)], NOW)
    with pytest.raises(smm_core.ValidationError):
        ledger.set_quota("ws", "tokens", 10, "week")
    with pytest.raises(smm_core.ValidationError):
        ledger.reserve("ws", "job-bad", {"tokens": 1}, "yesterday")
    with pytest.raises(smm_core.ValidationError):
        ledger.reserve("ws\x00", "job", {"tokens": 1}, NOW)
    with pytest.raises(smm_core.ValidationError):
        ledger.reserve("ws", "job", {}, NOW)


def test_threads_never_pass_a_limit(ledger):
    ledger.set_quota("ws", "tokens", 5000, "day")
    allowed = []

    def worker(t):
        n = 0
        for i in range(125):
            r = ledger.reserve("ws", f"t{t}-{i}", {"tokens": 10}, NOW)
            if r.allowed:
                n += 1
                ledger.commit(r.id, {"tokens": 10}, NOW)
        allowed.append(n)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 500
    assert ledger.usage("ws", "tokens", NOW, "day") == 5000


CHILD = """
import sys, smm_core
ledger = smm_core.UsageLedger.open_existing(sys.argv[1])
n = 0
for i in range(500):
    r = ledger.reserve("ws", f"{sys.argv[2]}-{i}", {"tokens": 10}, "2025-09-01T12:00:00Z")
    if r.allowed:
        n += 1
        ledger.commit(r.id, {"tokens": 10}, "2025-09-01T12:00:00Z")
print(n)
"""


LOCK_HOLDER = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
c.execute("ROLLBACK")
"""


def test_two_processes_never_pass_a_limit(tmp_path):
    path = tmp_path / "ledger.sqlite"
    smm_core.UsageLedger.open(path).set_quota("ws", "tokens", 5000, "day")
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(path), tag], stdout=subprocess.PIPE, text=True)
        for tag in ("a", "b")
    ]
    counts = [int(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(counts) == 500
    assert smm_core.UsageLedger.open_existing(path).usage("ws", "tokens", NOW, "day") == 5000


def test_ledger_files_that_are_missing_corrupt_newer_or_locked(tmp_path):
    with pytest.raises(smm_core.LedgerStorageError):
        smm_core.UsageLedger.open_existing(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(smm_core.LedgerCorruptError) as e:
        smm_core.UsageLedger.open(junk)
    assert isinstance(e.value, smm_core.IntegrityError) and isinstance(e.value, smm_core.LedgerError)
    newer = tmp_path / "newer.sqlite"
    smm_core.UsageLedger.open(newer)
    with sqlite3.connect(newer) as c:
        c.execute("PRAGMA user_version = 99")
    with pytest.raises(smm_core.LedgerVersionError):
        smm_core.UsageLedger.open(newer)
    locked = tmp_path / "locked.sqlite"
    led = smm_core.UsageLedger.open(locked)
    led.set_quota("ws", "tokens", 10, "day")
    # Another process holds the write lock (another process: two copies of
    # SQLite in one process do not see each other's POSIX locks).
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(locked)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(smm_core.LedgerLockedError):
            led.reserve("ws", "job", {"tokens": 1}, NOW)
    finally:
        holder.communicate("done\n", timeout=60)
    assert led.reserve("ws", "job", {"tokens": 1}, NOW).allowed
    with pytest.raises(smm_core.ValidationError):
        smm_core.UsageLedger.memory().apply_retention({})


def test_prices_and_model_usage():
    table = smm_core.PriceTable.load(PRICES)
    assert "gpt-4" in table.models
    assert table.cost("gpt-4", 100, 200) == decimal.Decimal("0.015")
    assert smm_core.PriceTable(table.to_dict()).cost("gpt-3.5-turbo", 1, 1) == decimal.Decimal("0.0000035")
    messages = [{"role": "user", "content": "Plan the launch"}]
    u = smm_core.price_usage(table, "gpt-4", messages, 100, 200, NOW)
    assert u["costUsd"] == decimal.Decimal("0.015") and u["totalTokens"] == 300 and u["provider"] == "openai"
    assert u["promptHash"] == smm_core.prompt_hash(messages)
    # Key order of the messages does not change the hash (RFC 8785).
    assert smm_core.prompt_hash([{"content": "Plan the launch", "role": "user"}]) == u["promptHash"]
    assert smm_core.price_usage(PRICES.read_text(), "gpt-4", messages, 100, 200, NOW) == u
    with pytest.raises(smm_core.ValidationError):
        table.cost("gpt-5", 1, 1)
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.PriceTable({"currency": "USD", "models": {"m": {"provider": "p", "inputPerMillion": -1, "outputPerMillion": "1"}}})
    assert "inputPerMillion" in e.value.pointer


def run_doc(job="job-1", tokens=(100, 200)):
    return {
        "jobId": job,
        "workspaceId": WS,
        "agentType": "research",
        "status": "completed",
        "inputHash": "sha256:" + "a" * 64,
        "outputHash": "sha256:" + "b" * 64,
        "startedAt": "2025-09-01T10:00:00Z",
        "finishedAt": "2025-09-01T10:01:00Z",
        "modelUsage": [
            {
                "modelId": "gpt-4",
                "provider": "openai",
                "promptHash": "sha256:" + "c" * 64,
                "inputTokens": tokens[0],
                "outputTokens": tokens[1],
                "totalTokens": tokens[0] + tokens[1],
                "costUsd": "0.015",
                "timestamp": "2025-09-01T10:00:30Z",
            }
        ],
    }


def test_agent_runs_are_checked():
    run = smm_core.AgentRun(run_doc())
    assert run.total_tokens == 300 and run.total_cost_usd == decimal.Decimal("0.015")
    assert run.usage() == {"tokens": 300, "cost_usd": decimal.Decimal("0.015")}
    assert run.status == "completed" and run.agent_type == "research"
    assert smm_core.AgentRun(json.dumps(run.to_dict())).to_dict() == run.to_dict()
    bad = run_doc()
    bad["modelUsage"][0]["totalTokens"] = 1
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.AgentRun(bad)
    assert e.value.pointer == "/modelUsage/0/totalTokens"
    bad = run_doc()
    bad["agentType"] = "spy"
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.AgentRun(bad)
    assert e.value.pointer == "/agentType"


def evidence():
    report = smm_core.simulate_request(REQUEST, threads=1)
    contract = smm_core.Contract.from_json(V2)
    decision = smm_core.PolicyBundle.default().evaluate(POLICY_INPUT)
    card = smm_core.decision_card(report, decision, contract)
    return contract, report, decision, card


def test_bundles_carry_typed_agent_runs():
    contract, report, decision, card = evidence()
    runs = [smm_core.AgentRun(run_doc("job-a")), run_doc("job-b")]
    bundle = smm_core.assemble_bundle(
        contract, report, created_at=NOW,
        audit_trail=[{"timestamp": NOW, "event": "bundle_created", "actor": "system", "details": {}}],
        policy_decision=decision, decision_card=card, agent_runs=runs,
    )
    assert [r["jobId"] for r in bundle["agentRuns"]] == ["job-a", "job-b"]
    bad = run_doc("job-c")
    bad["inputHash"] = "sha256:short"
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.assemble_bundle(
            contract, report, created_at=NOW, audit_trail=[], policy_decision=decision,
            decision_card=card, agent_runs=[bad],
        )
    assert e.value.pointer == "/agentRuns/0/inputHash"


def test_the_budget_breach_playbook():
    contract, report, decision, card = evidence()
    ledger = smm_core.UsageLedger.memory()
    for q in smm_core.contract_quotas(contract):
        assert (q["kind"], q["period"]) == ("cost_usd", "total")
        ledger.set_quota(q["workspaceId"], q["kind"], q["limit"] / smm_core.COST_UNITS_PER_USD, q["period"])
    kwargs = dict(now=NOW, actor="system:cost-guard", simulation=report, policy_decision=decision, decision_card=card)
    plan = smm_core.breach_plan(contract, ledger.status(WS, NOW), **kwargs)
    assert plan["breached"] == [] and plan["actions"] == [] and plan["bundle"] is None
    r = ledger.reserve(WS, "job-big", {"cost_usd": 1000}, NOW)
    ledger.commit(r.id, {"cost_usd": "5000.000000001"}, NOW)
    plan = smm_core.breach_plan(contract, ledger.status(WS, NOW), agent_runs=[smm_core.AgentRun(run_doc())], **kwargs)
    assert plan["breached"] == ["cost_usd/total: $5000.000000001 > $5000"]
    assert [a["type"] for a in plan["actions"]] == ["immediate_halt", "audit_snapshot"]
    assert plan["contract"]["emergencyFlags"]["halted"] is True
    assert [e["event"] for e in plan["bundle"]["auditTrail"]] == ["budget_breach_detected", "agents_halted", "audit_snapshot"]
    assert plan["actions"][1]["bundleId"] == smm_core.bundle_id(plan["bundle"])
    halted_input = dict(POLICY_INPUT, workspace=plan["contract"])
    assert "workspace_halted" in smm_core.PolicyBundle.default().evaluate(halted_input).deny
    # Break glass.
    doc = json.loads(V2)
    doc["emergencyFlags"]["budgetOverride"] = True
    plan = smm_core.breach_plan(doc, ledger.status(WS, NOW), **kwargs)
    assert plan["overrideUsed"] is True and plan["contract"] is None
    assert plan["actions"][0] == {"type": "break_glass_override", "actor": "system:cost-guard"}
    # A status of another workspace is refused.
    other = ledger.status(WS, NOW)
    other[0]["quota"]["workspaceId"] = "ws-other"
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.breach_plan(contract, other, **kwargs)
    assert e.value.pointer == "/status"
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.breach_plan(contract, [{"quota": {}}], **kwargs)
    assert e.value.pointer.startswith("/status/0/quota")


def test_agent_tokens():
    claims = {
        "policies": ["default", f"agent-research-{WS}"],
        "issuedAt": "2025-09-01T11:00:00Z",
        "expiresAt": "2025-09-01T13:00:00Z",
        "renewable": False,
    }
    smm_core.check_agent_token(claims, WS, "research", NOW)
    for ws, agent, now, why in [
        ("ws-other", "research", NOW, "do not include"),
        (WS, "publisher", NOW, "do not include"),
        (WS, "research", "2025-09-01T13:00:00Z", "expired"),
    ]:
        with pytest.raises(smm_core.AgentTokenError) as e:
            smm_core.check_agent_token(claims, ws, agent, now)
        assert why in str(e.value) and isinstance(e.value, PermissionError)
        assert e.value.category == "unauthorized"
    long = dict(claims, expiresAt="2025-09-01T13:00:01Z")
    with pytest.raises(smm_core.AgentTokenError, match="more than"):
        smm_core.check_agent_token(long, WS, "research", NOW)
    with pytest.raises(smm_core.ValidationError):
        smm_core.check_agent_token(claims, WS, "spy", NOW)
    with pytest.raises(smm_core.ValidationError):
        smm_core.check_agent_token({"policies": "all"}, WS, "research", NOW)

    def vault(token):
        if token == "hvs.good":
            return claims
        raise PermissionError("permission denied")

    assert smm_core.authorize_agent(vault, "hvs.good", WS, "research", NOW) == claims
    with pytest.raises(smm_core.IntrospectionError) as e:
        smm_core.authorize_agent(vault, "hvs.bad", WS, "research", NOW)
    assert isinstance(e.value.__cause__, PermissionError)
    with pytest.raises(smm_core.IntrospectionError):
        smm_core.authorize_agent(lambda t: "not claims", "hvs.x", WS, "research", NOW)


def test_retention_plans_and_their_application(tmp_path):
    contract = smm_core.Contract.from_json(V2)
    records = [
        {"id": "bundle-1", "kind": "audit_bundle", "createdAt": "2025-08-24T12:00:00Z"},
        {"id": "run-1", "kind": "agent_run", "createdAt": "2024-08-01T00:00:00Z"},
        {"id": "conn-li", "kind": "connector", "createdAt": "2025-08-24T09:45:00Z"},
    ]
    now = "2025-10-01T00:00:00Z"
    plan = smm_core.retention_plan(contract, records, now)
    actions = {i["id"]: i["action"] for i in plan["items"]}
    assert actions == {"bundle-1": "keep", "run-1": "delete", "conn-li": "anonymise"}
    assert plan["planHash"].startswith("sha256:")
    assert smm_core.retention_plan(contract, list(reversed(records)), now) == plan
    held = smm_core.retention_plan(contract, records, now, legal_hold=True)
    assert {i["action"] for i in held["items"]} == {"hold"}
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.retention_plan(contract, [{"id": "x", "kind": "audit_bundle", "createdAt": "soon"}], now)
    assert e.value.pointer == "/records/0/createdAt"
    # The SQLite ledger applies the ledger part; tampering is refused.
    ledger = smm_core.UsageLedger.open(tmp_path / "l.sqlite")
    r = ledger.reserve(WS, "old", {"tokens": 5}, "2024-01-01T00:00:00Z")
    ledger.commit(r.id, {"tokens": 5}, "2024-01-01T00:00:00Z")
    r = ledger.reserve(WS, "new", {"tokens": 7}, NOW)
    ledger.commit(r.id, {"tokens": 7}, NOW)
    tampered = dict(plan, auditRetentionDays=1)
    with pytest.raises(smm_core.ValidationError):
        ledger.apply_retention(tampered)
    assert ledger.apply_retention(held) == 0
    assert ledger.usage(WS, "tokens", "2024-01-01T00:00:00Z", "day") == 5
    assert ledger.apply_retention(plan) >= 2
    assert ledger.usage(WS, "tokens", "2024-01-01T00:00:00Z", "day") == 0
    assert ledger.usage(WS, "tokens", NOW, "day") == 7
    assert ledger.usage(WS, "tokens", NOW) == 12  # a lifetime total survives the purge


def test_hostile_ledger_inputs_are_typed_errors(tmp_path):
    # An empty path would be a temporary database that vanishes.
    with pytest.raises(smm_core.ValidationError):
        smm_core.UsageLedger.open("")
    # Another application's database is refused, and left as it was.
    foreign = tmp_path / "app.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    before = foreign.read_bytes()
    with pytest.raises(smm_core.LedgerCorruptError):
        smm_core.UsageLedger.open(foreign)
    assert foreign.read_bytes() == before and not (tmp_path / "app.sqlite-wal").exists()
    # A row out of range is corruption, never read as 0.
    path = tmp_path / "l.sqlite"
    ledger = smm_core.UsageLedger.open(path)
    ledger.set_quota("ws", "tokens", 100, "total")
    del ledger
    con = sqlite3.connect(path)
    con.execute("PRAGMA ignore_check_constraints = 1")
    con.execute("UPDATE workspace_quotas SET limit_value = -5")
    con.commit()
    con.close()
    with pytest.raises(smm_core.LedgerCorruptError):
        smm_core.UsageLedger.open(path).status("ws", NOW)
    # An id that cannot be text: a ValidationError, not UnicodeEncodeError.
    mem = smm_core.UsageLedger.memory()
    for call in (
        lambda: mem.reserve("ws\ud800", "job", {"tokens": 1}, NOW),
        lambda: mem.reserve("ws", "job\udfff", {"tokens": 1}, NOW),
        lambda: mem.status("\ud800", NOW),
        lambda: mem.release("res-\ud800"),
    ):
        with pytest.raises(smm_core.ValidationError):
            call()


def test_dollars_come_back_as_exact_decimals():
    ledger = smm_core.UsageLedger.memory()
    ledger.set_quota("ws-money", "cost_usd", "12.345678901", "month")
    ledger.set_quota("ws-money", "tokens", 1000, "day")
    got = {q["kind"]: q["limit"] for q in ledger.quotas("ws-money")}
    assert got == {"cost_usd": decimal.Decimal("12.345678901"), "tokens": 1000}
    assert isinstance(got["cost_usd"], decimal.Decimal) and type(got["tokens"]) is int
    r = ledger.reserve("ws-money", "job-1", {"cost_usd": 0.1, "tokens": 10}, NOW)
    ledger.commit(r.id, {"cost_usd": decimal.Decimal("0.000000001"), "tokens": 7}, NOW)
    assert ledger.usage("ws-money", "cost_usd", NOW, "month") == decimal.Decimal("0.000000001")
    assert type(ledger.usage("ws-money", "tokens", NOW, "day")) is int
    # Every answer in dollars, the same Decimals: status, commit, policy figures.
    st = {s["quota"]["kind"]: s for s in ledger.status("ws-money", NOW)}
    assert st["cost_usd"]["used"] == decimal.Decimal("0.000000001")
    assert st["cost_usd"]["quota"]["limit"] == decimal.Decimal("12.345678901")
    assert type(st["tokens"]["used"]) is int and st["tokens"]["used"] == 7
    receipt = ledger.commit(r.id, {"cost_usd": 5}, NOW)
    assert receipt["alreadyCommitted"] and receipt["amounts"] == {
        "cost_usd": decimal.Decimal("0.000000001"),
        "tokens": 7,
    }
    figures = {f["kind"]: f for f in ledger.policy_figures("ws-money", NOW)}
    assert figures["cost_usd"]["limit"] == decimal.Decimal("12.345678901")
    assert type(figures["tokens"]["used"]) is int
    # ... and they go back in as they came out: a policy input's quotas, a
    # breach plan's status.
    bundle = smm_core.PolicyBundle.default()
    doc = json.loads(json.dumps(POLICY_INPUT))
    doc["quotas"] = list(figures.values())
    assert bundle.evaluate(doc).allow in (True, False)
    # The schema documents (to_dict, to_json) keep the ledger's nano-dollars.
    assert r.to_dict()["amounts"]["cost_usd"] == 100_000_000


def test_hostile_decimals_are_refused_without_expanding_them():
    ledger = smm_core.UsageLedger.memory()
    for bad in ("1E+999999999", "1E-999999999", "NaN", "Infinity", "-1"):
        with pytest.raises(smm_core.ValidationError, match="/limit"):
            ledger.set_quota("ws-h", "cost_usd", decimal.Decimal(bad), "month")
    # Zero with any exponent is zero dollars, not a billion-digit string.
    ledger.set_quota("ws-h", "cost_usd", decimal.Decimal("0E-999999999"), "month")
    assert ledger.quotas("ws-h")[0]["limit"] == decimal.Decimal(0)
