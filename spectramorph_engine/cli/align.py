"""`spectramorph align HR LR --out DIR`: the pair brought onto nested grids and written as
GeoTIFFs, for users who want to look before they fuse (run.alignment.align_files does the work).
"""
from __future__ import annotations

import logging
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("align", help="bring a georeferenced HR-MSI / LR-HSI pair onto nested grids and write "
                                     "them as GeoTIFFs",
                       description="Crop both images to their common footprint on whole LR pixels, resample the "
                                   "LR-HSI onto a grid nested in the HR-MSI's (reprojecting when the CRSs differ), "
                                   "measure and correct a sub-pixel misregistration, and write hr_msi_aligned.tif, "
                                   "lr_hsi_aligned.tif and alignment.json into DIR -- all three, or none.")
    p.add_argument("hr", metavar="HR", help="the HR-MSI (GeoTIFF, or ENVI with map info)")
    p.add_argument("lr", metavar="LR", help="the LR-HSI (GeoTIFF, or ENVI with map info)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--nodata", type=float, default=None, metavar="VALUE",
                   help="a value marking pixels without data (besides NaN and each file's own nodata)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def main_align(args) -> int:
    from ..run.alignment import align_files
    if not args.quiet:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    record = align_files(args.hr, args.lr, args.out, nodata=args.nodata)
    if not args.quiet:
        for path in record["outputs"].values():
            print(path)
    return 0
