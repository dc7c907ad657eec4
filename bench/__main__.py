"""python -m bench quality|speed ... (see bench/__init__.py)."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from . import quality, speed
    p = argparse.ArgumentParser(prog="python -m bench",
                                description="SpectraMorph benchmarks: quality (vs bicubic) and speed/memory.")
    sub = p.add_subparsers(dest="which", required=True)
    quality.add_arguments(sub.add_parser("quality", help="metrics table, SpectraMorph vs bicubic"))
    speed.add_arguments(sub.add_parser("speed", help="stage times, epochs/s, peak memory, NMF vs scikit-learn"))
    args = p.parse_args(argv)
    return (quality if args.which == "quality" else speed).main(args)


if __name__ == "__main__":
    sys.exit(main())
