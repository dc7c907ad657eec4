"""What the coarse spectral prior buys and costs (python -m bench prior, issue 8).

Per case (scene, ratio, MSI bands, seed) the default settings run twice with the prior forced
off and on (auto-selection off, so each run is exactly that), reporting PSNR against the truth
and the training stage's seconds. A second table times training alone on the same data three
ways: no prior, the prior fed per block (the engine: the first layer's prior part computed once
per coarse block), and the prior concatenated to every pixel's input (the original's way,
mathematically the same network), best of three interleaved repetitions. One torch thread;
the epochs are the engine's default unless --epochs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from .common import RESULTS_DIR, default_json, machine_info, table, write_json

CASES = (("urban", 4, 1), ("urban", 4, 4), ("urban", 8, 1), ("usgs-a", 4, 1), ("usgs-a", 4, 4), ("usgs-a", 8, 1),
         ("holdout", 4, 1), ("holdout", 4, 4), ("holdout", 8, 1))


def _timing(truth, wl, ratio, bands, epochs):
    """Training seconds per epoch: no prior / block prior / concatenated prior (same network)."""
    import numpy as np
    import torch
    from spectramorph_engine import FusionConfig
    from spectramorph_engine.methods.spectramorph.inference import coarse_prior_blocks
    from spectramorph_engine.methods.spectramorph import training_input_lr
    from spectramorph_engine.methods.spectramorph.model import LatentEstimationNetwork
    from spectramorph_engine.run.results import FusionInputs
    from spectramorph_engine.run.prepare import prepare_inputs
    from spectramorph_engine.methods.spectramorph.training import train_len
    from spectramorph_engine.methods.spectramorph.unmixing import extract_endmembers
    cfg = FusionConfig(downsample_ratio=ratio, num_msi_bands=bands, device="cpu")
    prep = prepare_inputs(cfg, FusionInputs(truth=truth, wavelengths=wl))
    C = prep.lr_hsi.shape[2]
    x = torch.from_numpy(np.ascontiguousarray(training_input_lr(prep).reshape(-1, bands), dtype=np.float32))
    t = torch.from_numpy(np.ascontiguousarray(prep.lr_hsi.reshape(-1, C), dtype=np.float32))
    E = torch.from_numpy(extract_endmembers(prep.lr_hsi, 7))
    rows, index = coarse_prior_blocks(prep.lr_hsi, ratio)
    out = {}
    for _ in range(3):          # best of three interleaved repetitions: a busy machine only adds time
        for name in ("none", "block", "concatenated"):
            inputs = x if name != "concatenated" else torch.cat([x, torch.from_numpy(rows[index])], dim=1)
            prior = (torch.from_numpy(rows), torch.from_numpy(index)) if name == "block" else None
            model = LatentEstimationNetwork(bands + (0 if name == "none" else C), 1024, 7, seed=0)
            t0 = time.perf_counter()
            train_len(model, inputs, t, E, epochs=epochs, prior=prior)
            out[name] = min(out.get(name, float("inf")), (time.perf_counter() - t0) / epochs)
    out["lr_pixels"] = int(x.shape[0])
    return out


def run(args) -> dict:
    os.environ["SPECTRAMORPH_THREADS"] = "1"
    import torch
    torch.set_num_threads(1)
    from spectramorph_engine import FusionConfig
    from spectramorph_engine.run.results import FusionInputs
    from spectramorph_engine.run.pipeline import run_fusion
    from .scenes import scene
    report = {"kind": "prior", "machine": machine_info(), "threads": 1, "epochs": args.epochs or "default",
              "seeds": args.seeds, "command": "python -m bench " + " ".join(sys.argv[1:]), "rows": [], "timing": []}
    for name, ratio, bands in CASES:
        if name not in args.scenes:
            continue
        truth, wl = scene(name)
        for seed in ([] if args.timing_only else args.seeds):
            row = {"scene": name, "ratio": ratio, "bands": bands, "seed": seed}
            for prior in (False, True):
                changes = dict(downsample_ratio=ratio, num_msi_bands=bands, seed=seed, spec_prior=prior,
                               auto_select=False, device="cpu")
                if args.epochs:
                    changes["epochs"] = args.epochs
                res = run_fusion(FusionConfig(**changes), inputs=FusionInputs(truth=truth, wavelengths=wl),
                                 write_outputs=False)
                row["on" if prior else "off"] = {"PSNR": res.metrics["PSNR"], "SAM": res.metrics["SAM"],
                                                 "train_s": res.timings.get("train")}
            report["rows"].append(row)
            if not args.quiet:
                print(f"[prior] {name} r{ratio} c{bands} s{seed}: off {row['off']['PSNR']:.2f} dB "
                      f"{row['off']['train_s']:.1f} s, on {row['on']['PSNR']:.2f} dB {row['on']['train_s']:.1f} s",
                      file=sys.stderr, flush=True)
        timing = _timing(truth, wl, ratio, bands, args.timing_epochs)
        report["timing"].append({"scene": name, "ratio": ratio, "bands": bands, **timing})
    return report


def render(report) -> str:
    from .quality import _stats
    rows = []
    groups = {}
    for r in report["rows"]:
        groups.setdefault((r["scene"], r["ratio"], r["bands"]), []).append(r)
    for (name, ratio, bands), rs in groups.items():   # (empty with --timing-only)
        off = _stats([r["off"]["PSNR"] for r in rs])[0]
        on = _stats([r["on"]["PSNR"] for r in rs])[0]
        diff, sd = _stats([r["on"]["PSNR"] - r["off"]["PSNR"] for r in rs])
        t_off = _stats([r["off"]["train_s"] for r in rs])[0]
        t_on = _stats([r["on"]["train_s"] for r in rs])[0]
        rows.append([name, ratio, bands, len(rs), off, on, f"{diff:+.2f}±{sd:.2f}", t_off, t_on, t_on / t_off])
    parts = [f"Coarse spectral prior: default settings with spec_prior false / true (auto_select off), "
             f"seeds {report['seeds']}, one torch thread, {report['machine'].get('cpu')}",
             f"Reproduce: {report['command']}",
             table(["scene", "r", "c", "n", "PSNR off", "PSNR on", "on-off", "train s off", "train s on", "cost x"],
                   rows, ["", "d", "d", "d", ".2f", ".2f", "", ".1f", ".1f", ".2f"],
                   title="\n[1] PSNR (dB, after the refinement) and training time")]
    trows = [[t["scene"], t["ratio"], t["bands"], t["lr_pixels"], 1e3 * t["none"], 1e3 * t["block"],
              1e3 * t["concatenated"], t["block"] / t["none"], t["concatenated"] / t["block"]]
             for t in report["timing"]]
    parts.append(table(["scene", "r", "c", "LR px", "ms/ep none", "ms/ep block", "ms/ep concat", "block/none",
                        "concat/block"], trows, ["", "d", "d", "d", ".2f", ".2f", ".2f", ".2f", ".2f"],
                       title="\n[2] Training cost per epoch: no prior, the engine's per-block prior, the "
                             "original's concatenated prior (same network, same gradient)"))
    return "\n".join(parts)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenes", default="urban,usgs-a,holdout")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--timing-epochs", type=int, default=200)
    p.add_argument("--timing-only", action="store_true", help="only table [2] (training cost per epoch)")
    p.add_argument("--json", help=f"result file (default {RESULTS_DIR}/prior_<time>.json)")
    p.add_argument("--quiet", action="store_true")


def main(args) -> int:
    args.scenes = [s.strip() for s in args.scenes.split(",") if s.strip()]
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    report = run(args)
    text = render(report)
    print(text)
    path = write_json(args.json or default_json("prior"), {**report, "table": text})
    print(f"\nJSON: {path}")
    return 0
