"""What a run takes and gives: `FusionInputs` (arrays instead of files), `PreparedInputs` (the
normalised pair, PSF and SRF a method fuses) and `FusionResult` (the result, its scores and
provenance).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from .config import FusionConfig


@dataclass
class FusionInputs:
    """Arrays already in memory; a field left None is loaded from the config's files."""
    truth: Optional[np.ndarray] = None
    hr_msi: Optional[np.ndarray] = None
    lr_hsi: Optional[np.ndarray] = None
    wavelengths: Optional[np.ndarray] = None
    hr_geo: object = None          # georef.GeoInfo of in-memory arrays (georeferencing, nodata value)
    lr_geo: object = None
    hr_camera: Optional[str] = None    # the named camera of an HR-MSI product (io Cube.camera), used as msi_camera
    # The pair already prepared by prepare_inputs for the same config and arrays (the app
    # prepares a pair when it is opened): used as it is, nothing read or fitted again, and
    # shared with whoever holds it (a run never writes into its arrays)
    prepared: Optional["PreparedInputs"] = None


@dataclass
class PreparedInputs:
    mode: str                      # "synthetic" | "real"
    hr_msi: np.ndarray             # H x W x c, float32 in [0,1]
    lr_hsi: np.ndarray             # h x w x C, float32 in [0,1]
    srf: np.ndarray                # c x C, rows sum to 1 (the SRF the user sees)
    ratio: int
    psf: Optional[np.ndarray]      # k x k, sums to 1
    truth: Optional[np.ndarray] = None
    wavelengths: Optional[np.ndarray] = None
    srf_note: str = ""
    training_input: str = "srf"    # "srf" | "msi_lr"
    srf_estimate: object = None    # srf_estimation.SrfEstimate when estimated
    srf_fit: Optional[dict] = None  # how well the SRF in use explains the pair (real mode)
    warnings: list = field(default_factory=list)
    psf_note: str = ""             # where the PSF came from (real mode: file, estimated, config)
    psf_fitted_sigma: Optional[float] = None   # real mode: width (px) of the Gaussian blur fitted on the pair, when fitted
    psf_estimate: object = None    # psf_estimation.PsfEstimate when a free-form kernel was fitted (real mode)
    srf_gain_offset: Optional[tuple] = None  # (gain (c,), offset (c,)) fitted for an SRF file
    # How the LR-HSI's blur treats the image border: "zero" (padding with zeros, as this engine
    # degrades: synthetic pairs, the reduced-resolution pair) or "free" (a real sensor saw past
    # the frame). None: from the mode.
    boundary: Optional[str] = None
    # Real mode: the LR-HSI in its own units is lr_hsi * span + offset (its 1st and 99th
    # percentiles map to 0 and 1; nothing is clipped). None in synthetic mode.
    lr_units: Optional[Tuple[float, float]] = None     # (offset, span)
    geo: object = None             # georef.GeoInfo of the HR grid (the result's), when the HR-MSI file has one
    masks: object = None           # NodataMasks of a real pair with nodata pixels, else None
    alignment: Optional[dict] = None   # what align: auto did to a georeferenced pair (run/alignment.py), else None

    @property
    def lr_valid(self) -> Optional[np.ndarray]:
        """h x w bool of the LR pixels that learning and the scores use (None: all)."""
        return None if self.masks is None else ~self.masks.lr_out

    @property
    def num_hsi_bands(self) -> int:
        return self.lr_hsi.shape[2]

    @property
    def value_range(self) -> Tuple[float, Optional[float]]:
        """(low, high or None) a result is clipped to, in the engine's scale: [0, 1] for a
        synthetic pair (the paper's convention); for a real pair no upper bound (bright pixels
        stay bright) and the LR-HSI's own floor below (its minimum, or 0 when that is higher)."""
        if self.lr_units is None:
            return 0.0, 1.0
        return min(0.0, float(np.min(self.lr_hsi))), None

    def msi_model(self):
        """(srf c x C float64, offset (c,) float64) with HR-MSI ~ HR-HSI @ srf.T + offset, in the
        normalised units of the pair: the SRF in use with the gain and offset fitted on a real
        pair (an estimated SRF, or an SRF file); the plain SRF and a zero offset otherwise."""
        srf = np.asarray(self.srf, dtype=np.float64)
        offset = np.zeros(srf.shape[0])
        if self.srf_estimate is not None:
            srf = np.asarray(self.srf_estimate.srf, dtype=np.float64)
            offset = np.asarray(self.srf_estimate.offset, dtype=np.float64).reshape(-1)
        elif self.srf_gain_offset is not None:
            gain, off = self.srf_gain_offset
            srf = np.asarray(gain, dtype=np.float64).reshape(-1, 1) * srf
            offset = np.asarray(off, dtype=np.float64).reshape(-1)
        return srf, offset


@dataclass
class FusionResult:
    hr_hsi: np.ndarray
    endmembers: np.ndarray
    alle: np.ndarray
    loss_history: list
    lr_history: list
    prepared: PreparedInputs
    metrics: Optional[dict] = None
    bicubic_metrics: Optional[dict] = None
    consistency: Optional[dict] = None
    timings: dict = field(default_factory=dict)
    device: str = "cpu"
    output_files: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    method: str = "spectramorph"
    method_info: dict = field(default_factory=dict)   # method-specific facts (prior used, refinement, ...)
    selection: Optional[dict] = None                   # auto_select's candidates, scores and choice
    config_used: Optional[FusionConfig] = None         # the settings the result was made with
    # "input": hr_hsi and endmembers are in the LR-HSI's own units (real mode, output_scale
    # input); "normalized": in the engine's [0, 1] scale (synthetic mode, or output_scale normalized)
    units: str = "normalized"
    # Real mode: h x w x 2 float32 per LR pixel -- [0] how far the HR-MSI (brought to the LR grid)
    # and the LR-HSI seen through the SRF disagree, [1] how far the result degraded back is from
    # the LR-HSI; RMS in the engine's [0, 1] scale; NaN where left out (nodata)
    misfit: Optional[np.ndarray] = None
    # Training ended early by the finish token: {"epoch": epochs run, "epochs": epochs configured};
    # None when training ran to its end (or the method trains no network)
    training_stopped: Optional[dict] = None

    @property
    def final_loss(self) -> Optional[float]:
        return self.loss_history[-1] if self.loss_history else None

    @property
    def psf(self) -> Optional[np.ndarray]:
        """The blur kernel the run used: synthetic mode's, the file's, or the one estimated on a
        real pair (prepared.psf_note says which)."""
        return None if self.prepared is None else self.prepared.psf
