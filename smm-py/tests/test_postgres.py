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
    lib = ctypes.CDLL(path)
    lib.smm_ledger_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.smm_ledger_connect.restype = ctypes.c_uint32
    lib.smm_ledger_used.argtypes = [ctypes.c_void_p] + [ctypes.c_char_p] * 4 + [ctypes.POINTER(ctypes.c_uint64)]
    lib.smm_ledger_used.restype = ctypes.c_uint32
    lib.smm_ledger_free.argtypes = [ctypes.c_void_p]
    lib.smm_status_name.restype = ctypes.c_char_p
    lib.smm_status_name.argtypes = [ctypes.c_uint32]
    lib.smm_last_error_json.restype = ctypes.c_void_p
    lib.smm_string_free.argtypes = [ctypes.c_void_p]
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
