"""Many scenes: a manifest of image pairs, each fused by `run_fusion` as one task.

    scenes = load_manifest("pairs.csv", base_config, base_keys)   # InputError: a bad manifest
    rows = run_batch(scenes, client=client)      # client: a dask.distributed Client, or None
    write_summary(rows, folder)                  # batch_summary.csv / .json, atomically

A manifest is a CSV file (a header row of config keys, one row per scene) or a
YAML file (a list of mappings, or a mapping with a `scenes:` list). Every column
is a config key (`hr_msi_file`, `lr_hsi_file`, `output_dir`, `epochs`, ...) that
overrides the base config for that scene, plus an optional `name`. Relative
paths in a row are resolved against the manifest's folder.

A scene's outputs are written by `run_fusion` itself, so they keep its
all-or-nothing rule (outputs.StagedOutputs): a scene that fails, or whose worker
dies, leaves nothing half-made, and the next attempt cleans up after it. A
scene is complete when its output folder holds the run.json of a run made with
the same settings and the files it lists; `run_batch` skips those (resume).

This module imports Dask nowhere: the caller passes a Client (made with
`start_client`, which imports dask.distributed when asked) or None, which runs
the scenes one after another in this process. Each task returns a small dict
(status, seconds, scores, the error sentence), never the cube.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Optional

import yaml

from ..run.config import KEYS, FusionConfig, from_dict
from ..core.errors import Cancelled, InputError
from ..core.strict_json import dumps as json_dumps

log = logging.getLogger(__name__)

# Config keys that name files or folders: resolved against the manifest's folder in a row,
# against the current folder in the base config (as `spectramorph run` reads them).
PATH_KEYS = ("hr_msi_file", "lr_hsi_file", "mat_file", "psf_file", "srf_file", "output_dir", "log_dir",
             "wavelengths")
NAME_COLUMN = "name"
SUMMARY_NAME = "batch_summary"
# Columns of the summary table, in order.
SUMMARY_COLUMNS = ("scene", "status", "seconds", "lr_psnr_db", "lr_sam_deg", "msi_psnr_db", "reduced_psnr_db",
                   "psnr_db", "sam_deg", "output_dir", "error")
STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped (complete)"
INSTALL_HINT = "pip install '.[dask]' (or spectramorph-studio[dask]) for the parallel engine on Dask"
_MAX_MANIFEST_BYTES = 16 << 20


@dataclass(frozen=True)
class Scene:
    name: str
    row: int                 # the scene's place in the manifest (1 = first scene)
    config: FusionConfig     # every path absolute


# --------------------------------------------------------------------------- the base config

def load_base(path, overrides: Iterable[str] = ()) -> tuple:
    """(FusionConfig, keys the file or the overrides set) of a batch's shared settings; its
    relative paths are made absolute against the current folder, as `spectramorph run` reads
    them (the workers of a cluster may run elsewhere)."""
    from ..run.config import apply_overrides, load_config, parse_override
    if path is None:
        config, keys = FusionConfig(), set()
    else:
        config = load_config(path)
        text = Path(path).read_text(encoding="utf-8-sig")
        raw = json.loads(text) if str(path).lower().endswith(".json") else yaml.safe_load(text)
        keys = set(raw) if isinstance(raw, dict) else set()
    overrides = list(overrides or ())
    config = apply_overrides(config, overrides)
    keys |= {parse_override(o)[0] for o in overrides}
    changes = {k: str(Path(getattr(config, k)).expanduser().absolute()) for k in PATH_KEYS
               if isinstance(getattr(config, k), str) and getattr(config, k)}
    return config.replace(**changes), keys


# --------------------------------------------------------------------------- the manifest

def _read_rows(p: Path) -> list:
    """[(row number, {column: raw value})] of a CSV or YAML manifest."""
    suffix = p.suffix.lower()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"manifest '{p}' cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    if suffix == ".csv":
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if not lines:
            raise InputError(f"manifest '{p}' is empty: it needs a header row of config keys and one row per scene")
        try:
            reader = csv.DictReader(lines, skipinitialspace=True)
            header = [h.strip() if h else h for h in (reader.fieldnames or [])]
            rows = []
            for i, rec in enumerate(reader, start=1):
                if None in rec:          # more cells than columns
                    raise InputError(f"manifest '{p}', row {i}: {len(header) + len(rec[None])} cells but the "
                                     f"header has {len(header)} columns")
                rows.append((i, {k.strip(): (v.strip() if isinstance(v, str) else v)
                                 for k, v in rec.items() if k is not None}))
        except csv.Error as exc:
            raise InputError(f"manifest '{p}' is not valid CSV: {exc}") from None
        if any(not h for h in header):
            raise InputError(f"manifest '{p}': the header row has an empty column name")
        return rows
    if suffix in (".yaml", ".yml", ".json"):
        try:
            data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"manifest '{p}' cannot be parsed: {first}") from None
        if isinstance(data, dict) and "scenes" in data:
            data = data["scenes"]
        if not isinstance(data, list):
            raise InputError(f"manifest '{p}' must hold a list of scenes (mappings of config keys), or a "
                             f"mapping with a 'scenes:' list")
        rows = []
        for i, rec in enumerate(data, start=1):
            if not isinstance(rec, dict):
                raise InputError(f"manifest '{p}', row {i}: a scene must be a mapping of config keys, got {rec!r}")
            rows.append((i, {str(k): v for k, v in rec.items()}))
        return rows
    raise InputError(f"manifest '{p}' has an unknown type '{p.suffix}': use .csv, .yaml or .yml")


def _cell(key: str, value):
    """A manifest cell as a config value: CSV text is read as YAML (as --set reads it: 1e-3,
    null, true), but paths and names stay text; an empty cell means 'not set'."""
    if isinstance(value, str):
        if value == "":
            return None
        if key in PATH_KEYS or key == NAME_COLUMN:
            return value
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


def load_manifest(path, base: FusionConfig, base_keys: Iterable[str] = ()) -> List[Scene]:
    """The scenes of a manifest over the `base` config (see the module doc). Refuses, with one
    sentence naming the manifest, the row and the key, a manifest that cannot run at all:
    unknown columns, bad values, a pair not named, two scenes writing to one folder. Files are
    not opened here: a scene whose file is bad fails alone when it runs."""
    from ..io import _check_file
    p = _check_file(path, "manifest")
    if p.stat().st_size > _MAX_MANIFEST_BYTES:
        raise InputError(f"manifest '{p}' is {p.stat().st_size} bytes: too big for a manifest (is it the right file?)")
    folder = p.parent.absolute()
    base_keys = set(base_keys)
    rows = _read_rows(p)
    if not rows:
        raise InputError(f"manifest '{p}' lists no scene")
    out_root = Path(base.output_dir) if "output_dir" in base_keys else folder / "outputs"
    log_root = Path(base.log_dir) if "log_dir" in base_keys else folder / "logs"
    scenes, names, outputs = [], {}, {}
    for i, rec in rows:
        where = f"manifest '{p}', row {i}"
        unknown = sorted(k for k in rec if k not in KEYS and k != NAME_COLUMN)
        if unknown:
            raise InputError(f"{where}: unknown column(s) {', '.join(repr(u) for u in unknown)} (a column is a "
                             f"config key or 'name'; known keys: {', '.join(KEYS)})")
        values = {k: _cell(k, v) for k, v in rec.items()}
        values = {k: v for k, v in values.items() if v is not None}
        for k in PATH_KEYS:
            v = values.get(k)
            if isinstance(v, str):
                values[k] = str((folder / Path(v).expanduser()).absolute())
        explicit_name = values.pop(NAME_COLUMN, None)
        synthetic = values.get("synthetic", base.synthetic if "synthetic" in base_keys else False)
        values["synthetic"] = synthetic
        need = ("mat_file",) if synthetic is True else ("hr_msi_file", "lr_hsi_file")
        for k in need:
            if not values.get(k) and not getattr(base, k):
                raise InputError(f"{where}: key '{k}' is not set (neither in the row nor in the base config)"
                                 + ("" if synthetic is True else "; a scene is a pair: hr_msi_file and lr_hsi_file"))
        stem_source = values.get("hr_msi_file") or values.get("mat_file") or getattr(base, need[0])
        if explicit_name is not None:
            name = str(explicit_name).strip()
            if not name or "/" in name or "\\" in name or name in (".", ".."):
                raise InputError(f"{where}: key 'name' is {explicit_name!r}; a scene name must be a plain "
                                 f"file name (no folder separators)")
            if name in names:
                raise InputError(f"{where}: scene name '{name}' is also the name of row {names[name]}")
        else:
            stem = Path(str(stem_source)).stem or f"scene{i}"
            name, n = stem, 2
            while name in names:
                name, n = f"{stem}-{n}", n + 1
        names[name] = i
        values.setdefault("output_dir", str(out_root / name))
        values.setdefault("log_dir", str(log_root / name))
        try:
            config = from_dict({**base.to_dict(), **values})
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        target = str(Path(config.output_dir).absolute())
        if target in outputs:
            raise InputError(f"{where}: output folder '{target}' is also that of row {outputs[target]}; give each "
                             f"scene its own output_dir (or name)")
        outputs[target] = i
        scenes.append(Scene(name=name, row=i, config=config))
    return scenes


# --------------------------------------------------------------------------- one scene

def _figures(consistency: Optional[dict], metrics: Optional[dict], method: str = "spectramorph") -> dict:
    """The summary's score columns from a run's consistency figures (real pair) or metrics
    (synthetic pair)."""
    out = {}
    if consistency:
        lr, msi = consistency.get("lr_consistency") or {}, consistency.get("msi_consistency") or {}
        out.update(lr_psnr_db=lr.get("PSNR"), lr_sam_deg=lr.get("SAM"), msi_psnr_db=msi.get("PSNR"))
        rr = (consistency.get("reduced_resolution") or {}).get("fusion") or {}
        out["reduced_psnr_db"] = rr.get("PSNR")
    if metrics:
        m = metrics.get(method, metrics) if isinstance(metrics.get(method), dict) else metrics
        out.update(psnr_db=m.get("PSNR"), sam_deg=m.get("SAM"))
    return {k: (None if v is None else round(float(v), 4)) for k, v in out.items()}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def complete_run(config: FusionConfig) -> Optional[dict]:
    """The run.json of `config.output_dir` when that folder holds a finished run made with the
    same settings (run.json is written last and moved in with every other output, so it exists
    only after a whole run) and every output it lists is there; None otherwise."""
    out = Path(config.output_dir)
    run = _read_json(out / "run.json")
    if not isinstance(run, dict) or not isinstance(run.get("config"), dict):
        return None
    # compared as run.json holds it (strict JSON: a NaN nodata reads back as null)
    if run["config"] != json.loads(json_dumps(config.to_dict())):
        return None          # made with other settings: run again
    outputs = run.get("outputs") or {}
    if "hr_hsi" not in outputs:
        return None
    if not all(Path(p).exists() for p in outputs.values()):
        return None
    return run


def _skipped_row(scene: Scene, run: dict) -> dict:
    out = Path(scene.config.output_dir)
    figures = _figures(_read_json(out / "consistency.json"), _read_json(out / "metrics.json"),
                       run.get("method") or "spectramorph")
    return _row(scene.name, STATUS_SKIPPED, 0.0, scene.config.output_dir, figures=figures)


def _row(name, status, seconds, output_dir, figures=None, error="") -> dict:
    row = {k: None for k in SUMMARY_COLUMNS}
    row.update(scene=name, status=status, seconds=round(float(seconds), 3), output_dir=str(output_dir),
               error=error or "")
    row.update(figures or {})
    return row


def run_scene(name: str, config: dict, threads: Optional[int] = None) -> dict:
    """Fuse one scene and write its outputs (the Dask task; also run in-process). `config` is a
    FusionConfig as a dict (cheap to ship); `threads`: torch threads for this process (a
    worker sharing a machine with others), None leaves them. Returns the summary row; never
    raises for a scene that fails (its sentence is in `error`), never returns the cube."""
    t0 = time.perf_counter()
    if threads:
        os.environ["SPECTRAMORPH_THREADS"] = str(int(threads))
    out_dir = Path(config.get("output_dir") or "outputs")
    existed = out_dir.exists()
    error = ""
    figures: dict = {}
    try:
        cfg = from_dict(config)
        from ..run.pipeline import run_fusion
        result = run_fusion(cfg)
        figures = _figures(result.consistency, {result.method: result.metrics} if result.metrics else None,
                           result.method)
        del result
    except InputError as exc:
        error = str(exc)
    except Cancelled:
        error = "cancelled"
    except MemoryError:
        error = "out of memory while fusing this scene"
    except Exception as exc:      # a bug: still one scene's failure, reported with its type
        log.exception("scene %s failed", name)
        error = f"unexpected {type(exc).__name__}: {exc}"
    finally:
        if not existed:
            _remove_if_empty(out_dir)
    status = STATUS_FAILED if error else STATUS_OK
    return _row(name, status, time.perf_counter() - t0, out_dir, figures=figures, error=error)


def _remove_if_empty(folder: Path) -> None:
    """A failed scene's output folder, made by the run and left empty, goes (so the outputs
    root shows only finished scenes)."""
    try:
        folder.rmdir()
    except OSError:
        pass


# --------------------------------------------------------------------------- many scenes

def start_client(scheduler: str = "local", workers: Optional[int] = None, threads_per_worker: int = 1):
    """A dask.distributed Client: `local` starts a LocalCluster of worker processes sized to
    this machine (`workers`, default cores // threads_per_worker); an address such as
    tcp://host:8786 connects to a running scheduler. Raises ImportError without dask."""
    from dask.distributed import Client
    # Dask's own INFO lines (scheduler, nannies, workers coming and going) would bury the
    # scenes' lines on a console that shows the engine's log
    for name in ("distributed", "dask"):
        if logging.getLogger(name).getEffectiveLevel() < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)
    if scheduler == "local":
        from ..core.device import available_cores
        n = int(workers or max(1, available_cores() // max(1, threads_per_worker)))
        return Client(local_cluster(n, threads_per_worker))
    try:
        return Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at '{scheduler}': {exc}") from None


def local_cluster(n_workers: int, threads_per_worker: int = 1):
    """A LocalCluster of worker processes for the engine. Dask starts its workers with glibc's
    malloc trim threshold at 64 kB (MALLOC_TRIM_THRESHOLD_), which hands every freed buffer
    back to the system: the engine's stages allocate and free large arrays in loops, and ran
    1.7x slower so (bench/README.md, batch); the workers start with glibc's default instead."""
    import dask
    from dask.distributed import LocalCluster
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                            dashboard_address=None, silence_logs=logging.ERROR)


def close_client(client) -> None:
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def run_batch(scenes: List[Scene], client=None, *, threads: Optional[int] = 1, resume: bool = True,
              on_result: Optional[Callable[[dict], None]] = None, retries: int = 1) -> List[dict]:
    """Fuse every scene; returns their summary rows in manifest order.

    `client`: a dask.distributed Client -- each scene is one task (`Client.submit`, results
    taken as they complete); a task lost with a dying worker is run again elsewhere by the
    scheduler (up to its `allowed_failures`), `retries` more times for a task that raises.
    None: the scenes run one after another in this process. `threads`: torch threads in each
    task (1 for workers sharing a machine; None leaves them). `resume`: scenes whose outputs
    are complete (`complete_run`) are skipped. `on_result(row)` is called as each row is known.
    """
    rows: List[Optional[dict]] = [None] * len(scenes)

    def done(i, row):
        rows[i] = row
        if on_result is not None:
            on_result(row)

    todo = []
    for i, scene in enumerate(scenes):
        run = complete_run(scene.config) if resume else None
        if run is not None:
            done(i, _skipped_row(scene, run))
        else:
            todo.append(i)
    if client is None:
        for i in todo:
            done(i, run_scene(scenes[i].name, scenes[i].config.to_dict(), threads))
        return rows
    from dask.distributed import as_completed
    futures = {}
    for i in todo:
        fut = client.submit(run_scene, scenes[i].name, scenes[i].config.to_dict(), threads, pure=False,
                            retries=retries, key=f"scene-{i}-{os.getpid()}-{time.monotonic_ns()}")
        futures[fut] = i
    try:
        for fut in as_completed(list(futures)):
            i = futures[fut]
            try:
                row = fut.result()
            except Exception as exc:      # the task itself never raises: its workers kept dying
                row = _row(scenes[i].name, STATUS_FAILED, 0.0, scenes[i].config.output_dir,
                           error=f"the cluster could not run this scene ({type(exc).__name__}: {exc})")
            done(i, row)
    except BaseException:
        client.cancel(list(futures))
        raise
    return rows


def counts(rows: List[dict]) -> dict:
    c = {"ok": 0, "failed": 0, "skipped": 0}
    for r in rows:
        c["failed" if r["status"] == STATUS_FAILED else "skipped" if r["status"] == STATUS_SKIPPED else "ok"] += 1
    return c


def write_summary(rows: List[dict], folder, info: Optional[dict] = None) -> tuple:
    """batch_summary.csv and batch_summary.json in `folder`, each written atomically; returns
    their paths."""
    import io as _io
    from ..io.atomic import atomic_write_text
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"summary folder '{folder}' cannot be created: {exc.strerror or exc}") from None
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(SUMMARY_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in SUMMARY_COLUMNS})
    csv_path = atomic_write_text(folder / f"{SUMMARY_NAME}.csv", buf.getvalue())
    doc = {**(info or {}), "counts": counts(rows), "scenes": rows}
    json_path = atomic_write_text(folder / f"{SUMMARY_NAME}.json", json_dumps(doc))
    return csv_path, json_path


def format_table(rows: List[dict]) -> str:
    """The summary as an aligned text table for the console."""
    def num(v, fmt):
        width = int(fmt.split(".")[0])
        return f"{'-':>{width}s}" if v is None else format(v, fmt)
    header = f"{'scene':24s} {'status':19s} {'time s':>8s} {'LR PSNR':>8s} {'LR SAM':>7s} {'MSI PSNR':>9s} " \
             f"{'RR PSNR':>8s}"
    lines = [header]
    for r in rows:
        lr_psnr = r.get("lr_psnr_db") if r.get("lr_psnr_db") is not None else r.get("psnr_db")
        lr_sam = r.get("lr_sam_deg") if r.get("lr_sam_deg") is not None else r.get("sam_deg")
        lines.append(f"{r['scene'][:24]:24s} {r['status']:19s} {r['seconds']:8.1f} {num(lr_psnr, '8.2f')} "
                     f"{num(lr_sam, '7.2f')} {num(r.get('msi_psnr_db'), '9.2f')} "
                     f"{num(r.get('reduced_psnr_db'), '8.2f')}")
    return "\n".join(lines)
