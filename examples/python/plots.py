"""The pictures a data team looks at, made from the shipped example
(notebook-style: run it whole, or cell by cell in Jupyter).

    python examples/python/plots.py [OUT_DIR]

Writes readiness.png, readiness.svg, metrics.png and sweep.png to OUT_DIR
(default: a temporary directory, printed). Needs matplotlib
(`pip install "smm-core[plot]"`); renders headless.
"""

import json
import pathlib
import sys
import tempfile

import smm_core
from smm_core import plot

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent
request = json.loads((EXAMPLES / "icblabs-seed42.request.json").read_text())
out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(tempfile.mkdtemp(prefix="smm-plots-"))
out.mkdir(parents=True, exist_ok=True)

# %% One run with its samples: the distribution and the breakdown.
report = smm_core.simulate(request["workspaceContext"], request["workflowJson"], iterations=100_000, seed=42,
                           keep_samples=True)
counts, edges = report.histogram(40)          # numpy, for any other plotting library
plot.readiness(report).savefig(out / "readiness.png", dpi=120)
plot.readiness(report).savefig(out / "readiness.svg")
plot.metrics(report).savefig(out / "metrics.png", dpi=120)

# %% A sweep: readiness against the hard cap, one line per risk profile.
grid = {
    "/workspaceContext/budget/hardCap": [1500, 2500, 4000, 8000, 16000],
    "/workspaceContext/riskProfile": ["low", "medium", "high"],
}
rows = smm_core.sweep(request, grid, iterations=20_000, seed=42, early_termination=False)
plot.sweep(rows, x="/workspaceContext/budget/hardCap", by="/workspaceContext/riskProfile").savefig(
    out / "sweep.png", dpi=120
)

print(out)
