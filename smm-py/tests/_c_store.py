"""The C ABI through ctypes (over SMM_C_LIB) for the Python tests: the
declarations they share, and a store's head read from C, for the tests that
check a front door's answer is the same from Python and C."""

import ctypes
import json
import os


def declare(lib):
    """Declare on `lib` (libsmm through ctypes) the store functions and the
    status and error functions every C-side test uses; return it."""
    store_out = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    for opener in (lib.smm_store_open, lib.smm_pg_store_open):
        opener.argtypes = store_out
        opener.restype = ctypes.c_uint32
    lib.smm_store_head.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.smm_store_head.restype = ctypes.c_uint32
    lib.smm_store_free.argtypes = [ctypes.c_void_p]
    lib.smm_status_name.restype = ctypes.c_char_p
    lib.smm_status_name.argtypes = [ctypes.c_uint32]
    lib.smm_last_error_json.restype = ctypes.c_void_p
    lib.smm_string_free.argtypes = [ctypes.c_void_p]
    return lib


def c_store_head(path_or_url, signer):
    """Open the store at `path_or_url` (a directory or a postgresql:// URL)
    through `smm_store_open`, trusting `signer`'s key, ask for the head of
    ws-icblabs-0001, and return the status name and the last error (or
    None when SMM_C_LIB is not set: the test then checks Python alone)."""
    path = os.environ.get("SMM_C_LIB")
    if not path:
        return None
    lib = declare(ctypes.CDLL(path))
    keys = json.dumps([{"keyId": signer.key_id, "publicKey": signer.public_key_pem}])
    store, out = ctypes.c_void_p(), ctypes.c_void_p()
    assert lib.smm_store_open(str(path_or_url).encode(), keys.encode(), ctypes.byref(store)) == 0
    try:
        status = lib.smm_status_name(lib.smm_store_head(store, b"ws-icblabs-0001", ctypes.byref(out)))
        p = lib.smm_last_error_json()
        error = ctypes.string_at(p).decode()
        lib.smm_string_free(p)
        return status.decode(), error
    finally:
        lib.smm_store_free(store)
