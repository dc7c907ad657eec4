"""Cheaper auto-selections replayed against a saved selection check (issue 20 item 4).

A `bench quality --selection-check` run saved, for every case, the truth PSNR of every
auto-selection candidate fused at full resolution. A cheaper selection (fewer epochs, fewer
ADMM iterations, a smaller crop of the reduced pair) changes only the reduced-pair scores, so
it can be judged by running the selection alone and looking up the truth of what it picks:

    python -m bench.selection_replay --from bench/reference/selection_check_512_20261206.json \\
        --variant today --variant epochs=0.1 --variant iterations=100 --variant side=16 --jobs 2

Variants: `today` (the engine's constants), or comma-joined changes of
`epochs=F` (SELECT_EPOCH_FRACTION), `iterations=N` (the candidates' refinement ADMM
iterations), `side=S` (fuse.MAX_REDUCED_SIDE: a centre crop of S x S reduced LR pixels),
`pixels=N` (the candidates' max_training_pixels), `drop=KINDS` (candidates left out, `+`-joined
of k-, k+, prior, endmembers: K - 2, K + 2, the prior flipped, the other endmember method). One
torch thread per worker, as the saved bench.

Without `--from`, the selections run on fresh cases (`--scenes`, `--psfs`, `--seeds`, `--size`,
ratio 4 / 4 bands) that have no saved truth: each variant is compared with the first one (same
pick, and the reduced-pair PSNR of its pick). This is how a change is judged at the sizes where
the crop and the training sample bite (1024^2 and up), too big for a selection check:

    python -m bench.selection_replay --scenes usgs-a,usgs-b,holdout --psfs gaussian,moffat --seeds 1 \
        --size 1024 --variant today --variant pixels=1024 --variant drop=k-+endmembers --jobs 1

`--set KEY=VALUE` pins a config key to what the saved run had: the saved 512^2 check ran when
`endmember_method` defaulted to nmf, so its candidates' truth is only valid with
`--set endmember_method=nmf` (a pick whose truth the saved run lacks stops the replay).
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
        if key not in ("epochs", "iterations", "side", "pixels", "drop"):
            raise SystemExit(f"error: unknown variant key {key!r} in {text!r}; allowed: epochs, iterations, side, "
                             f"pixels, drop")
        if key == "drop":
            kinds = value.split("+")
            unknown = sorted(set(kinds) - set(DROP_KINDS))
            if unknown:
                raise SystemExit(f"error: unknown candidate kind(s) {unknown} in {text!r}; allowed: "
                                 f"{', '.join(DROP_KINDS)}")
            out[key] = kinds
        else:
            out[key] = float(value) if key == "epochs" else int(value)
    return out


DROP_KINDS = ("k-", "k+", "prior", "endmembers")


def _candidate_kind(label: str, k: int, step: int) -> str:
    if label == f"K {k - step}":
        return "k-"
    if label == f"K {k + step}":
        return "k+"
    if label.startswith("prior"):
        return "prior"
    return "endmembers" if label.startswith("endmembers") else label


def _without(candidate_changes, kinds):
    """selection.candidate_changes without the candidates of `kinds`."""
    from spectramorph_engine.run import selection

    def changes(config, msi_bands, max_k, ratio):
        return [c for c in candidate_changes(config, msi_bands, max_k, ratio)
                if _candidate_kind(c[0], config.num_endmembers, selection.K_STEP) not in kinds]
    return changes


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
                                        task["workdir"]), **task.get("settings", {}))
    prep = prepare_inputs(config, FusionInputs(truth=truth, wavelengths=wl))
    saved = (selection.SELECT_EPOCH_FRACTION, fuse.MAX_REDUCED_SIDE, fuse.fuse_with_method,
             selection.candidate_changes)
    out = {k: task[k] for k in ("scene", "psf", "ratio", "bands", "seed")}
    out["variants"] = {}
    for name, changes in task["variants"].items():
        try:
            selection.SELECT_EPOCH_FRACTION = changes.get("epochs", saved[0])
            fuse.MAX_REDUCED_SIDE = changes.get("side", saved[1])
            trial = {}
            if "iterations" in changes:
                trial["refine_iterations"] = changes["iterations"]
            if "pixels" in changes:
                trial["max_training_pixels"] = changes["pixels"]
            if trial:
                fuse.fuse_with_method = lambda cfg, *a, t=trial, **k: saved[2](cfg.replace(**t), *a, **k)
            if "drop" in changes:
                selection.candidate_changes = _without(saved[3], changes["drop"])
            t0 = time.perf_counter()
            sel = selection.select_settings(config, prep)
            out["variants"][name] = {"chosen": sel["chosen"], "seconds": time.perf_counter() - t0,
                                     "reduced_psnr": {c["label"]: c["PSNR"] for c in sel["candidates"]}}
        finally:
            (selection.SELECT_EPOCH_FRACTION, fuse.MAX_REDUCED_SIDE, fuse.fuse_with_method,
             selection.candidate_changes) = saved
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
            if v["chosen"] not in t:
                raise SystemExit(f"error: variant {name} picked {v['chosen']!r} in {_key(c)}, which the saved run did "
                                 f"not score against the truth (its candidates: {', '.join(t)}); pin the saved "
                                 f"run's settings with --set")
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


def render_fresh(cases: list, variants: list) -> str:
    """Each variant against the first: same pick, reduced-pair PSNR of the pick (no truth)."""
    first = variants[0]
    rows = []
    for name in variants:
        secs = [c["variants"][name]["seconds"] for c in cases]
        same = sum(c["variants"][name]["chosen"] == c["variants"][first]["chosen"] for c in cases)
        diff = [c["variants"][name]["reduced_psnr"][c["variants"][name]["chosen"]]
                - c["variants"][first]["reduced_psnr"][c["variants"][first]["chosen"]] for c in cases]
        picks = ", ".join(sorted({c["variants"][name]["chosen"] for c in cases}))
        n = len(cases)
        rows.append([name, f"{sum(secs) / n:.1f}", f"{same}/{n}", f"{sum(diff) / n:+.2f}",
                     f"{min(diff):+.2f} / {max(diff):+.2f}", picks])
    return table(["variant", "selection s (mean)", f"same pick as {first}", "reduced PSNR of pick vs first (mean dB)",
                  "min / max", "picks"], rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.selection_replay", description=__doc__.split("\n")[0])
    p.add_argument("--from", dest="source", default=None,
                   help="a `bench quality --selection-check` JSON (without it: fresh cases, no truth)")
    p.add_argument("--scenes", default="usgs-a,usgs-b,holdout", help="fresh cases: scenes")
    p.add_argument("--psfs", default="gaussian,moffat", help="fresh cases: PSFs")
    p.add_argument("--seeds", default="1", help="fresh cases: seeds")
    p.add_argument("--size", type=int, default=1024, help="fresh cases: library scene side")
    p.add_argument("--variant", action="append", default=None, help="today, or comma-joined epochs=F, iterations=N, side=S, pixels=N, drop=KIND+KIND")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="a config key as the saved run had it (e.g. endmember_method=nmf)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="only the first N cases (a smoke run)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    variants = {v: parse_variant(v) for v in (args.variant or ["today"])}
    from spectramorph_engine.run.config import parse_override
    settings = dict(parse_override(text) for text in args.settings)
    import tempfile
    workdir = tempfile.mkdtemp(prefix="sm-bench-replay-")
    if args.source:
        saved = json.loads(open(args.source).read())
        if not any("selection_check" in c for c in saved["cases"]):
            raise SystemExit(f"error: {args.source} has no selection_check results (run quality with --selection-check)")
        size = saved["grid"].get("library_size", 128)
        keys = [{k: c[k] for k in ("scene", "psf", "ratio", "bands", "seed")}
                for c in saved["cases"] if "selection_check" in c]
    else:
        saved, size = None, args.size
        keys = [{"scene": sc, "psf": psf, "ratio": 4, "bands": 4, "seed": int(seed)}
                for sc in args.scenes.split(",") for psf in args.psfs.split(",") for seed in args.seeds.split(",")]
    tasks = [{**key, "size": size, "workdir": workdir, "variants": variants, "settings": settings}
             for key in keys][:args.limit]
    t0 = time.perf_counter()
    cases = run_cases(tasks, run_case, args.jobs,
                      lambda i, n, c: print(f"[replay] {i}/{n} {c['scene']} {c['psf']} seed {c['seed']}: "
                                            + ", ".join(f"{k} -> {v['chosen']} ({v['seconds']:.1f} s)"
                                                        for k, v in c["variants"].items()), file=sys.stderr))
    if saved is not None:
        text = render(saved, cases, list(variants))
        print(f"{len(cases)} cases of {args.source}, one torch thread per worker, {args.jobs} worker(s)")
    else:
        text = render_fresh(cases, list(variants))
        print(f"{len(cases)} fresh cases at {size}^2 (r4, 4 bands), one torch thread per worker, {args.jobs} worker(s)")
    print(text)
    write_json(args.json or default_json("selection_replay"),
               {"machine": machine_info(), "source": args.source, "size": size, "variants": variants, "settings": settings,
                "cases": cases,
                "total_s": time.perf_counter() - t0, "table": text})
    return 0


if __name__ == "__main__":
    sys.exit(main())
