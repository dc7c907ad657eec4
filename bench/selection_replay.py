"""Cheaper auto-selections replayed against a saved selection check (issue 20 item 4).

A `bench quality --selection-check` run saved, for every case, the truth PSNR of every
auto-selection candidate fused at full resolution. A cheaper selection (fewer epochs, fewer
ADMM iterations, a smaller crop of the reduced pair) changes only the reduced-pair scores, so
it can be judged by running the selection alone and looking up the truth of what it picks:

    python -m bench.selection_replay --from bench/reference/selection_check_512_20261206.json \\
        --variant today --variant epochs=0.1 --variant iterations=100 --variant side=16 --jobs 2

Variants: `today` (the engine's constants), or comma-joined changes of
`epochs=F` (SELECT_EPOCH_FRACTION), `iterations=N` (the candidates' refinement ADMM
iterations), `side=S` (fuse.MAX_REDUCED_SIDE: a centre crop of S x S reduced LR pixels). One torch
thread per worker, as the saved bench.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from .common import default_json, machine_info, run_cases, table, write_json


def parse_variant(text: str) -> dict:
    if text == "today":
        return {}
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key not in ("epochs", "iterations", "side"):
            raise SystemExit(f"error: unknown variant key {key!r} in {text!r}; allowed: epochs, iterations, side")
        out[key] = float(value) if key == "epochs" else int(value)
    return out


def run_case(task: dict) -> dict:
    """Every variant's selection on one saved case: chosen label, reduced PSNRs, seconds."""
    from spectramorph_engine import FusionConfig
    from spectramorph_engine.run import fuse, selection
    from spectramorph_engine.run.prepare import prepare_inputs
    from spectramorph_engine.run.results import FusionInputs
    from .quality import case_config
    from .scenes import scene
    truth, wl = scene(task["scene"], task["size"])
    config = FusionConfig(**case_config(task["scene"], task["psf"], task["ratio"], task["bands"], task["seed"],
                                        task["workdir"]))
    prep = prepare_inputs(config, FusionInputs(truth=truth, wavelengths=wl))
    saved = (selection.SELECT_EPOCH_FRACTION, fuse.MAX_REDUCED_SIDE, fuse.fuse_with_method)
    out = {k: task[k] for k in ("scene", "psf", "ratio", "bands", "seed")}
    out["variants"] = {}
    for name, changes in task["variants"].items():
        try:
            selection.SELECT_EPOCH_FRACTION = changes.get("epochs", saved[0])
            fuse.MAX_REDUCED_SIDE = changes.get("side", saved[1])
            if "iterations" in changes:
                n = changes["iterations"]
                fuse.fuse_with_method = lambda cfg, *a, n=n, **k: saved[2](cfg.replace(refine_iterations=n), *a, **k)
            t0 = time.perf_counter()
            sel = selection.select_settings(config, prep)
            out["variants"][name] = {"chosen": sel["chosen"], "seconds": time.perf_counter() - t0,
                                     "reduced_psnr": {c["label"]: c["PSNR"] for c in sel["candidates"]}}
        finally:
            selection.SELECT_EPOCH_FRACTION, fuse.MAX_REDUCED_SIDE, fuse.fuse_with_method = saved
    return out


def _key(case) -> tuple:
    return tuple(case[k] for k in ("scene", "psf", "ratio", "bands", "seed"))


def render(saved: dict, cases: list, variants: list) -> str:
    truth = {_key(c): c["selection_check"] for c in saved["cases"]}
    rows = []
    for name in variants:
        secs, picked, same, loss_oracle, vs_saved = [], [], 0, [], []
        for c in cases:
            v = c["variants"][name]
            t = truth[_key(c)]
            saved_pick = next(s for s in saved["cases"] if _key(s) == _key(c))["methods"]["default"]["selection"]["chosen"]
            secs.append(v["seconds"])
            picked.append(t[v["chosen"]])
            same += v["chosen"] == saved_pick
            loss_oracle.append(max(t.values()) - t[v["chosen"]])
            vs_saved.append(t[v["chosen"]] - t[saved_pick])
        n = len(cases)
        rows.append([name, f"{sum(secs) / n:.1f}", f"{same}/{n}", f"{sum(picked) / n:.3f}",
                     f"{sum(loss_oracle) / n:.3f}", f"{min(vs_saved):+.2f} / {max(vs_saved):+.2f}"])
    return table(["variant", "selection s (mean)", "same pick as saved", "truth PSNR of pick (mean)",
                  "below the best candidate (mean dB)", "vs saved pick (min / max dB)"], rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.selection_replay", description=__doc__.split("\n")[0])
    p.add_argument("--from", dest="source", required=True, help="a `bench quality --selection-check` JSON")
    p.add_argument("--variant", action="append", default=None, help="today, or epochs=F,iterations=N,side=S")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="only the first N cases (a smoke run)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    saved = json.loads(open(args.source).read())
    if not any("selection_check" in c for c in saved["cases"]):
        raise SystemExit(f"error: {args.source} has no selection_check results (run quality with --selection-check)")
    variants = {v: parse_variant(v) for v in (args.variant or ["today"])}
    size = saved["grid"].get("library_size", 128)
    import tempfile
    workdir = tempfile.mkdtemp(prefix="sm-bench-replay-")
    tasks = [{**{k: c[k] for k in ("scene", "psf", "ratio", "bands", "seed")}, "size": size, "workdir": workdir,
              "variants": variants} for c in saved["cases"] if "selection_check" in c][:args.limit]
    t0 = time.perf_counter()
    cases = run_cases(tasks, run_case, args.jobs,
                      lambda i, n, c: print(f"[replay] {i}/{n} {c['scene']} {c['psf']} seed {c['seed']}: "
                                            + ", ".join(f"{k} -> {v['chosen']} ({v['seconds']:.1f} s)"
                                                        for k, v in c["variants"].items()), file=sys.stderr))
    text = render(saved, cases, list(variants))
    print(f"{len(cases)} cases of {args.source}, one torch thread per worker, {args.jobs} worker(s)")
    print(text)
    write_json(args.json or default_json("selection_replay"),
               {"machine": machine_info(), "source": args.source, "variants": variants, "cases": cases,
                "total_s": time.perf_counter() - t0, "table": text})
    return 0


if __name__ == "__main__":
    sys.exit(main())
