"""Fusion methods behind one small interface.

Each method is one module with
    NAME: str                     the `method` config value
    TITLE: str                    what the app shows
    USES: dict                    which inputs/sensor models it uses, e.g.
                                  {"psf": "...", "srf": "...", "ignores": "..."} (sentences for the app)
    fuse(config, prep, *, device, progress=None, cancel=None, out_hsi=None) -> MethodOutput
so the pipeline, the bench and the app pick a method by name (`get_method`) and never
branch on it elsewhere. `prep` is a run.results.PreparedInputs: the normalised pair, the
PSF (given, or the blur fitted on a real pair) and the SRF in use (`prep.msi_model()`
gives the c x C matrix and per-band offset that map the LR-HSI's units onto the HR-MSI's).
Every method honours the cancel token (events.check_cancel) at least every ~0.2 s and
reports StageProgress for its stage. A method that trains and can stop training early with a
usable result sets HONOURS_FINISH = True and takes `finish` (a threading.Event) too; the
pipeline passes it only to those. A method whose result starts from endmembers of the LR-HSI
sets TAKES_ENDMEMBERS = True and takes `endmembers` (K x C, those its own extraction would give
for this pair and settings; None: extract them): auto-selection fuses one reduced pair with
several candidates, and those that differ in neither K nor the extraction share them.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..core.errors import InputError

METHOD_NAMES = ("spectramorph", "glp", "hysure")


@dataclass
class MethodOutput:
    hr_hsi: object                              # H x W x C float32 array (or the out_hsi it filled)
    endmembers: Optional[np.ndarray] = None     # K x C (SpectraMorph only)
    alle: Optional[np.ndarray] = None           # H x W x K (SpectraMorph only)
    loss_history: list = field(default_factory=list)   # training loss per epoch / objective per iteration
    lr_history: list = field(default_factory=list)     # learning rate per epoch (SpectraMorph only)
    info: dict = field(default_factory=dict)    # method-specific facts for run.json (JSON-able)
    device: str = "cpu"
    # When the result is clip(latents @ basis, 0, 1) (H x W x L and L x C), the pipeline scores it
    # band chunk by band chunk from these instead of holding the whole cube twice. Optional.
    latents: Optional[np.ndarray] = None
    basis: Optional[np.ndarray] = None


def get_method(name: str):
    """The module of method `name` (InputError listing the allowed names otherwise)."""
    if name not in METHOD_NAMES:
        raise InputError(f"config key 'method' is {name!r}; allowed: {', '.join(METHOD_NAMES)}")
    return importlib.import_module(f"{__name__}.{name}")
