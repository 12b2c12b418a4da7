"""The PostgreSQL ledger from Python and from C (through ctypes): connect,
the books shared by two handles, `run(ledger=URL)`, and a URL's password in
no error and no repr. The server is the one SMM_TEST_PG_URL names
(scripts/test starts one), or a throwaway one started here."""

import ctypes
import os
import pathlib
import subprocess
import uuid

import pytest

import smm_core
from _c_store import c_store_head, declare

ROOT = pathlib.Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
NOW = "2025-09-01T12:00:00Z"
WS = "ws-icblabs-0001"


@pytest.fixture(scope="module")
def server():
    url = os.environ.get("SMM_TEST_PG_URL")
    if url:
        yield url.rstrip("/")
        return
    # Directly under /tmp: the server runs as the postgres user when we are
    # root, and pytest's own temp dirs are closed to other users.
    import tempfile

    d = pathlib.Path(tempfile.mkdtemp(prefix="smm-pg.", dir="/tmp"))
    url = subprocess.run(
        ["bash", str(ROOT / "scripts/pg-server"), "start", str(d)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        yield url
    finally:
        subprocess.run(["bash", str(ROOT / "scripts/pg-server"), "stop", str(d)], check=False)


@pytest.fixture
def database(server):
    name = "py_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", "-q", f"{server}/postgres", "-c", f"CREATE DATABASE {name}"], check=True)
    return f"{server}/{name}"


def unreachable(password: str) -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql://smm:{password}@127.0.0.1:{port}/x?connect_timeout=2"


def test_two_handles_share_the_books(database):
    a = smm_core.UsageLedger.connect(database)
    b = smm_core.UsageLedger.connect(database)
    assert a.path is None and a.url == database
    a.set_quota(WS, "tokens", 100, period="day")
    r = b.reserve(WS, "job-1", {"tokens": 60}, NOW)
    assert r.allowed
    # The other handle sees the hold: 60 held + 60 asked > 100.
    assert a.reserve(WS, "job-2", {"tokens": 60}, NOW).outcome == "block"
    b.commit(r.id, {"tokens": 55}, NOW)
    assert a.usage(WS, "tokens", NOW, period="day") == 55
    assert isinstance(a.usage(WS, "tokens", NOW, period="day"), int)


def test_run_records_usage_in_postgres(database, tmp_path):
    out = smm_core.run(
        EX / "workspace.icblabs.v2.json",
        campaign=EX / "campaign.icblabs.json",
        agent_run=EX / "agent-run.research.json",
        store=tmp_path / "store",
        now=NOW,
        ledger=database,
    )
    assert out.verified and out.workspace_id == WS
    books = smm_core.UsageLedger.connect(database)
    assert books.usage(WS, "tokens", NOW) == 5770


def test_bad_and_unreachable_urls_are_typed_and_keep_the_password(database):
    with pytest.raises(smm_core.ValidationError):
        smm_core.UsageLedger.connect("mysql://x@h/db")
    secret = "hunter2-" + uuid.uuid4().hex[:6]
    with pytest.raises(smm_core.LedgerLockedError) as e:
        smm_core.UsageLedger.connect(unreachable(secret))
    assert secret not in str(e.value) and secret not in repr(e.value)
    with_pw = database.replace("smm@", f"smm:{secret}@", 1)
    ledger = smm_core.UsageLedger.connect(with_pw)
    assert secret not in repr(ledger) and secret not in (ledger.url or "")


def c_lib():
    path = os.environ.get("SMM_C_LIB")
    if not path:
        pytest.skip("SMM_C_LIB (the path of libsmm.so) is not set: run through scripts/test")
    lib = declare(ctypes.CDLL(path))
    lib.smm_ledger_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.smm_ledger_connect.restype = ctypes.c_uint32
    lib.smm_ledger_used.argtypes = [ctypes.c_void_p] + [ctypes.c_char_p] * 4 + [ctypes.POINTER(ctypes.c_uint64)]
    lib.smm_ledger_used.restype = ctypes.c_uint32
    lib.smm_ledger_free.argtypes = [ctypes.c_void_p]
    return lib


def test_c_connects_to_the_same_books(database):
    lib = c_lib()
    py = smm_core.UsageLedger.connect(database)
    py.set_quota(WS, "tokens", 1000, period="day")
    r = py.reserve(WS, "job-c", {"tokens": 10}, NOW)
    py.commit(r.id, {"tokens": 7}, NOW)
    handle = ctypes.c_void_p()
    assert lib.smm_ledger_connect(database.encode(), ctypes.byref(handle)) == 0
    used = ctypes.c_uint64()
    status = lib.smm_ledger_used(handle, WS.encode(), b"tokens", b"day", NOW.encode(), ctypes.byref(used))
    assert status == 0 and used.value == 7
    lib.smm_ledger_free(handle)
    secret = "hunter2-" + uuid.uuid4().hex[:6]
    handle = ctypes.c_void_p()
    status = lib.smm_ledger_connect(unreachable(secret).encode(), ctypes.byref(handle))
    assert lib.smm_status_name(status).decode() == "SMM_LEDGER_LOCKED"
    assert not handle.value
    p = lib.smm_last_error_json()
    text = ctypes.string_at(p).decode()
    lib.smm_string_free(p)
    assert secret not in text and '"code":22' in text.replace(" ", ""), text
    assert lib.smm_status_name(lib.smm_ledger_connect(b"mysql://x", ctypes.byref(handle))).decode() == (
        "SMM_INVALID_INPUT"
    )


def test_postgres_bundle_store_and_run_on_it(database, tmp_path):
    key = smm_core.LocalSigner.generate("replica-key")
    trusted = {key.key_id: key.public_key_pem}
    # Two replicas, each with its own connection to the one store: run()
    # on the URL (the books in the same database) chains them.
    runs = [
        smm_core.run(
            EX / "workspace.icblabs.v2.json",
            campaign=EX / "campaign.icblabs.json",
            agent_run=EX / "agent-run.research.json",
            store=database,
            key=key,
            now=NOW,
            actor=f"replica-{i}",
        )
        for i in range(2)
    ]
    assert all(r.verified for r in runs)
    store = smm_core.PostgresBundleStore.connect(database, trusted)
    assert store.url == database and store.workspaces() == [WS]
    listed = store.list(WS)
    assert [b["bundleId"] for b in listed] == [r.bundle_id for r in runs]
    assert store.head(WS) == store.get(runs[1].bundle_id) == runs[1].envelope
    first = store.list_page(WS, limit=1)
    assert [b["bundleId"] for b in first["bundles"]] == [runs[0].bundle_id]
    assert first["next"] == runs[0].bundle_id
    last = store.list_page(WS, after=first["next"], limit=1)
    assert [b["bundleId"] for b in last["bundles"]] == [runs[1].bundle_id] and last["next"] is None
    second = smm_core.verify_bundle(runs[1].envelope, trusted)
    assert second.verified
    assert store.history(runs[0].bundle_id)[0]["event"] == "stored"
    # The books are in the same database: the job once.
    assert smm_core.UsageLedger.connect(database).usage(WS, "tokens", NOW) == 5770
    # A store object, with a ledger given.
    third = smm_core.run(
        EX / "workspace.icblabs.v2.json",
        store=store,
        key=key,
        ledger=database,
        now="2025-09-01T13:00:00Z",
    )
    assert third.verified and store.head(WS) == third.envelope
    # Without the key a shared store cannot be signed for; a reader
    # without keys reads and never writes.
    with pytest.raises(smm_core.ValidationError):
        smm_core.run(EX / "workspace.icblabs.v2.json", store=database, now=NOW)
    reader = smm_core.PostgresBundleStore.connect(database)
    assert reader.get(runs[0].bundle_id) == runs[0].envelope
    with pytest.raises(smm_core.StorageError):
        reader.put(runs[0].envelope)
    # A stale chain link is a conflict (chain to the new head and sign again).
    with pytest.raises(smm_core.BundleConflictError):
        store.put_next(_rechained(runs[0], key))
    secret = "hunter2-" + uuid.uuid4().hex[:6]
    with pytest.raises(smm_core.StorageError) as e:
        smm_core.PostgresBundleStore.connect(unreachable(secret), trusted)
    assert secret not in str(e.value) and secret not in repr(e.value)
    with_pw = database.replace("smm@", f"smm:{secret}@", 1)
    assert secret not in repr(smm_core.PostgresBundleStore.connect(with_pw, trusted))


def _rechained(run, key):
    """The bundle of `run` re-made to chain to nothing (a second first
    bundle of the workspace: a fork the store refuses)."""
    import base64
    import json

    env = json.loads(run.envelope)
    bundle = json.loads(base64.b64decode(env["payload"]))
    bundle.pop("previousBundleRef", None)
    bundle["createdAt"] = "2025-09-02T00:00:00Z"
    return smm_core.sign_bundle(bundle, key)


def test_c_opens_the_postgres_store_and_runs_on_it(database, tmp_path):
    lib = c_lib()
    P = ctypes.POINTER
    lib.smm_local_signer_from_key_file.argtypes = [ctypes.c_char_p, ctypes.c_int32, P(ctypes.c_void_p)]
    lib.smm_local_signer_from_key_file.restype = ctypes.c_uint32
    lib.smm_run_json.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_uint32, P(ctypes.c_void_p)]
    lib.smm_run_json.restype = ctypes.c_uint32
    lib.smm_store_workspaces_json.restype = ctypes.c_uint32
    lib.smm_store_workspaces_json.argtypes = [ctypes.c_void_p, P(ctypes.c_void_p)]
    lib.smm_signer_free.argtypes = [ctypes.c_void_p]

    def take(p):
        text = ctypes.string_at(p).decode()
        lib.smm_string_free(p)
        return text

    signer = ctypes.c_void_p()
    key = tmp_path / "c-key.pem"
    assert lib.smm_local_signer_from_key_file(str(key).encode(), 1, ctypes.byref(signer)) == 0
    import json

    inputs = {
        "contract": json.loads((EX / "workspace.icblabs.v2.json").read_text()),
        "agentRun": json.loads((EX / "agent-run.research.json").read_text()),
        "now": NOW,
    }
    out = ctypes.c_void_p()
    status = lib.smm_run_json(json.dumps(inputs).encode(), database.encode(), signer, None, None, 0,
                              ctypes.byref(out))
    assert status == 0, take(lib.smm_last_error_json())
    result = json.loads(take(out))
    # Without a signer a shared store is refused, typed.
    status = lib.smm_run_json(json.dumps(inputs).encode(), database.encode(), None, None, None, 0,
                              ctypes.byref(out))
    assert status != 0 and "key" in take(lib.smm_last_error_json())
    lib.smm_signer_free(signer)
    pub = smm_core.LocalSigner.from_pem("k", key.read_text()).public_key_pem
    keys = json.dumps([{"keyId": result["verification"]["keyId"], "publicKey": pub}])
    store = ctypes.c_void_p()
    assert lib.smm_pg_store_open(database.encode(), keys.encode(), ctypes.byref(store)) == 0
    assert lib.smm_store_workspaces_json(store, ctypes.byref(out)) == 0
    assert json.loads(take(out)) == [WS]
    assert lib.smm_store_head(store, WS.encode(), ctypes.byref(out)) == 0
    assert take(out) == result["envelope"]
    lib.smm_store_list_page_json.restype = ctypes.c_uint32
    lib.smm_store_list_page_json.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                             ctypes.c_size_t, P(ctypes.c_void_p)]
    assert lib.smm_store_list_page_json(store, WS.encode(), None, 1, ctypes.byref(out)) == 0
    page = json.loads(take(out))
    assert [b["bundleId"] for b in page["bundles"]] == [result["bundleId"]] and page["next"] is None
    status = lib.smm_store_list_page_json(store, WS.encode(), b"sha256:zz", 1, ctypes.byref(out))
    assert lib.smm_status_name(status).decode() == "SMM_INVALID_INPUT"
    lib.smm_store_free(store)
    assert lib.smm_status_name(lib.smm_pg_store_open(b"/tmp/not-a-url", None, ctypes.byref(store))).decode() == (
        "SMM_INVALID_INPUT"
    )


def test_a_head_naming_another_workspaces_bundle_stops_the_run(database, tmp_path):
    """The chain head is a row beside the evidence, not signed. One made
    by hand to name a verified bundle of another workspace is refused
    (the bundle says whose it is): the run stops before anything is spent,
    from Python and from C, instead of chaining the workspace's next bundle
    into another workspace's chain."""
    import base64
    import json

    key = smm_core.LocalSigner.generate("k")
    trusted = {key.key_id: key.public_key_pem}
    common = dict(campaign=EX / "campaign.icblabs.json", agent_run=EX / "agent-run.research.json",
                  store=database, key=key, ledger=database)
    first = smm_core.run(EX / "workspace.icblabs.v2.json", now=NOW, **common)
    assert first.verified
    store = smm_core.PostgresBundleStore.connect(database, trusted)
    bundle = json.loads(base64.b64decode(json.loads(first.envelope)["payload"]))
    bundle["workspaceId"] = "ws-other"
    bundle["createdAt"] = "2025-09-01T12:30:00Z"
    other = store.put(smm_core.sign_bundle(bundle, key))
    # The schema refuses a head row rewritten by hand (it is never deleted
    # and starts empty): a role that can turn the triggers off is needed.
    hand = (f"DELETE FROM chain_heads WHERE workspace_id = '{WS}'; "
            f"INSERT INTO chain_heads (workspace_id, head_bundle_id) VALUES ('{WS}', '{other}')")
    refused = subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", database, "-c", hand],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "append-only" in refused.stderr, refused.stderr
    subprocess.run(
        ["psql", "-q", database, "-c", "SET session_replication_role = replica; " + hand],
        check=True,
    )
    ledger = smm_core.UsageLedger.connect(database)
    spent = ledger.usage(WS, "tokens", NOW)
    with pytest.raises(smm_core.CorruptBundleError, match="names a bundle of workspace"):
        store.head(WS)
    with pytest.raises(smm_core.CorruptBundleError, match="names a bundle of workspace"):
        smm_core.run(EX / "workspace.icblabs.v2.json", now="2025-09-01T13:00:00Z", **common)
    assert ledger.usage(WS, "tokens", NOW) == spent
    assert [b["bundleId"] for b in store.list(WS)] == [first.bundle_id]
    lib = c_lib()
    keys = json.dumps([{"keyId": key.key_id, "publicKey": key.public_key_pem}])
    c_store, out = ctypes.c_void_p(), ctypes.c_void_p()
    assert lib.smm_pg_store_open(database.encode(), keys.encode(), ctypes.byref(c_store)) == 0
    status = lib.smm_store_head(c_store, WS.encode(), ctypes.byref(out))
    assert lib.smm_status_name(status).decode() == "SMM_CORRUPT_BUNDLE"
    p = lib.smm_last_error_json()
    error = ctypes.string_at(p).decode()
    lib.smm_string_free(p)
    assert "names a bundle of workspace" in error
    lib.smm_store_free(c_store)


def test_a_rolled_back_head_stops_the_run(database, tmp_path):
    """A chain head moved back to an older bundle (the schema refuses it;
    here a superuser turns the triggers off) is caught before anything is
    spent: the store names the bundle that already follows it, from Python
    and from C, and the chain stays linear."""
    key = smm_core.LocalSigner.generate("k")
    trusted = {key.key_id: key.public_key_pem}
    common = dict(campaign=EX / "campaign.icblabs.json", agent_run=EX / "agent-run.research.json",
                  store=database, key=key, ledger=database)
    first = smm_core.run(EX / "workspace.icblabs.v2.json", now=NOW, **common)
    second = smm_core.run(EX / "workspace.icblabs.v2.json", now="2025-09-01T13:00:00Z", **common)
    assert first.verified and second.verified
    subprocess.run(
        ["psql", "-q", database, "-c",
         "SET session_replication_role = replica; "
         f"DELETE FROM chain_heads WHERE workspace_id = '{WS}'; "
         f"INSERT INTO chain_heads (workspace_id, head_bundle_id) VALUES ('{WS}', '{first.bundle_id}')"],
        check=True,
    )
    store = smm_core.PostgresBundleStore.connect(database, trusted)
    with pytest.raises(smm_core.CorruptBundleError, match="rolled back"):
        store.head(WS)
    ledger = smm_core.UsageLedger.connect(database)
    spent = ledger.usage(WS, "tokens", NOW)
    with pytest.raises(smm_core.CorruptBundleError, match=second.bundle_id):
        smm_core.run(EX / "workspace.icblabs.v2.json", now="2025-09-01T14:00:00Z", **common)
    assert ledger.usage(WS, "tokens", NOW) == spent
    assert [b["bundleId"] for b in store.list(WS)] == [first.bundle_id, second.bundle_id]
    c = c_store_head(database, key)
    if c is not None:
        assert c[0] == "SMM_CORRUPT_BUNDLE" and "rolled back" in c[1], c
