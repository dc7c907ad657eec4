"""README's blind table from a blind bench report (its JSON), so the table is reproduced by the
bench's own command and this one, not by hand:

    python -m bench quality --blind --seeds 1,2,3 --jobs 2 --json blind.json
    python -m bench.blind_markdown blind.json [--rerun part.json ...]

`--rerun`: reports of a part of the grid run again (a later commit that changes those cases
only); their methods replace the same (scene, setting, seed)'s in the first report.

One row per (scene, setting): mean PSNR / SAM over the seeds of the default, blind GLP-HS and
HySure, bicubic; the default given the true PSF; the paired mean of default minus the better
blind classical method per seed; the default's PSF error (kernel / through the r x r area mean).
The best of the three fusions is in bold. The count of settings where the default is at least
both classical methods (paired means) is printed under the table.
"""
from __future__ import annotations

import argparse
import json
import sys

from .blind import _best_classical, _groups, _m, _paired, _stats

SCENE_NAMES = {"usgs-a": "USGS mixture", "usgs-b": "second USGS mixture", "holdout": "held-out scene",
               "urban": "Urban (real)", "urban-m": "Urban mirrored (real)"}
FUSIONS = ("default", "glp", "hysure")


def _cell(cases, method, bold=False) -> str:
    psnr, sam = _stats([_m(x, method, "PSNR") for x in cases])[0], _stats([_m(x, method, "SAM") for x in cases])[0]
    if psnr is None:
        return "-"
    text = f"{psnr:.2f}"
    return (f"**{text}**" if bold else text) + (f" / {sam:.2f}" if sam is not None else "")


def rows(report: dict) -> tuple:
    """(markdown lines, settings where the default >= both blind classical methods, settings)."""
    lines = ["| scene | setting | default | GLP-HS | HySure | bicubic | true PSF | vs best | PSF error |",
             "| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: |"]
    met = total = 0
    for (scene_, setting), cases in _groups(report).items():
        means = {m: _stats([_m(x, m, "PSNR") for x in cases])[0] for m in FUSIONS}
        best = max((m for m in FUSIONS if means[m] is not None), key=lambda m: means[m], default=None)
        diffs = [_m(x, "default", "PSNR") - _best_classical(x) for x in cases
                 if _m(x, "default", "PSNR") is not None and _best_classical(x) is not None]
        vs_best = _stats(diffs)[0]
        true_psf = _stats([_m(x, "true-psf", "PSNR") for x in cases])[0]
        k_err = _stats([_m(x, "default", "psf_error") for x in cases])[0]
        t_err = _stats([_m(x, "default", "transfer_error") for x in cases])[0]
        dh, dg = _stats(_paired(cases, "default", "hysure"))[0], _stats(_paired(cases, "default", "glp"))[0]
        if dh is not None and dg is not None:
            total += 1
            met += dh >= 0 and dg >= 0
        lines.append("| " + " | ".join([
            SCENE_NAMES.get(scene_, scene_), setting,
            *(_cell(cases, m, bold=m == best) for m in FUSIONS), _cell(cases, "bicubic"),
            "-" if true_psf is None else f"{true_psf:.2f}",
            "-" if vs_best is None else f"{vs_best:+.2f}",
            "-" if k_err is None else f"{k_err:.2f} / {t_err:.3f}"]) + " |")
    return lines, met, total


def merged(report: dict, reruns: list) -> dict:
    """`report` with each rerun case's methods in place of the same (scene, setting, seed)'s."""
    again = {(c["scene"], c["setting"], c["seed"]): c["methods"] for r in reruns for c in r["cases"]}
    cases = [{**c, "methods": {**c["methods"], **again.get((c["scene"], c["setting"], c["seed"]), {})}}
             for c in report["cases"]]
    return {**report, "cases": cases}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.blind_markdown", description=__doc__.splitlines()[0])
    p.add_argument("report", help="JSON written by python -m bench quality --blind --json ...")
    p.add_argument("--rerun", nargs="*", default=[], help="reports of cases run again: they replace the report's")
    args = p.parse_args(argv)
    with open(args.report) as f:
        report = json.load(f)
    reruns = []
    for path in args.rerun:
        with open(path) as f:
            reruns.append(json.load(f))
    report = merged(report, reruns)
    lines, met, total = rows(report)
    print("\n".join(lines))
    print(f"\nThe default is at least both blind classical methods in {met} of {total} settings (paired means over "
          f"seeds {report['grid']['seeds']}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
