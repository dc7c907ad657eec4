"""Two runs of the quality or the blind bench compared case by case: is a candidate default
(`--set KEY=VALUE`) at least as good as today's in every setting?

    python -m bench quality --methods default --json today.json
    python -m bench quality --methods default --set endmember_method=minvol --json candidate.json
    python -m bench.paired today.json candidate.json

Cases are paired on everything but the method (scene, PSF, ratio, bands, blind setting, seed);
a setting's row is the candidate - today PSNR (and SAM) of its cases, paired mean and range
over the seeds and PSF shapes. The verdict is the rule for a new default (bench/README.md):
no setting more than 0.1 dB below today's, paired mean.
"""
from __future__ import annotations

import argparse
import json
import sys

from .common import table

CASE_KEYS = ("scene", "psf", "ratio", "bands", "setting", "seed")
MARGIN_DB = 0.1


def _cases(report: dict, method: str) -> dict:
    out = {}
    for c in report["cases"]:
        m = c.get("methods", {}).get(method)
        if m and "PSNR" in m:
            out[tuple(c.get(k) for k in CASE_KEYS)] = m
    return out


def _group(key: tuple) -> tuple:
    """The row a case belongs to: its scene and setting (PSF shapes and seeds pooled)."""
    d = dict(zip(CASE_KEYS, key))
    return (d["scene"], d["setting"]) if d["setting"] is not None else (d["scene"], f"r{d['ratio']} c{d['bands']}")


def compare(today: dict, candidate: dict, method: str = "default") -> tuple:
    """(rows, worst paired mean, settings below the margin, cases paired)."""
    a, b = _cases(today, method), _cases(candidate, method)
    common = sorted(set(a) & set(b), key=str)
    groups: dict = {}
    for key in common:
        groups.setdefault(_group(key), []).append(key)
    rows, worst, below = [], float("inf"), []
    for g, keys in groups.items():
        d = [b[k]["PSNR"] - a[k]["PSNR"] for k in keys]
        s = [b[k]["SAM"] - a[k]["SAM"] for k in keys if "SAM" in a[k] and "SAM" in b[k]]
        mean = sum(d) / len(d)
        worst = min(worst, mean)
        if mean < -MARGIN_DB:
            below.append(g)
        rows.append([g[0], g[1], len(d), f"{sum(a[k]['PSNR'] for k in keys) / len(keys):.2f}",
                     f"{sum(b[k]['PSNR'] for k in keys) / len(keys):.2f}", f"{mean:+.3f}",
                     f"{min(d):+.2f} / {max(d):+.2f}", f"{sum(s) / len(s):+.3f}" if s else "-"])
    return rows, worst, below, len(common)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__.split("\n")[0])
    p.add_argument("today", help="the bench's JSON with today's default")
    p.add_argument("candidate", help="the bench's JSON with the candidate (--set ...)")
    p.add_argument("--method", default="default")
    args = p.parse_args(argv)
    today, cand = (json.loads(open(f).read()) for f in (args.today, args.candidate))
    rows, worst, below, n = compare(today, cand, args.method)
    if not n:
        raise SystemExit("error: no case of one file has a partner in the other (same scenes, settings, seeds?)")
    print(f"candidate {cand.get('default_overrides') or '(none)'} against today ({args.today} / {args.candidate}), "
          f"{n} paired cases; PSNR dB, SAM deg")
    print(table(["scene", "setting", "n", "today", "candidate", "paired mean", "min / max", "SAM paired mean"], rows))
    verdict = "MET" if not below else f"NOT MET in {len(below)}: " + ", ".join(f"{s} {t}" for s, t in below)
    print(f"worst setting {worst:+.3f} dB; no setting more than {MARGIN_DB} dB below today: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
