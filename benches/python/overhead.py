"""Cost of the Python front door: smm_core.simulate_request vs the same run
from Rust (benches/src/bin/time-simulate.rs), both measured in this run.

    .venv/bin/python benches/python/overhead.py [ITERATIONS] [REPEATS] [ROUNDS]
"""

import json
import pathlib
import statistics
import subprocess
import sys
import time

import smm_core

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    req = json.loads((ROOT / "examples" / "icblabs-seed42.request.json").read_text())
    req["simulationConfig"]["iterations"] = iterations
    req["simulationConfig"]["enableEarlyTermination"] = False
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "smm-benches", "--bin", "time-simulate"],
                   cwd=ROOT, check=True)
    binary = ROOT / "target" / "release" / "time-simulate"
    smm_core.simulate_request(req)  # warm up the pool and the allocator, as the Rust side does
    rust_medians, rust_bests, times = [], [], []
    # Alternate the two sides in rounds so that machine noise hits both alike.
    for _ in range(rounds):
        out = subprocess.run([str(binary), str(iterations), str(repeats)],
                             check=True, capture_output=True, text=True).stdout
        rust = dict(line.split() for line in out.strip().splitlines())
        rust_medians.append(float(rust["median"]))
        rust_bests.append(float(rust["best"]))
        for _ in range(repeats):
            t = time.perf_counter()
            smm_core.simulate_request(req)
            times.append(time.perf_counter() - t)
    py_median, py_best = statistics.median(times), min(times)
    rs_median, rs_best = statistics.median(rust_medians), min(rust_bests)
    print(f"iterations {iterations}, {rounds} rounds of {repeats} repeats per side")
    print(f"rust   median {rs_median*1e3:.1f} ms  best {rs_best*1e3:.1f} ms")
    print(f"python median {py_median*1e3:.1f} ms  best {py_best*1e3:.1f} ms")
    print(f"python/rust: median {py_median/rs_median:.3f}  best {py_best/rs_best:.3f}")


if __name__ == "__main__":
    main()
