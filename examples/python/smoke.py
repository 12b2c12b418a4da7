"""The design document's smoke test, in Python: contract, simulation,
policies, decision card, usage, a signed bundle stored and verified.

    python examples/python/smoke.py [STORE_DIR]

Run from anywhere; the inputs are the shipped examples. The same run as
`smm run` and the C example `examples/c/flow.c`: with the same key and
`now`, all three write the same envelope, byte for byte.
"""

import pathlib
import sys
import tempfile

import smm_core

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent
NOW = "2025-09-01T12:00:00Z"


def main() -> int:
    store = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(tempfile.mkdtemp(prefix="smm-smoke-"))
    result = smm_core.run(
        EXAMPLES / "workspace.icblabs.v2.json",
        campaign=EXAMPLES / "campaign.icblabs.json",
        agent_run=EXAMPLES / "agent-run.research.json",
        store=store,
        now=NOW,
    )
    r = result.report.readiness_score
    lo, hi = r.confidence_interval
    print(f"readiness {r.mean:.4f} [{lo:.4f}, {hi:.4f}]")
    card = result.to_dict()["decisionCard"]
    print(f"decision  {result.action}: {', '.join(card['reasonCodes']) or 'no reasons'}")
    usage = result.to_dict()["usage"]
    print(f"usage     job {usage['jobId']}: {usage['amounts']['tokens']} tokens")
    print(f"bundle    {result.bundle_id}")
    print("verified" if result.verified else "NOT VERIFIED")

    # A failing step names itself: the same contract a year and a half later.
    try:
        smm_core.run(EXAMPLES / "workspace.icblabs.v2.json", store=store, now="2027-01-01T00:00:00Z")
    except smm_core.ValidationError as e:
        print(f"expired contract stops at the {e.step} step: {e.pointer}")
    return 0 if result.verified else 1


if __name__ == "__main__":
    sys.exit(main())
