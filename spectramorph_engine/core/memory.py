"""Will it fit? Peak memory estimated from the shapes, before anything big is allocated.

A run that does not fit in memory should end with a sentence, not with the
operating system killing the process halfway. Two checks, both refusing with
an `InputError` that gives the estimate and the memory available:

- `require(nbytes, what)`: before one big allocation, e.g. an eager load of a
  cube (io.load_cube reads the declared shape from the header first);
- `check_run(config, prep, streaming)`: once the inputs are loaded and before
  the fusion allocates its working arrays, the peak of the stages still to
  come, from the shapes and the chosen streaming (a streamed result is not
  held in memory).

The estimate counts the engine's big arrays (see `estimate_run`); the
interpreter, torch and the libraries come on top, so only `HEADROOM` of the
available memory is offered to them.
"""
from __future__ import annotations

import functools
from typing import Dict, Optional

from .errors import InputError

# share of the available memory the big arrays may take (the rest: libraries, the OS)
HEADROOM = 0.9
# The refinement's own working memory (memory.estimate_refinement) beyond which it runs tile by
# tile even where more is available: a default 2048 x 2048 x 200 run stays under SPEC's 1.5 GB
# (its whole-scene solve needs ~1.2 GB there, on top of the ~0.95 GB the run holds before it;
# bench/README.md, "The whole default run"). At 1024^2 the whole solve (~0.3 GB) is within it.
REFINE_BUDGET_BYTES = 500 * 10 ** 6
# pixels per inference block on the CPU (inference.default_batch) and a margin for its copies
_INFER_BLOCK = 16384


def available_bytes() -> int:
    """Memory the system can give this process now (psutil's 'available')."""
    import psutil
    return int(psutil.virtual_memory().available)


def fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def require(nbytes: int, what: str, advice: str = "") -> None:
    """Refuse `what` (a phrase: "loading 'x.h5'") when `nbytes` cannot fit in memory now."""
    available = available_bytes()
    if nbytes > HEADROOM * available:
        raise InputError(f"{what} needs about {fmt_bytes(nbytes)} of memory but only {fmt_bytes(available)} "
                         f"is available{'; ' + advice if advice else ''}")


def estimate_run(config, hr_shape, lr_shape, synthetic: bool, streaming: bool) -> Dict[str, int]:
    """Bytes the stages after loading add to the inputs already held, per stage:
    {"endmembers", "training", "inference", "scoring", "peak"}; float32 arrays unless noted.

    endmembers: the LR pixels as a matrix, the NMF factors and their products;
    training: the inputs (MSI [+ prior]) and targets, and their transposed copies;
    inference: the latent maps (H x W x K), the result (unless streamed to its file) and the
    working block; scoring: synthetic mode adds the bicubic baseline (H x W x C) and band
    temporaries, real mode the consistency buffers (two float64 H x W x c predictions and
    band chunks) and the reduced-resolution fusion (a run r^2 times smaller).
    """
    H, W = int(hr_shape[0]), int(hr_shape[1])
    c = int(hr_shape[2]) if len(hr_shape) == 3 else 1
    h, w, C = (int(v) for v in lr_shape)
    n, p = h * w, H * W
    k = int(getattr(config, "num_endmembers", 7))
    hidden = int(getattr(config, "hidden_size", 1024))
    prior = getattr(config, "spec_prior", "auto") is not False     # auto may turn it on
    inputs = c + (C if prior else 0)
    parts = {
        "endmembers": 4 * n * (C + 3 * k) + 8 * C * C,
        "training": 4 * n * (inputs + C) * 2,
    }
    result = 0 if streaming else 4 * p * C
    block = 4 * _INFER_BLOCK * (hidden + inputs + 2 * C)
    parts["inference"] = 4 * p * k + result + block
    if synthetic:
        scoring = 4 * p * C + 8 * 4 * p               # bicubic cube, float64 band temporaries
    else:
        # two float64 MSI predictions, a few 32 MB band chunks, and the reduced-resolution
        # check: its result, its bicubic twin and its reference (h x w x C each)
        scoring = 2 * 8 * p * c + 6 * (32 << 20) + 3 * 4 * n * C
    parts["scoring"] = 4 * p * k + result + scoring
    parts["peak"] = max(parts["endmembers"], parts["training"], parts["inference"], parts["scoring"])
    return parts


def check_run(config, prep, streaming: bool, available: Optional[int] = None) -> Dict[str, int]:
    """Refuse a run whose remaining stages cannot fit (see module doc); returns the estimate."""
    parts = estimate_run(config, prep.hr_msi.shape, prep.lr_hsi.shape, prep.truth is not None, streaming)
    available = available_bytes() if available is None else available
    if parts["peak"] > HEADROOM * available:
        worst = max((k for k in parts if k != "peak"), key=lambda k: parts[k])
        advice = ("output_file_type h5 or numpy streams a real-world result to its file instead of holding it"
                  if not streaming and prep.truth is None else
                  "a smaller scene (or a crop) or a machine with more memory")
        raise InputError(f"this run would need about {fmt_bytes(parts['peak'])} of memory beyond its inputs "
                         f"(most in {worst}: HR {prep.hr_msi.shape[0]} x {prep.hr_msi.shape[1]}, "
                         f"{prep.lr_hsi.shape[2]} bands) but only {fmt_bytes(available)} is available; "
                         f"try {advice}")
    return parts


def estimate_refinement(hr_shape, subspace: int, num_latents: int, tv: bool, margin=(0, 0)) -> int:
    """Bytes the refinement's solve holds for an H x W scene (hr_shape: H, W, c), float32:
    with TV, HySure's ADMM on its grid (the frame plus `margin` (rows, cols) of blur reach each
    side): the iterate, its blur, three duals, one channel's half spectra and a block's
    temporaries (methods/hysure_admm.py: ~6 P planes; measured at 2048^2, P 10: the solve adds
    1487 MiB, 8.4 P-plane images with the right-hand sides), the MSI/prior right-hand side;
    without TV, the conjugate
    gradients' five P-plane vectors, the operator's temporaries and the latents (K planes)."""
    H, W = int(hr_shape[0]), int(hr_shape[1])
    c = int(hr_shape[2]) if len(hr_shape) > 2 else 1
    P, K = int(subspace), int(num_latents)
    if tv:
        grid = (H + 2 * int(margin[0])) * (W + 2 * int(margin[1]))
        return 4 * grid * (6 * P + 4) + 4 * H * W * (2 * P + c)
    return 4 * H * W * (8 * P + 2 * K + c)


def fits(nbytes: int, available: Optional[int] = None) -> bool:
    """Whether `nbytes` more fit in the memory available now (HEADROOM of it)."""
    available = available_bytes() if available is None else available
    return nbytes <= HEADROOM * available


def release_free_memory() -> None:
    """Give back to the system what the C allocator keeps after a stage's arrays are freed
    (glibc's malloc_trim; nothing elsewhere). Without it the freed blocks of one stage stay
    resident, and the next stage's peak sits on top of them when its arrays do not fit in
    the same holes."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, looked up once (finding the C library can start a subprocess);
    None off Linux or on other C libraries (musl has none)."""
    import ctypes
    import ctypes.util
    import sys
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim
