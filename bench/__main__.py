"""python -m bench quality|speed ... (see bench/__init__.py)."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from . import fuzz, quality, speed
    p = argparse.ArgumentParser(prog="python -m bench",
                                description="SpectraMorph benchmarks: quality (vs bicubic), speed/memory, "
                                            "hostile files.")
    sub = p.add_subparsers(dest="which", required=True)
    quality.add_arguments(sub.add_parser("quality", help="metrics table, SpectraMorph vs bicubic"))
    speed.add_arguments(sub.add_parser("speed", help="stage times, epochs/s, peak memory, NMF vs scikit-learn"))
    fuzz.add_arguments(sub.add_parser("fuzz", help="hostile files against every loader: outcomes per format"))
    args = p.parse_args(argv)
    return {"quality": quality, "speed": speed, "fuzz": fuzz}[args.which].main(args)


if __name__ == "__main__":
    sys.exit(main())
