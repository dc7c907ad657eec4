"""refine_tv_select's walk (run/tv_selection.downhill) replayed on choices that tried every
weight: would the walk have chosen the same, and with how many refinements?

    python -m bench quality --blind --methods default --set refine_tv_select=true --json choice.json
    python -m bench.tv_walk choice.json

Reports written before the walk (at 2696df8 and earlier) record the left-out bands' error at
every candidate weight; the walk's errors are the same numbers (the same refinements), so
replaying it on them gives exactly the choice the engine makes now. Cases whose record holds
fewer weights (made by the walk itself, or skipped) are left out.
"""
from __future__ import annotations

import argparse
import json
import sys

from .common import table


def replay(record: dict) -> tuple | None:
    """(chosen then, chosen by the walk, weights the walk refines, weights tried then) for a
    tv_selection record that tried every candidate; None for any other."""
    from spectramorph_engine.run.tv_selection import candidate_weights, downhill, nearest_tie
    configured = float(record["configured"])
    weights = candidate_weights(configured)
    errors = {float(w): e for w, e in (record.get("errors") or {}).items()}
    if record.get("skipped") or sorted(errors) != weights:
        return None
    walked = downhill(weights, weights.index(configured), errors.__getitem__)
    chosen = nearest_tie(walked, configured)
    return float(record["chosen"]), chosen, len(walked), len(weights)


def rows(report: dict) -> list:
    out = []
    for c in report.get("cases", []):
        record = (c.get("methods", {}).get("default") or {}).get("tv_selection")
        got = replay(record) if record else None
        if got is not None:
            out.append([c.get("scene"), c.get("setting") or f"r{c.get('ratio')} c{c.get('bands')}", c.get("seed"),
                        f"{got[0]:g}", f"{got[1]:g}", f"{got[2]} of {got[3]}"])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tv_walk", description=__doc__.split("\n")[0])
    p.add_argument("reports", nargs="+", help="bench JSON files run with --set refine_tv_select=true")
    args = p.parse_args(argv)
    found = [r for f in args.reports for r in rows(json.loads(open(f).read()))]
    if not found:
        raise SystemExit("error: no case records the left-out bands' error at every candidate weight")
    print(table(["scene", "setting", "seed", "chosen then", "walk chooses", "weights refined"], found))
    same = sum(r[3] == r[4] for r in found)
    refined = [int(r[5].split()[0]) for r in found]
    print(f"{len(found)} cases: the walk chooses the same weight in {same}; it refines {sum(refined) / len(found):.2f} "
          f"weights per left-out band on average instead of {found[0][5].split()[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
