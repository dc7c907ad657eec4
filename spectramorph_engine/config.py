"""The one configuration object of a fusion run.

Keys are those of the original implementation's `main.py` template (so its
YAML/JSON files load unchanged) plus `scheduler`, `device`, `srf_source`,
`training_input` and `wavelengths`. Validation lives here and only here:
every refusal is an `InputError` naming the key and what is allowed.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from .errors import InputError

PSF_TYPES = ("gaussian", "kolmogorov", "airy", "moffat", "sinc", "lorentzian2",
             "hermite", "parabolic", "gabor", "delta")
SRF_PRESET_BANDS = (1, 3, 4, 8, 16)
SCHEDULERS = ("one_cycle", "flat")
DEVICES = ("auto", "cpu", "cuda", "mps")
OUTPUT_TYPES = ("numpy", "matlab", "h5")
FIGURE_FORMATS = ("png", "jpg")
SRF_SOURCES = ("auto", "file", "preset", "estimate")
TRAINING_INPUTS = ("auto", "srf", "msi_lr")


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
    inference_batch_size: Optional[int] = None   # pixels per batch; null = automatic
    num_endmembers: int = 7
    spec_prior: Optional[bool] = None
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
    training_input: str = "auto"
    wavelengths: Optional[Union[str, list]] = None   # file, or list of nm

    def __post_init__(self):
        _validate(self)

    # -- conversions -------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "FusionConfig":
        return from_dict({**self.to_dict(), **changes})

    @property
    def use_prior(self) -> bool:
        return bool(self.spec_prior)


KEYS = tuple(f.name for f in fields(FusionConfig))
_FIELD_TYPES = {f.name: f.type for f in fields(FusionConfig)}


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


def _validate(c: FusionConfig) -> None:
    _choice("psf_type", c.psf_type, PSF_TYPES)
    _choice("scheduler", c.scheduler, SCHEDULERS)
    _choice("device", c.device, DEVICES)
    _choice("output_file_type", c.output_file_type, OUTPUT_TYPES)
    _choice("figure_format", c.figure_format, FIGURE_FORMATS)
    _choice("srf_source", c.srf_source, SRF_SOURCES)
    _choice("training_input", c.training_input, TRAINING_INPUTS)
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
    unknown = sorted(set(d) - set(KEYS))
    if unknown:
        raise InputError(f"unknown config key(s): {', '.join(unknown)} (known keys: {', '.join(KEYS)})")
    return FusionConfig(**{k: _coerce(k, v) for k, v in d.items()})


def load_config(path: Union[str, Path]) -> FusionConfig:
    """Load YAML (.yaml/.yml) or JSON (.json) from `path`."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file '{p}' does not exist")
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"config file '{p}' cannot be parsed: {first}") from None
    if data is None:
        raise InputError(f"config file '{p}' is empty")
    if not isinstance(data, dict):
        raise InputError(f"config file '{p}' must hold a mapping of key: value")
    try:
        return from_dict(data)
    except InputError as exc:
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
    from .io import atomic_write_text
    p = Path(path)
    d = config.to_dict()
    text = json.dumps(d, indent=2) if p.suffix.lower() == ".json" else yaml.safe_dump(d, sort_keys=False)
    atomic_write_text(p, text)
