"""Policy decisions from Python (issue 20): `PolicyBundle.evaluate(dict)`,
which validates the whole input on every call, against a prepared
`smm_core.PolicyInput` validated once; 1 thread against 2; and the cost per
workflow step at 10, 100 and 1,000 steps.

    .venv/bin/python benches/python/policy_input.py [REPEATS]

Every figure is the median of REPEATS timed calls (after a warm-up), the
sides alternating in rounds so that the machine's noise hits both alike.
"""

import copy
import json
import pathlib
import statistics
import sys
import threading
import time

import smm_core

ROOT = pathlib.Path(__file__).resolve().parents[2]
INPUT = json.loads((ROOT / "examples" / "policy-input.icblabs.json").read_text())


def per_call(f, repeats):
    f()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def with_steps(n):
    doc = copy.deepcopy(INPUT)
    base = doc["workflow"]
    doc["workflow"] = []
    for i in range(n):
        step = copy.deepcopy(base[i % len(base)])
        step["id"] = f"{step['id']}_{i}"
        step["estimatedCost"] = 1
        doc["workflow"].append(step)
    return doc


def rate(bundle, prepared, threads, seconds=2.0, engine="vm"):
    """Decisions per second from `threads` threads, each deciding on its own
    prepared input (as concurrent requests would)."""
    inputs = [smm_core.PolicyInput(prepared.to_dict()) for _ in range(threads)]
    counts = [0] * threads
    stop = threading.Event()

    def work(k):
        n = 0
        while not stop.is_set():
            bundle.evaluate(inputs[k], engine=engine)
            n += 1
        counts[k] = n

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join()
    return sum(counts) / seconds


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    bundle = smm_core.PolicyBundle.default()
    prepared = smm_core.PolicyInput(INPUT)
    contract = smm_core.Contract.from_dict(INPUT["workspace"])
    rest = {k: v for k, v in INPUT.items() if k != "workspace"}
    assert bundle.evaluate(prepared) == bundle.evaluate(INPUT)
    native = bundle.evaluate(prepared, engine="native")
    assert native.deny == bundle.evaluate(prepared).deny and native.engine == "smm-native"
    dict_t, prep_t, native_t, around_t, make_t = [], [], [], [], []
    for _ in range(3):
        dict_t.append(per_call(lambda: bundle.evaluate(INPUT), repeats // 10))
        prep_t.append(per_call(lambda: bundle.evaluate(prepared), repeats))
        native_t.append(per_call(lambda: bundle.evaluate(prepared, engine="native"), repeats))
        make_t.append(per_call(lambda: smm_core.PolicyInput(INPUT), repeats // 10))
        around_t.append(per_call(lambda: smm_core.PolicyInput(rest, contract=contract), repeats // 10))
    us = lambda v: statistics.median(v) * 1e6  # noqa: E731
    print(f"evaluate(dict), validated every call   {us(dict_t):8.1f} us")
    print(f"evaluate(PolicyInput)                  {us(prep_t):8.1f} us   ({us(dict_t) / us(prep_t):.1f}x faster)")
    print(f"evaluate(PolicyInput, engine=native)   {us(native_t):8.1f} us   ({us(dict_t) / us(native_t):.1f}x faster)")
    print(f"PolicyInput(doc), once                 {us(make_t):8.1f} us")
    print(f"PolicyInput(rest, contract=Contract)   {us(around_t):8.1f} us")
    one = statistics.median(rate(bundle, prepared, 1) for _ in range(3))
    two = statistics.median(rate(bundle, prepared, 2) for _ in range(3))
    print(f"prepared decisions/s: 1 thread {one:,.0f}, 2 threads {two:,.0f} ({two / one:.2f}x)")
    one = statistics.median(rate(bundle, prepared, 1, engine="native") for _ in range(3))
    two = statistics.median(rate(bundle, prepared, 2, engine="native") for _ in range(3))
    print(f"native decisions/s:   1 thread {one:,.0f}, 2 threads {two:,.0f} ({two / one:.2f}x)")
    for engine in ("vm", "native"):
        for n in (10, 100, 1000):
            p = smm_core.PolicyInput(with_steps(n))
            t = per_call(lambda: bundle.evaluate(p, engine=engine), max(50, repeats // (n // 10)))
            print(f"{engine:6s} {n:5d} steps: {t * 1e6:9.1f} us a decision, {t * 1e6 / n:6.2f} us a step")


if __name__ == "__main__":
    main()
