"""`spectramorph batch`: the console side of batch.py (and tiled.py with --tiles).

Exit status: 0 when every scene succeeded or was already complete, 1 when any
failed (they are listed with their sentences), 2 for a bad manifest, config or
scheduler (one line `error: ...`), 130 when interrupted.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from ..scale import batch as batch_mod
from ..core.errors import InputError

EXIT_OK, EXIT_SCENES_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
SEQUENTIAL = ("none", "sequential")


def _dask_available() -> bool:
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_scheduler(name: str, tiles: bool) -> str:
    """'local', an address, or 'none' (in-process); refuses what cannot run. Without Dask,
    'local' becomes 'none' with a note (a batch still runs, one scene after another)."""
    name = (name or "local").strip()
    if name not in ("local",) + SEQUENTIAL and "://" not in name:
        raise InputError(f"--scheduler is '{name}'; allowed: local, none, or a scheduler address such as "
                         f"tcp://host:8786")
    if name in SEQUENTIAL:
        if tiles:
            raise InputError("--tiles spreads one scene over Dask workers: it needs --scheduler local or an address")
        return "none"
    if not _dask_available():
        if name == "local" and not tiles:
            print(f"note: Dask is not installed: the scenes run one after another in this process; "
                  f"{batch_mod.INSTALL_HINT}", file=sys.stderr)
            return "none"
        raise InputError(f"{'--tiles' if tiles else '--scheduler ' + name} needs Dask, which is not installed: "
                         f"{batch_mod.INSTALL_HINT}")
    return name


def main_batch(args) -> int:
    debug = args.debug
    client = None
    try:
        if args.workers is not None and args.workers < 1:
            raise InputError(f"--workers must be >= 1, got {args.workers}")
        if args.threads_per_worker < 1:
            raise InputError(f"--threads-per-worker must be >= 1, got {args.threads_per_worker}")
        if args.chunk is not None and args.chunk < 1:
            raise InputError(f"--chunk must be >= 1, got {args.chunk}")
        base, keys = batch_mod.load_base(args.config, args.overrides)
        scenes = batch_mod.load_manifest(args.manifest, base, keys)
        scheduler = resolve_scheduler(args.scheduler, args.tiles)
        if args.tiles:
            from ..scale import tiled
            scenes = [dataclasses.replace(s, config=without_alignment(s.config)) for s in scenes]
            for scene in scenes:       # refused before anything runs, not scene by scene
                tiled.check_config(scene.config, where=f"scene '{scene.name}' (row {scene.row})")
        if scheduler != "none":
            client = batch_mod.start_client(scheduler, args.workers, args.threads_per_worker)
    except InputError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    summary_folder = Path(args.summary) if args.summary else Path(args.manifest).absolute().parent
    workers = len(client.scheduler_info().get("workers", {})) if client is not None else 0
    where = f"{workers} Dask worker{'s' if workers != 1 else ''} ({args.scheduler})" if client is not None \
        else "this process, one scene after another"
    quiet = args.quiet
    if not quiet:
        print(f"{len(scenes)} scene{'s' if len(scenes) != 1 else ''} from '{args.manifest}' on {where}"
              + (" -- tiled" if args.tiles else ""), file=sys.stderr)
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(total=len(scenes), unit="scene", file=sys.stderr, dynamic_ncols=True)

    def on_result(row):
        line = f"{row['scene']}: {row['status']} ({row['seconds']:.1f} s)" + \
            (f" -- {row['error']}" if row["error"] else "")
        if bar is not None:
            bar.write(line, file=sys.stderr)
            bar.update(1)
        elif not quiet:
            print(line, file=sys.stderr)

    def note(text):
        if not quiet:
            (bar.write if bar is not None else print)(f"note: {text}", file=sys.stderr)

    try:
        if args.tiles:
            from ..scale import tiled
            rows = tiled.run_batch_tiled(scenes, client, chunk=args.chunk, threads=args.threads_per_worker,
                                         resume=args.resume, on_result=on_result, on_note=note)
        else:
            rows = batch_mod.run_batch(scenes, client, threads=args.threads_per_worker if client else None,
                                       resume=args.resume, on_result=on_result)
    except KeyboardInterrupt:
        print("error: interrupted; scenes not finished left no output", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
        if client is not None:
            batch_mod.close_client(client)
    info = {"manifest": str(Path(args.manifest).absolute()), "scheduler": args.scheduler, "workers": workers,
            "threads_per_worker": args.threads_per_worker, "tiled": bool(args.tiles)}
    try:
        csv_path, json_path = batch_mod.write_summary(rows, summary_folder, info)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        csv_path = json_path = None
    print(batch_mod.format_table(rows))
    c = batch_mod.counts(rows)
    print(f"{c['ok']} succeeded, {c['skipped']} skipped (complete), {c['failed']} failed")
    failed = [r for r in rows if r["status"] == batch_mod.STATUS_FAILED]
    for r in failed:
        print(f"failed: {r['scene']}: {r['error']}")
    if csv_path is not None:
        print(f"summary: {csv_path} and {json_path}")
    return EXIT_SCENES_FAILED if failed or csv_path is None else EXIT_OK


def without_alignment(config):
    """Tiled workers read the two files chunk by chunk as they are: a pair the program would
    align (crop, resample) is refused by the strict check instead, whose sentence points to
    `spectramorph align`."""
    return config.replace(align="off") if config.align != "off" else config


def main_run_tiled(args, config) -> int:
    """`spectramorph run --config big.yaml --tiles`: one scene across Dask workers. InputError
    goes back to cli.main (exit 2)."""
    from ..scale import tiled
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if args.chunk is not None and args.chunk < 1:
        raise InputError(f"--chunk must be >= 1, got {args.chunk}")
    config = without_alignment(config)
    tiled.check_config(config)
    scheduler = resolve_scheduler(args.scheduler, tiles=True)
    client = batch_mod.start_client(scheduler, args.workers, 1)
    try:
        def note(text):
            if not args.quiet:
                print(f"note: {text}", file=sys.stderr)
        workers = len(client.scheduler_info().get("workers", {}))
        if not args.quiet:
            print(f"tiled run on {workers} Dask worker{'s' if workers != 1 else ''} ({args.scheduler}): training "
                  f"on one worker, then inference (and the refinement) chunk by chunk", file=sys.stderr)
        out = tiled.run_tiled(config, client, chunk=args.chunk, threads=1, on_note=note)
    except KeyboardInterrupt:
        print("error: interrupted; no result was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        batch_mod.close_client(client)
    print(f"tiled: {out['chunks']} chunks on {out['workers']} workers in {out['seconds']:.1f} s "
          f"(not done in tiled mode: {'; '.join(tiled.NOT_DONE)})")
    print("stage times: " + ", ".join(f"{k} {v:.2f}s" for k, v in out["timings"].items()))
    for name, path in out["output_files"].items():
        print(f"wrote {name}: {path}")
    return EXIT_OK
