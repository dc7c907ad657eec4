"""The one configuration object of a fusion run.

Keys are those of the original implementation's `main.py` template (so its
YAML/JSON files load unchanged) plus `scheduler`, `device`, `srf_source`,
`training_input` and `wavelengths`. Validation lives here and only here:
every refusal is an `InputError` naming the key and what is allowed.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from ..core.errors import InputError
from ..sensors.catalogue import CAMERAS, PSF_TYPES
SRF_PRESET_BANDS = (1, 3, 4, 8, 16)
SCHEDULERS = ("one_cycle", "flat")
DEVICES = ("auto", "cpu", "cuda", "mps")
OUTPUT_TYPES = ("numpy", "matlab", "h5", "geotiff")
FIGURE_FORMATS = ("png", "jpg")
SRF_SOURCES = ("auto", "file", "preset", "estimate")
METHODS = ("spectramorph", "glp", "hysure")
ENDMEMBER_METHODS = ("nmf", "minvol")
PRIOR_AUTO_MAX_BANDS = 2        # spec_prior auto: on up to this many MSI bands ...
PRIOR_AUTO_MAX_RATIO = 4        # ... and up to this ratio (auto_select may turn it on elsewhere)
TRAINING_INPUTS = ("auto", "srf", "msi_lr")
PSF_ESTIMATIONS = ("free", "gaussian")
OUTPUT_SCALES = ("input", "normalized")
ALIGN_MODES = ("auto", "off")


@dataclass(frozen=True)
class FusionConfig:
    # --- mode and custom sensor files (original keys) ---
    synthetic: bool = True
    provide_psf: bool = False
    provide_srf: bool = False
    # --- synthetic mode ---
    mat_file: Optional[str] = None
    mat_key: Optional[str] = None
    psf_type: str = "gaussian"
    sigma: float = 3.4
    kernel_size: int = 7
    downsample_ratio: int = 4
    snr_spatial: Optional[float] = 35.0     # dB on the LR-HSI; null = no noise
    snr_spectral: Optional[float] = 40.0    # dB on the HR-MSI; null = no noise
    num_msi_bands: int = 4
    fwhm_factor: float = 4.2
    seed: int = 42
    psf_file: Optional[str] = None
    srf_file: Optional[str] = None
    # --- real-world mode ---
    hr_msi_file: Optional[str] = None
    lr_hsi_file: Optional[str] = None
    num_bands_msi_non_synthetic: Optional[int] = None   # null = the HR-MSI's band count
    # --- training and inference ---
    verbose: int = 1
    init_lr: float = 1e-3
    max_lr: float = 1e-2
    final_lr: float = 1e-6
    epochs: int = 2500
    hidden_size: int = 1024
    training_batch_size: Optional[int] = None    # pixels per batch; null = all
    max_training_pixels: Optional[int] = 2048    # train on a spread sample of at most this many LR pixels; null = all
    inference_batch_size: Optional[int] = None   # pixels per batch; null = automatic
    num_endmembers: int = 7
    spec_prior: Optional[Union[bool, str]] = "auto"   # auto | true | false; null (the original's value) = auto
    prior_downsample: int = 4
    # --- outputs ---
    figure_format: str = "png"
    output_file_type: str = "numpy"
    output_dir: str = "outputs"
    log_dir: str = "logs"
    # --- our additions ---
    scheduler: str = "one_cycle"
    device: str = "auto"
    srf_source: str = "auto"
    msi_camera: Optional[str] = None        # a named camera's SRF (srf.CAMERAS), placed on the true wavelengths
    training_input: str = "auto"
    psf_estimation: str = "free"            # real mode without psf_file: free-form kernel | isotropic Gaussian width
    wavelengths: Optional[Union[str, list]] = None   # file, or list of nm
    nodata: Optional[float] = None          # real mode: this value in every band marks a pixel without data (besides NaN/Inf and the file's own)
    output_scale: str = "input"             # real mode: result in the LR-HSI's units (input) or the engine's [0, 1] scale
    align: str = "auto"                     # real mode, georeferenced pair: auto (nested grids, footprint, misregistration) | off (strict check)
    # --- round two: methods and quality (issues 8, 9) ---
    method: str = "spectramorph"            # spectramorph | glp | hysure
    endmember_method: str = "minvol"        # minvol (NMF + minimum-volume refinement) | nmf (plain, as the original)
    nmf_max_iter: int = 400
    nmf_tol: float = 1e-2
    hysure_iterations: int = 1000           # ADMM iterations at most (it stops once converged: hysure.TOL)
    hysure_tv_weight: float = 1e-3          # weight of the vector total variation prior
    hysure_msi_weight: float = 1.0          # weight of the HR-MSI data term against the LR-HSI's
    hysure_subspace: int = 10               # subspace dimension (from the LR-HSI)
    refine: bool = True                     # make the result consistent with both images (refinement.py)
    refine_trust: float = 8.0               # expected correction / what the LR-HSI shows of the error
    refine_msi_weight: float = 1.0          # weight of the HR-MSI against the LR-HSI in the refinement
    refine_tv_weight: float = 10.0          # vector TV of the refined cube, in units of the LR-HSI's noise variance (0: none)
    refine_tv_select: bool = True           # choose refine_tv_weight per pair from left-out MSI bands (run/tv_selection.py;
                                            # blind pairs with 2+ MSI bands only: elsewhere the run says why it kept the weight)
    refine_iterations: int = 200            # ADMM iterations (with TV); conjugate gradients stop by tolerance
    refine_subspace: Optional[int] = None   # subspace dimension; null (or auto) = estimated from the LR-HSI
    auto_select: bool = True                # choose prior / K / refinement on the reduced-resolution pair

    def __post_init__(self):
        if self.spec_prior is None:       # the original template's null means auto (issue 8)
            object.__setattr__(self, "spec_prior", "auto")
        if self.refine_subspace == "auto":   # auto names null's meaning: estimated
            object.__setattr__(self, "refine_subspace", None)
        _validate(self)

    # -- conversions -------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "FusionConfig":
        return from_dict({**self.to_dict(), **changes})

    @property
    def prior_choice(self) -> str:
        """'on', 'off' or 'auto' (null and 'auto' both mean auto)."""
        if self.spec_prior is None or self.spec_prior == "auto":
            return "auto"
        return "on" if self.spec_prior else "off"

    def use_prior_for(self, msi_bands: int, ratio: Optional[int] = None) -> bool:
        """Whether the coarse spectral prior is used for an MSI of `msi_bands` bands at `ratio`
        when no auto-selection overrides it: forced by true/false; auto turns it on for 1-2
        bands at ratios up to PRIOR_AUTO_MAX_RATIO, where the MSI alone cannot tell spectra
        apart and one LR spectrum per r x r block still says which (quality bench, bench/README.md:
        after the refinement the prior adds 0.3-0.7 dB at ratio 4 / 1 band and costs 0.7-1.4 dB
        at ratio 8 / 1 band)."""
        choice = self.prior_choice
        if choice != "auto":
            return choice == "on"
        r = self.downsample_ratio if ratio is None else int(ratio)
        return int(msi_bands) <= PRIOR_AUTO_MAX_BANDS and r <= PRIOR_AUTO_MAX_RATIO


KEYS = tuple(f.name for f in fields(FusionConfig))
_FIELD_TYPES = {f.name: f.type for f in fields(FusionConfig)}

# The original implementation's main.py template: a file holding only these keys, and most of
# them (at least ORIGINAL_SHARE), was written for the original and is read with its meaning.
ORIGINAL_KEYS = ("synthetic", "provide_psf", "provide_srf", "mat_file", "mat_key", "psf_type", "sigma",
                 "kernel_size", "downsample_ratio", "snr_spatial", "snr_spectral", "num_msi_bands",
                 "fwhm_factor", "seed", "psf_file", "srf_file", "hr_msi_file", "lr_hsi_file",
                 "num_bands_msi_non_synthetic", "verbose", "init_lr", "max_lr", "final_lr", "epochs",
                 "hidden_size", "training_batch_size", "inference_batch_size", "num_endmembers",
                 "spec_prior", "prior_downsample", "figure_format", "output_file_type", "output_dir",
                 "log_dir")
ORIGINAL_SHARE = 0.75


def is_original_format(d: dict) -> bool:
    """True for a mapping written for the original implementation: only its template's keys
    (none of ours) and at least three quarters of them, as its main.py template writes."""
    keys = set(d)
    return keys <= set(ORIGINAL_KEYS) and len(keys) >= ORIGINAL_SHARE * len(ORIGINAL_KEYS)


def _refuse_original_batches(p: Path, d: dict) -> None:
    """The original read training_batch_size / inference_batch_size as tile sides (B means
    B x B-pixel tiles in raster order); here they count pixels. Running such a file unchanged
    would silently mean something else, so it is refused with what to write instead."""
    given = {k: d.get(k) for k in ("training_batch_size", "inference_batch_size")
             if d.get(k) not in (None, "null", "~")}
    if not given:
        return
    sides = []
    for k, v in given.items():
        try:
            side = int(float(v))
        except (TypeError, ValueError):
            return          # not a number: from_dict names the key and the type
        sides.append(f"{k}: {v} ({side} x {side}-pixel tiles)")
    fixes = []
    if "training_batch_size" in given:
        side = int(float(given["training_batch_size"]))
        fixes.append(f"training_batch_size: {side * side} for shuffled batches of as many pixels, or null "
                     f"for all pixels at once (the default)")
    if "inference_batch_size" in given:
        side = int(float(given["inference_batch_size"]))
        fixes.append(f"inference_batch_size: {side * side} (pixels; the result is the same for any value) "
                     f"or null (automatic)")
    raise InputError(f"config file '{p}' is in the original implementation's format, where "
                     f"{' and '.join(sides)} are tile sides; here batch sizes count pixels, so write "
                     f"{'; and '.join(fixes)}")


def _kind(name: str) -> str:
    t = str(_FIELD_TYPES[name])
    for k in ("bool", "int", "float"):
        if k in t:
            return k
    if "list" in t:
        return "list"
    return "str"


def _coerce(name: str, value: Any) -> Any:
    """Bring a value from YAML/JSON/--set to the field's type, or refuse."""
    if name == "spec_prior":     # true | false | auto | null (= auto, the original template's value)
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        return _coerce_plain(name, value)
    if name == "refine_subspace" and isinstance(value, str) and value.strip().lower() == "auto":
        return None             # null's meaning, by its name (sensors/subspace.py)
    return _coerce_plain(name, value)


def _coerce_plain(name: str, value: Any) -> Any:
    kind = _kind(name)
    optional = "Optional" in str(_FIELD_TYPES[name])
    if value is None or (isinstance(value, str) and value.strip().lower() in ("null", "none", "~")):
        if optional:
            return None
        raise InputError(f"config key '{name}' must not be null")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.strip().lower() in ("true", "yes", "1")
        raise InputError(f"config key '{name}' must be true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, bool):
            raise InputError(f"config key '{name}' must be an integer, got {value!r}")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise InputError(f"config key '{name}' must be an integer, got {value!r}") from None
        if not f.is_integer():
            raise InputError(f"config key '{name}' must be an integer, got {value!r}")
        return int(f)
    if kind == "float":
        if isinstance(value, bool):
            raise InputError(f"config key '{name}' must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InputError(f"config key '{name}' must be a number, got {value!r}") from None
    if kind == "list":   # wavelengths: a file name or a list of numbers
        if isinstance(value, (list, tuple)):
            try:
                return [float(v) for v in value]
            except (TypeError, ValueError):
                raise InputError(f"config key '{name}' must be a file or a list of numbers") from None
        if isinstance(value, str):
            return value
        raise InputError(f"config key '{name}' must be a file or a list of numbers, got {value!r}")
    if not isinstance(value, str):
        raise InputError(f"config key '{name}' must be a string, got {value!r}")
    return value


def _choice(name, value, allowed):
    if value not in allowed:
        raise InputError(f"config key '{name}' is {value!r}; allowed: {', '.join(map(str, allowed))}")


def _positive(name, value, strict=True):
    if value is not None and (value <= 0 if strict else value < 0):
        raise InputError(f"config key '{name}' must be {'> 0' if strict else '>= 0'}, got {value}")


# Keys where NaN means something (a file's nodata value); every other number must be finite:
# NaN slips through every `<` / `>` test below (`sigma: nan`, `refine_trust: .inf` were taken).
NAN_ALLOWED = ("nodata",)


def _finite_numbers(c: FusionConfig) -> None:
    for f in fields(c):
        v = getattr(c, f.name)
        if isinstance(v, float) and not math.isfinite(v) and f.name not in NAN_ALLOWED:
            raise InputError(f"config key '{f.name}' must be a finite number, got {v}")


def _validate(c: FusionConfig) -> None:
    _finite_numbers(c)
    _choice("psf_type", c.psf_type, PSF_TYPES)
    _choice("scheduler", c.scheduler, SCHEDULERS)
    _choice("device", c.device, DEVICES)
    _choice("output_file_type", c.output_file_type, OUTPUT_TYPES)
    _choice("figure_format", c.figure_format, FIGURE_FORMATS)
    _choice("srf_source", c.srf_source, SRF_SOURCES)
    if c.msi_camera is not None:
        _choice("msi_camera", c.msi_camera, tuple(CAMERAS))
    _choice("training_input", c.training_input, TRAINING_INPUTS)
    _choice("psf_estimation", c.psf_estimation, PSF_ESTIMATIONS)
    _choice("output_scale", c.output_scale, OUTPUT_SCALES)
    _choice("align", c.align, ALIGN_MODES)
    _choice("method", c.method, METHODS)
    if not (c.spec_prior is None or isinstance(c.spec_prior, bool) or c.spec_prior == "auto"):
        raise InputError(f"config key 'spec_prior' is {c.spec_prior!r}; allowed: auto, true, false, null (= auto)")
    if c.refine_iterations < 1:
        raise InputError(f"config key 'refine_iterations' must be >= 1, got {c.refine_iterations}")
    if c.refine_subspace is not None and c.refine_subspace != "auto" and (
            isinstance(c.refine_subspace, (bool, str)) or c.refine_subspace < 1):
        raise InputError(f"config key 'refine_subspace' must be >= 1 or null (auto: estimated), "
                         f"got {c.refine_subspace!r}")
    _positive("refine_trust", c.refine_trust)
    _positive("refine_msi_weight", c.refine_msi_weight, strict=False)
    _positive("refine_tv_weight", c.refine_tv_weight, strict=False)
    _choice("endmember_method", c.endmember_method, ENDMEMBER_METHODS)
    for k in ("nmf_max_iter", "hysure_iterations", "hysure_subspace"):
        if getattr(c, k) < 1:
            raise InputError(f"config key '{k}' must be >= 1, got {getattr(c, k)}")
    for k in ("nmf_tol", "hysure_tv_weight", "hysure_msi_weight"):
        _positive(k, getattr(c, k), strict=False)
    for k in ("init_lr", "max_lr", "final_lr"):
        if not getattr(c, k) > 0:
            raise InputError(f"config key '{k}' (learning rate) must be > 0, got {getattr(c, k)}")
    if c.epochs < 1:
        raise InputError(f"config key 'epochs' must be >= 1, got {c.epochs}")
    if c.num_endmembers < 1:
        raise InputError(f"config key 'num_endmembers' must be >= 1, got {c.num_endmembers}")
    for k in ("hidden_size", "prior_downsample", "kernel_size"):
        if getattr(c, k) < 1:
            raise InputError(f"config key '{k}' must be >= 1, got {getattr(c, k)}")
    if c.max_training_pixels is not None and c.max_training_pixels < 1:
        raise InputError(f"config key 'max_training_pixels' must be >= 1 or null (all LR pixels), "
                         f"got {c.max_training_pixels}")
    for k in ("training_batch_size", "inference_batch_size"):
        v = getattr(c, k)
        if v is not None and v < 1:
            raise InputError(f"config key '{k}' (batch size) must be >= 1 or null (all pixels), got {v}")
    if c.downsample_ratio < 2:
        raise InputError(f"config key 'downsample_ratio' must be an integer >= 2, got {c.downsample_ratio}")
    if c.psf_type != "delta":
        _positive("sigma", c.sigma)
    _positive("fwhm_factor", c.fwhm_factor)
    if c.num_msi_bands < 1:
        raise InputError(f"config key 'num_msi_bands' must be >= 1, got {c.num_msi_bands}")
    if c.num_bands_msi_non_synthetic is not None and c.num_bands_msi_non_synthetic < 1:
        raise InputError("config key 'num_bands_msi_non_synthetic' must be >= 1 or null")
    if c.srf_source == "file" and not c.srf_file:
        raise InputError("config key 'srf_source' is 'file' but 'srf_file' is not set")
    if c.provide_psf and not c.psf_file:
        raise InputError("config key 'provide_psf' is true but 'psf_file' is not set")
    if c.provide_srf and not c.srf_file:
        raise InputError("config key 'provide_srf' is true but 'srf_file' is not set")


def from_dict(d: dict) -> FusionConfig:
    """Build a config from a mapping; unknown keys are refused by name."""
    if not isinstance(d, dict):
        raise InputError("a config must be a mapping of key: value")
    odd = [k for k in d if not isinstance(k, str)]
    if odd:
        raise InputError(f"config keys must be names, got {odd[0]!r}")
    unknown = sorted(set(d) - set(KEYS))
    if unknown:
        raise InputError(f"unknown config key(s): {', '.join(unknown)} (known keys: {', '.join(KEYS)})")
    return FusionConfig(**{k: _coerce(k, v) for k, v in d.items()})


# A config is a few kB of flat key: value lines; anything far bigger or deeper is not one, and
# the YAML/JSON parsers recurse (slowly) on each bracket level.
_MAX_CONFIG_BYTES = 1 << 20
_MAX_CONFIG_NESTING = 16


def _nesting(text: str) -> int:
    """Deepest bracket nesting of a YAML/JSON text (brackets inside quotes not counted)."""
    depth = deepest = 0
    quote = None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    return deepest


def load_config(path: Union[str, Path]) -> FusionConfig:
    """Load YAML (.yaml/.yml) or JSON (.json) from `path`."""
    from ..io import _check_file
    p = _check_file(path, "config")
    if p.stat().st_size > _MAX_CONFIG_BYTES:
        raise InputError(f"config file '{p}' is {p.stat().st_size} bytes: too big for a config "
                         f"(is it the right file?)")
    try:
        text = p.read_text(encoding="utf-8-sig")
        if _nesting(text) > _MAX_CONFIG_NESTING:
            raise InputError(f"config file '{p}' nests brackets more than {_MAX_CONFIG_NESTING} deep")
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError, RecursionError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"config file '{p}' cannot be parsed: {first}") from None
    if data is None:
        raise InputError(f"config file '{p}' is empty")
    if not isinstance(data, dict):
        raise InputError(f"config file '{p}' must hold a mapping of key: value")
    try:
        if is_original_format(data):
            _refuse_original_batches(p, data)
        return from_dict(data)
    except InputError as exc:
        if str(exc).startswith(f"config file '{p}'"):
            raise
        raise InputError(f"{p}: {exc}") from None


def parse_override(text: str) -> tuple:
    """'key=value' -> (key, value), the value read as YAML (so 1e-3, null, true work)."""
    if "=" not in text:
        raise InputError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if key not in KEYS:
        raise InputError(f"unknown config key '{key}' in --set (known keys: {', '.join(KEYS)})")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(config: FusionConfig, overrides) -> FusionConfig:
    changes = dict(parse_override(o) for o in overrides or ())
    return from_dict({**config.to_dict(), **changes}) if changes else config


def save_config(config: FusionConfig, path: Union[str, Path]) -> None:
    """Write YAML or JSON (by suffix) atomically; the file loads back unchanged."""
    from ..io import atomic_write_text
    p = Path(path)
    d = config.to_dict()
    if p.suffix.lower() == ".json":
        # JSON has no NaN (`nodata: nan`): written as the string "nan", which loads back as NaN
        d = {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
        text = json.dumps(d, indent=2, allow_nan=False)
    else:
        text = yaml.safe_dump(d, sort_keys=False)
    atomic_write_text(p, text)
