"""python -m bench sample: PSNR against training cost under max_training_pixels (issue 20 item 1).

The quality bench's 128 x 128 scenes have 1,024 LR pixels at ratio 4, so no cap worth having
changes them: this runs the library scenes bigger (256, 400 a side), ratio 4, 4 MSI bands,
auto-selection off (to isolate the cap; refinement on, the default), each cap beside no cap
on the same pair and seed, one torch thread, one case at a time. `--bands 1` (or 2) runs a pan
pair, where the coarse spectral prior is on at ratio 4: the network's first layer then has
C more inputs per pixel to learn from the sample.
"""
from __future__ import annotations

import argparse
import json
import os
import time


def run_one(name: str, size: int, seed: int, cap, workdir: str, bands: int = 4) -> dict:
    from spectramorph_engine import FusionConfig
    from spectramorph_engine.run.pipeline import run_fusion
    from spectramorph_engine.run.results import FusionInputs
    from .quality import case_config, scene
    truth, wl = scene(name, size)
    cfg = FusionConfig(**case_config(name, "gaussian", 4, bands, seed, workdir), auto_select=False,
                       max_training_pixels=cap)
    load = os.getloadavg()[0]
    res = run_fusion(cfg, inputs=FusionInputs(truth=truth, wavelengths=wl), write_outputs=False)
    t = res.timings
    return {"scene": name, "size": size, "seed": seed, "cap": cap, "bands": bands,
            "prior": bool(res.method_info.get("prior")),
            "pixels": res.method_info["training"]["pixels"], "train_s": t.get("train"),
            "total_s": sum(v for k, v in t.items() if k not in ("load", "metrics", "save")),
            "PSNR": float(res.metrics["PSNR"]), "SAM": float(res.metrics["SAM"]), "load1": load}


def render(rows: list) -> str:
    """One line per run, and each cap's paired PSNR change against no cap on the same case."""
    out = ["| scene | size | bands | seed | cap | pixels | train s | total s | PSNR | SAM | dPSNR vs no cap |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    def case(r):
        return r["scene"], r["size"], r.get("bands", 4), r["seed"]
    base = {case(r): r for r in rows if r["cap"] is None}
    for r in sorted(rows, key=lambda r: case(r) + (r["cap"] or 1 << 40,)):
        ref = base.get(case(r))
        delta = "" if ref is None or r["cap"] is None else f"{r['PSNR'] - ref['PSNR']:+.3f}"
        out.append(f"| {r['scene']} | {r['size']} | {r.get('bands', 4)} | {r['seed']} | {r['cap'] or 'none'} | "
                   f"{r['pixels']} | {r['train_s']:.1f} | {r['total_s']:.1f} | {r['PSNR']:.3f} | {r['SAM']:.3f} | "
                   f"{delta} |")
    return "\n".join(out)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenes", default="usgs-a,usgs-b,holdout")
    p.add_argument("--sizes", default="256,400")
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--caps", default="none,2048,4096,8192", help="'none' = no cap (the reference)")
    p.add_argument("--bands", type=int, default=4, help="MSI bands (1-2: the coarse spectral prior is on)")
    p.add_argument("--json", default=None, help="JSON lines, appended run by run (a rerun skips what is there)")


def main(args) -> int:
    os.environ.setdefault("SPECTRAMORPH_THREADS", "1")
    from spectramorph_engine.core.device import configure_threads
    configure_threads()
    path = args.json or f"bench/results/sample_{time.strftime('%Y%m%d_%H%M%S')}.jsonl"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    rows = [json.loads(line) for line in open(path)] if os.path.exists(path) else []
    done = {(r["scene"], r["size"], r["seed"], r["cap"], r.get("bands", 4)) for r in rows}
    caps = [None if c == "none" else int(c) for c in args.caps.split(",")]
    workdir = os.path.dirname(os.path.abspath(path))
    for size in (int(s) for s in args.sizes.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            for name in args.scenes.split(","):
                for cap in caps:
                    if (name, size, seed, cap, args.bands) in done or (cap is not None and cap >= (size // 4) ** 2):
                        continue            # a cap at or above the pixel count is no cap (tests)
                    row = run_one(name, size, seed, cap, workdir, args.bands)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
                    with open(path, "a") as f:
                        f.write(json.dumps(row) + "\n")
    print(render(rows))
    return 0
