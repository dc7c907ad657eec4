"""`spectramorph` command line: a thin client of `run_fusion`.

    spectramorph run --config my.yaml [--set epochs=500 --set device=cpu]
    spectramorph run --demo
    spectramorph run --config big.yaml --tiles [--scheduler local|tcp://host:8786] [--chunk 512]
    spectramorph cameras            # the named cameras msi_camera accepts
    spectramorph batch pairs.csv --config base.yaml [--scheduler local|tcp://host:8786|none]
    spectramorph align HR.tif LR.tif --out DIR   # the pair on nested grids, as GeoTIFFs

Bad input ends with one line `error: ...` on stderr and exit code 2; an
interrupted run exits 130; an unexpected failure exits 1 with a one-line
message (the traceback only with --debug).
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading

from ..run.config import apply_overrides, load_config
from ..core.errors import Cancelled, InputError
from ..core import events as ev

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spectramorph",
                                description="SpectraMorph hyperspectral super-resolution.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="fuse an HR-MSI and an LR-HSI (or a synthetic pair) from a config")
    src = run.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", metavar="FILE", help="YAML (.yaml/.yml) or JSON (.json) config file")
    src.add_argument("--demo", action="store_true",
                     help="run on the built-in demo scene (no data needed); outputs in outputs/demo")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override one config key (repeatable), e.g. --set epochs=500")
    run.add_argument("--debug", action="store_true", help="show tracebacks")
    run.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    run.add_argument("--tiles", action="store_true",
                     help="one big scene across Dask workers: train once, infer and refine chunk by chunk into "
                          "hr_hsi.zarr (see README, 'Many scenes / clusters')")
    run.add_argument("--scheduler", default="local", metavar="local|tcp://HOST:PORT",
                     help="with --tiles: a Dask LocalCluster (default) or a running scheduler's address")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="with --tiles: worker processes of the local cluster (default: one per core)")
    run.add_argument("--chunk", type=int, default=None, metavar="N",
                     help="with --tiles: chunk side in HR pixels (default 512, rounded up to the ratio)")
    sub.add_parser("cameras", help="list the named cameras (config key msi_camera) with their bands")
    from .align import add_parser as add_align
    add_align(sub)
    batch = sub.add_parser("batch", help="fuse every pair of a manifest (CSV or YAML), in parallel on Dask",
                           description="Fuse every pair listed in MANIFEST (one row per scene, columns are "
                                       "config keys) with the shared settings of --config. Exit 0 when every "
                                       "scene succeeded or was already complete, 1 when any failed, 2 for a "
                                       "bad manifest or config.")
    batch.add_argument("manifest", metavar="MANIFEST", help="CSV or YAML manifest of scenes")
    batch.add_argument("--config", metavar="BASE", help="YAML or JSON config with the settings every scene shares")
    batch.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one key of the base config (repeatable)")
    batch.add_argument("--scheduler", default="local", metavar="local|tcp://HOST:PORT|none",
                       help="local (default): a Dask LocalCluster on this machine; tcp://host:8786: a running "
                            "Dask scheduler; none: one scene after another in this process")
    batch.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes of the local cluster (default: cores / threads per worker)")
    batch.add_argument("--threads-per-worker", type=int, default=1, metavar="N",
                       help="torch threads per worker (default 1)")
    batch.add_argument("--summary", metavar="FOLDER", default=None,
                       help="where batch_summary.csv/.json go (default: the manifest's folder)")
    batch.add_argument("--no-resume", dest="resume", action="store_false",
                       help="run every scene, also those whose outputs are complete")
    batch.add_argument("--tiles", action="store_true",
                       help="fuse each scene tiled across the workers (train once, infer chunk by chunk; "
                            "see README: what tiled mode does not do)")
    batch.add_argument("--chunk", type=int, default=None, metavar="N",
                       help="with --tiles: chunk side in HR pixels (default 512)")
    batch.add_argument("--debug", action="store_true", help="show tracebacks")
    batch.add_argument("--quiet", action="store_true", help="no progress bar or per-scene lines")
    return p


def _print_cameras() -> None:
    from ..sensors.srf import CAMERAS
    for cam in CAMERAS.values():
        print(f"{cam.name:18s} {cam.label}")
        print(" " * 19 + ", ".join(f"{n} {c:g}/{w:g}" for n, c, w in cam.bands) + " (centre/FWHM nm)")
        print(" " * 19 + f"source: {cam.source}")


class _LevelPrefix(logging.Formatter):
    """Plain messages; a warning or an error says so ('warning: ...'), as the messages did."""

    def format(self, record):
        text = super().format(record)
        return f"{record.levelname.lower()}: {text}" if record.levelno >= logging.WARNING else text


class _ConsoleProgress:
    """tqdm bars for the reduced-resolution check, auto-selection, NMF, training and inference
    when stderr is a terminal."""

    def __init__(self, enabled: bool, echo_messages: bool = True):
        self.enabled = enabled
        # the engine logs every message it emits: with the log on stderr, printing them too
        # said each one twice
        self.echo_messages = echo_messages
        self.bar = None
        self.stage = None

    def __call__(self, event):
        if isinstance(event, ev.Message):
            if self.echo_messages:
                self._close()
                print(f"{event.level}: {event.text}", file=sys.stderr)
            return
        if not self.enabled:
            return
        from tqdm import tqdm
        if isinstance(event, ev.StageStarted) and event.stage in ("check", "select", "tv", "nmf", "train", "inference"):
            self._close()
            self.stage = event.stage
            total = None if event.stage == "train" else 100
            unit = "epoch" if event.stage == "train" else "%"
            self.bar = tqdm(total=total, desc=event.stage, unit=unit, file=sys.stderr, leave=True,
                            dynamic_ncols=True)
        elif isinstance(event, ev.EpochEnd) and self.bar is not None:
            if self.bar.total is None:
                self.bar.total = event.epochs
            self.bar.n = event.epoch
            self.bar.set_postfix(loss=f"{event.loss:.4g}", lr=f"{event.lr:.2e}", refresh=False)
            self.bar.refresh() if event.epoch == event.epochs else self.bar.update(0)
        elif isinstance(event, ev.StageProgress) and self.bar is not None and event.stage == self.stage:
            self.bar.n = round(100 * event.fraction)
            self.bar.update(0)
        elif isinstance(event, ev.StageFinished) and event.stage == self.stage:
            if self.bar is not None and self.bar.total:
                self.bar.n = self.bar.total
                self.bar.refresh()
            self._close()

    def _close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            self.stage = None


def _print_summary(result) -> None:
    """What the run made, in its method's own terms (method_report): a training loss for
    SpectraMorph, an objective for HySure, neither for GLP-HS."""
    from ..run.method_report import facts_text, result_figures, short_name
    out = sys.stdout
    name = short_name(result.method)
    print(f"{name}: HR-HSI {tuple(result.hr_hsi.shape)} on {result.device}; "
          f"{facts_text(result_figures(result))}", file=out)
    print("stage times: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()), file=out)
    if result.metrics:
        _print_metrics(out, ((name, result.metrics), ("bicubic", result.bicubic_metrics)))
    if result.consistency:
        _print_consistency(out, result.consistency)
    for what, path in result.output_files.items():
        print(f"wrote {what}: {path}", file=out)


def _print_metrics(out, rows) -> None:
    rows = [(label, m) for label, m in rows if m]
    names = list(rows[0][1])
    print(f"{'':14s}" + "".join(f"{n:>9s}" for n in names), file=out)
    for label, m in rows:
        print(f"{label:14s}" + "".join(f"{m[n]:9.4f}" for n in names), file=out)


def _print_consistency(out, c: dict) -> None:
    lr, msi = c["lr_consistency"], c["msi_consistency"]
    print(f"SRF: {c.get('srf_note', '')}", file=out)
    print(f"consistency with the LR-HSI: PSNR {lr['PSNR']:.2f} dB, SAM {lr['SAM']:.2f} deg", file=out)
    print(f"consistency with the HR-MSI: PSNR {msi['PSNR']:.2f} dB", file=out)
    rr = c.get("reduced_resolution")
    if rr and "skipped" in rr:
        print(f"reduced-resolution protocol: skipped ({rr['skipped']})", file=out)
    elif rr:
        source = ""
        if rr.get("epochs"):
            pixels = f" on {rr['training_pixels']} LR pixels" if rr.get("training_pixels") else ""
            whose = "auto-selection's fusion, " if rr.get("source") == "auto-selection" else "fused with "
            source = f"; {whose}{rr['epochs']} epochs{pixels}"
        print(f"reduced-resolution protocol: PSNR {rr['fusion']['PSNR']:.2f} dB, SAM "
              f"{rr['fusion']['SAM']:.2f} deg (bicubic {rr['bicubic']['PSNR']:.2f} dB, "
              f"{rr['bicubic']['SAM']:.2f} deg{source})", file=out)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    if args.command == "cameras":
        _print_cameras()
        return 0
    if args.command == "batch":
        from .batch import main_batch
        return main_batch(args)
    try:
        if args.command == "align":
            from .align import main_align
            return main_align(args)
        inputs = None
        if args.demo:
            from ..run.demo import demo_config, demo_inputs
            config = demo_config()
            inputs = demo_inputs()
        else:
            config = load_config(args.config)
        config = apply_overrides(config, args.overrides)
        logging_on = not args.quiet and config.verbose
        if logging_on:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(_LevelPrefix())
            logging.basicConfig(level=logging.INFO, handlers=[handler])
        if args.tiles:
            if args.demo:
                raise InputError("--tiles needs a real pair from a config (--config), not the demo")
            from .batch import main_run_tiled
            return main_run_tiled(args, config)
        from ..run.pipeline import run_fusion
        cancel = threading.Event()
        progress = _ConsoleProgress(enabled=sys.stderr.isatty() and not args.quiet, echo_messages=not logging_on)
        try:
            result = run_fusion(config, progress=progress, cancel=cancel, inputs=inputs)
        finally:
            progress._close()
        _print_summary(result)
        return 0
    except InputError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, Cancelled):
        print("error: interrupted; no result was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: one line unless --debug
        if debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
