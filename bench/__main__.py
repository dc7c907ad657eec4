"""python -m bench quality|speed ... (see bench/__init__.py)."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from . import align, app_memory, batch, cancel_latency, default_run, fuzz, prior, quality, sample, speed
    p = argparse.ArgumentParser(prog="python -m bench",
                                description="SpectraMorph benchmarks: quality (vs bicubic), speed/memory, "
                                            "hostile files.")
    sub = p.add_subparsers(dest="which", required=True)
    quality.add_arguments(sub.add_parser("quality", help="quality table: default vs original, GLP-HS, HySure, "
                                                         "bicubic"))
    prior.add_arguments(sub.add_parser("prior", help="what the coarse spectral prior buys and costs"))
    speed.add_arguments(sub.add_parser("speed", help="stage times, epochs/s, peak memory, NMF vs scikit-learn"))
    fuzz.add_arguments(sub.add_parser("fuzz", help="hostile files against every loader: outcomes per format"))
    cancel_latency.add_arguments(sub.add_parser("cancel", help="time from a cancel request to Cancelled, per stage"))
    batch.add_arguments(sub.add_parser("batch", help="scenes per hour vs Dask workers; tiled run's memory per worker"))
    app_memory.add_arguments(sub.add_parser("app", help="the app's peak memory and stalls vs the CLI on a big pair"))
    sample.add_arguments(sub.add_parser("sample", help="PSNR against training cost under max_training_pixels"))
    align.add_arguments(sub.add_parser("align", help="what aligning a pair from two instruments buys (issue 22)"))
    default_run.add_arguments(sub.add_parser("default-run", help="the whole default CLI run on a big pair, by stage"))
    args = p.parse_args(argv)
    return {"quality": quality, "speed": speed, "fuzz": fuzz, "cancel": cancel_latency,
            "prior": prior, "batch": batch, "app": app_memory,
            "sample": sample, "align": align, "default-run": default_run}[args.which].main(args)


if __name__ == "__main__":
    sys.exit(main())
