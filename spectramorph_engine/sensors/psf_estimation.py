"""Blind PSF estimation: a free-form blur kernel read from an HR-MSI / LR-HSI pair (issue 19).

Why: every real pair is blind (nobody hands the user the PSF), and real optics are not an
isotropic Gaussian: anisotropic and rotated, heavy-tailed, off-centre by a fraction of a pixel
(a misregistration is an off-centre kernel too). A Gaussian width picked from six values cost
0.65 dB on a held-out real scene against the true PSF.

Model. Seen through the SRF, the LR-HSI is the HR-MSI degraded by the spatial model
(sensors.spatial: true convolution with the kernel, then the mean of each r x r block):

    z_k = lr_hsi @ srf_k + offset_k  ~=  area_downsample(kernel * hr_msi_k, r)     per MSI band k

which is linear in the kernel's taps: LR pixel (i, j) is sum_ab kernel[a, b] *
box(hr_k)[r i - (a - R), r j - (b - R)], box = the mean over the r x r block starting there.
So the kernel is a regularised least-squares fit over all MSI bands and LR pixels
(the idea of HySure's sensor-response estimation, Simoes et al. 2015, written from the paper):

    minimise  sum_k ||Phi_k p - z_k||^2 + lam ||grad p||^2   over p >= 0 on a (2R+1)^2 support

grad = first differences across and down the kernel with zeros past its support (so the
kernel is pushed to fall to zero at the support's edge). Only the Gram matrix Phi^T Phi
(T x T, T = taps) is needed, so the pixels' count does not matter past one pass; the exact
nonnegative solution is an NNLS of size T on the Cholesky factor.

Choices:
- Support and smoothness from the data, by 2-fold hold-out on the checkerboard of LR blocks
  the SRF fit uses: first mu in SMOOTHNESS_GRID on the widest support (2r, at most MAX_RADIUS,
  reaching 3 sigma of the starting Gaussian), the largest mu within HOLDOUT_TOLERANCE of the
  best; then, at that mu, the smallest radius in {r/2, r, 3r/2, 2r} within the tolerance (the
  data do not argue for more). Gram matrices of smaller supports are sub-matrices of the
  largest one's. Later rounds of refine_blur keep the first's support and smoothness.
- A misregistered pair (the LR-HSI displaced against the HR-MSI: coregistration) starts from
  Gaussians centred where it is displaced, when they explain the pair better than the centred
  ones (misregistered_start): the SRF fitted through a centred Gaussian takes up the shift on a
  small pair, and the alternation does not leave that start in a few rounds.
- Only interior LR pixels are used (their footprint stays inside the HR frame), so the image
  border's rule does not enter; with nodata masks, only pixels whose footprint holds data.
- A heavy-tailed Moffat profile with an off-centre shift (psf_parametric.py: four numbers) is
  fitted on the same moments and held out the same way, over a support reaching MOFFAT_REACH
  LR pixels (at most MAX_RADIUS; the free form's widest is 2r): a wide halo is more than the
  free form's hold-out lets it reach on a pair with few equations (one band at ratio 8), and
  four numbers fit it. Of the two, the better held-out predictor is kept. The wider support:
  the blind bench's Moffat PSF at ratio 4 reaches 12 HR px; fitted within 8 it came out too
  heavy-tailed (kernel error 0.18 -> 0.11 within 12, usgs-b seeds 1-3; bench/README.md).
- A kernel read from the pair (free form or Moffat) is kept only when it predicts the held-out
  pixels FREE_FORM_MIN_GAIN better than the Gaussian it started from (the Gaussian given its
  best gain): a safety net
  where the pair cannot tell (a flat scene, a tiny pair) or where what the free form gains is
  a non-linear camera's misfit, not blur. Measured: on the blind bench's PSFs outside the
  Gaussian family the free form predicts 27-80% better; under a gamma-1/2.2 camera whose blur is
  a Gaussian 0.3-2.8% better, and there it cost 0.35 dB (real-camera scenario, seed 0).
- The kernel is normalised to sum 1 (the SRF's gain carries the scale) and its all-but-zero
  outer rings are trimmed (ratio-sized symmetric trimming keeps it centred).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import nnls

from . import psf_parametric
from .srf_estimation import DEFAULT_PSF_SIGMAS, MAX_ESTIMATION_LR_SIDE, central_crop, gaussian_kernel
from ..core.errors import InputError
from ..core.events import check_cancel

log = logging.getLogger(__name__)

MAX_RADIUS = 16                   # HR pixels: a 33 x 33 kernel at most (1089 taps)
MOFFAT_REACH = 3                  # the Moffat's support reaches this many LR pixels (at most MAX_RADIUS)
SMOOTHNESS_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
HOLDOUT_TOLERANCE = 0.01          # held-out SSE within 1% of the best counts as as good
MAX_DESIGN_VALUES = 6_000_000     # pixels x taps per band in one design block (48 MB float64)
MAX_FIT_PIXELS = 12000            # LR pixels used at most (evenly strided): with c bands, 10-40x more
                                  # equations than the 1089 taps of the widest support
FREE_FORM_MIN_GAIN = 0.05         # held-out RMSE the free form must save over the Gaussian
TRIM_MASS = 1e-4                  # outer rings holding less than this share of the mass are cut
MIN_PIXELS = 50


@dataclass(frozen=True)
class PsfEstimate:
    """A blur kernel fitted to an image pair; see the module docstring."""
    kernel: np.ndarray            # (2R+1)^2 float64, >= 0, sums to 1, centred
    form: str                     # "free-form" | "moffat" | "gaussian" (neither predicted better)
    radius: int                   # the free form's support radius chosen by hold-out (HR pixels)
    smoothness: float             # mu chosen by hold-out
    holdout_rmse: float           # held-out RMSE of the free-form fit (per LR value)
    gaussian_sigma: float         # the Gaussian the estimate started from
    gaussian_holdout_rmse: float  # the same figure for that Gaussian (best gain)
    pixels_used: int = 0
    scores: dict = field(default_factory=dict)   # "R=..,mu=.." -> held-out RMSE
    moffat_holdout_rmse: float = float("nan")     # the same figure for the Moffat kernel (psf_parametric)
    moffat: Optional[tuple] = None                # its (alpha, beta, dy, dx), HR pixels

    @property
    def estimated(self) -> bool:
        """The kernel is one read from the pair (free form or Moffat), not the Gaussian kept."""
        return self.form != "gaussian"

    @property
    def kept_holdout_rmse(self) -> float:
        return {"free-form": self.holdout_rmse, "moffat": self.moffat_holdout_rmse}.get(
            self.form, self.gaussian_holdout_rmse)

    def summary(self) -> str:
        shape = f"{self.form} blur kernel {self.kernel.shape[0]} x {self.kernel.shape[1]}"
        if self.form == "moffat":
            a, b, dy, dx = self.moffat
            shape += f" (alpha {a:.2f} px, beta {b:.2f}, centre {dy:+.2f}, {dx:+.2f} px)"
        return (f"{shape} (held-out misfit {self.kept_holdout_rmse:.4g}; free form {self.holdout_rmse:.4g}, "
                f"Moffat {self.moffat_holdout_rmse:.4g}, Gaussian sigma {self.gaussian_sigma:g} px "
                f"{self.gaussian_holdout_rmse:.4g})")


def box_mean(band: np.ndarray, r: int) -> np.ndarray:
    """(H-r+1, W-r+1): the mean of the r x r block whose top-left corner is at each position."""
    c = np.zeros((band.shape[0] + 1, band.shape[1] + 1))
    c[1:, 1:] = np.cumsum(np.cumsum(band, axis=0, dtype=np.float64), axis=1)
    return (c[r:, r:] - c[:-r, r:] - c[r:, :-r] + c[:-r, :-r]) / (r * r)


def tap_design(box: np.ndarray, rows: np.ndarray, cols: np.ndarray, r: int, R: int) -> np.ndarray:
    """(N, (2R+1)^2): for LR pixels (rows[n], cols[n]), the value each kernel tap contributes
    (row-major taps, offsets -R..R): box[r*i - (a - R), r*j - (b - R)] -- the spatial model's
    convolution and area mean (sensors.spatial) written as a linear map of the kernel."""
    off = np.arange(-R, R + 1)
    py = r * rows[:, None] - off[None, :]            # (N, 2R+1)
    px = r * cols[:, None] - off[None, :]
    return box[py[:, :, None], px[:, None, :]].reshape(rows.size, -1)


def gradient_penalty(R: int) -> np.ndarray:
    """T x T matrix of ||grad p||^2 for a (2R+1)^2 kernel with zeros past its edge."""
    n = 2 * R + 1
    D1 = np.eye(n + 1, n, k=0) - np.eye(n + 1, n, k=-1)      # (n+1, n): differences incl. both edges
    L1 = D1.T @ D1
    eye = np.eye(n)
    return np.kron(L1, eye) + np.kron(eye, L1)


def _taps_within(R_big: int, R: int) -> np.ndarray:
    off = np.arange(-R_big, R_big + 1)
    inside = (np.abs(off) <= R)
    return np.flatnonzero(np.outer(inside, inside).ravel())


class _Moments:
    """Gram matrices of the design for the two hold-out folds (0, 1) and their sum."""

    def __init__(self, G, g, zz, n):
        self.G, self.g, self.zz, self.n = G, g, zz, n

    def sub(self, idx):
        return _Moments([G[np.ix_(idx, idx)] for G in self.G], [g[idx] for g in self.g], self.zz, self.n)

    def total(self):
        return self.G[0] + self.G[1], self.g[0] + self.g[1], self.zz[0] + self.zz[1]

    @staticmethod
    def sse(p, G, g, zz) -> float:
        return float(p @ G @ p - 2.0 * g @ p + zz)


def _solve(G, g, lam_L) -> np.ndarray:
    """argmin p^T (G + lam_L) p - 2 g^T p over p >= 0 (exact NNLS on the Cholesky factor).
    BLAS on one thread: small matrices, where a multithreaded OpenBLAS on a busy machine spins
    (core.device.single_thread_blas); the big Gram products keep their threads."""
    from ..core.device import single_thread_blas
    with single_thread_blas():
        M = G + lam_L
        M[np.diag_indices_from(M)] += 1e-10 * max(float(np.trace(M)) / M.shape[0], 1e-300)
        U = np.linalg.cholesky(M).T                    # M = U^T U
        rhs = solve_triangular(U, g, trans="T")
        p, _ = nnls(U, rhs, maxiter=30 * M.shape[0])
    return p


def _interior_pixels(h: int, w: int, m: int, usable: Optional[np.ndarray]):
    mask = np.zeros((h, w), dtype=bool)
    mask[m:h - m, m:w - m] = True
    if usable is not None:
        mask &= usable
    rows, cols = np.nonzero(mask)
    if rows.size > MAX_FIT_PIXELS:
        keep = np.linspace(0, rows.size - 1, MAX_FIT_PIXELS).round().astype(int)
        rows, cols = rows[keep], cols[keep]
    return rows, cols


def _moments(hr, z, rows, cols, folds, r, R, cancel, grams=None):
    """The design's moments on the two folds. `grams`: the Gram matrices of an earlier call on
    the same HR-MSI, pixels and support (refine_blur's second round: only the SRF, so only the
    right-hand side, changed); the T x T products are most of the cost."""
    T = (2 * R + 1) ** 2
    G = None if grams is not None else [np.zeros((T, T)), np.zeros((T, T))]
    g = [np.zeros(T), np.zeros(T)]
    zz = [0.0, 0.0]
    step = max(1, MAX_DESIGN_VALUES // T)
    for k in range(hr.shape[2]):
        check_cancel(cancel)
        box = box_mean(hr[:, :, k], r)
        target = z[rows, cols, k]
        for s in range(0, rows.size, step):
            A = tap_design(box, rows[s:s + step], cols[s:s + step], r, R)
            y = target[s:s + step]
            f = folds[s:s + step]
            for which, sel in ((0, f), (1, ~f)):
                As, ys = A[sel], y[sel]
                if G is not None:
                    G[which] += As.T @ As
                g[which] += As.T @ ys
                zz[which] += float(ys @ ys)
    return _Moments(grams if G is None else G, g, zz, rows.size * hr.shape[2])


def _regularised(mom: _Moments, R_max: int, R: int, mu: float):
    """(moments of the radius-R support, lam * L): the smoothness weight is mu relative to the
    data's scale (trace ratio), so mu means the same at every support and image scale."""
    sub = mom.sub(_taps_within(R_max, R))
    L = gradient_penalty(R)
    scale = float(np.trace(sub.G[0] + sub.G[1])) / float(np.trace(L))
    return sub, mu * scale * L


def _holdout(m: _Moments, lam_L) -> float:
    sse = 0.0
    for train, test in ((0, 1), (1, 0)):
        p = _solve(m.G[train], m.g[train], lam_L)
        sse += _Moments.sse(p, m.G[test], m.g[test], m.zz[test])
    return sse


def _gaussian_in(R: int, sigma: float, centre=(0.0, 0.0)) -> np.ndarray:
    """The Gaussian of width `sigma` centred at `centre` (dy, dx) on a (2R+1)^2 grid, sum 1."""
    if sigma <= 0:
        k = np.zeros((2 * R + 1, 2 * R + 1))
        k[R, R] = 1.0
        return k
    y, x = np.mgrid[-R:R + 1, -R:R + 1].astype(np.float64)
    y, x = y - centre[0], x - centre[1]
    k = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    return k / k.sum()


def shifted_gaussian(sigma: float, centre) -> np.ndarray:
    """An off-centre Gaussian kernel (sum 1) on a grid reaching 3 sigma past its centre."""
    R = max(1, int(math.ceil(3.0 * sigma + max(abs(centre[0]), abs(centre[1])))))
    return _gaussian_in(R, sigma, centre)


def _gain_holdout(p, m: _Moments) -> float:
    """Held-out SSE of a fixed kernel shape given its best gain on the other fold."""
    return sum(psf_parametric.gain_heldout_sse(p, m.G[train], m.g[train], m.G[test], m.g[test], m.zz[test])
               for train, test in ((0, 1), (1, 0)))


def trim_kernel(kernel: np.ndarray, mass: float = TRIM_MASS) -> np.ndarray:
    """The kernel without its outer rings while each ring holds less than `mass` of the total
    (square, centred, odd: rings are removed symmetrically)."""
    k = np.asarray(kernel, dtype=np.float64)
    total = float(k.sum())
    while k.shape[0] > 1:
        ring = total - float(k[1:-1, 1:-1].sum())
        if ring > mass * total:
            break
        k = k[1:-1, 1:-1]
    return k / k.sum()


def estimate_psf(hr_msi, lr_hsi, ratio: int, srf, offset=None, *, start_sigma: float = 1.0,
                 valid=None, max_radius: Optional[int] = None, cancel=None, fixed=None,
                 gram_cache: Optional[dict] = None, moffat_start: Optional[tuple] = None,
                 start_centre=(0.0, 0.0)) -> PsfEstimate:
    """The blur kernel that best explains the pair given the SRF (c x C, with its gain) and the
    per-band offset: see the module docstring. hr_msi (H, W, c), lr_hsi (h, w, C) in [0, 1] with
    H = ratio*h, W = ratio*w (a pair the caller may already have cropped); `valid` (h, w) bool
    marks LR pixels with data; `start_sigma` the Gaussian width fitted before (HR pixels) and
    `start_centre` its centre (dy, dx HR pixels: off the pixel when the pair is misregistered);
    `fixed` (radius, mu): skip their search (a second round of refine_blur), `moffat_start` the
    Moffat parameters to start from (the first round's); `gram_cache`: a
    dict kept between calls on the same pair, which reuses the Gram matrices (they depend on the
    HR-MSI and the pixels only, not on the SRF)."""
    hr = np.asarray(hr_msi)
    hr = hr[:, :, None] if hr.ndim == 2 else hr
    lr = np.asarray(lr_hsi)
    r = int(ratio)
    if hr.shape[:2] == (r * lr.shape[0], r * lr.shape[1]):   # a big pair: its central part is plenty
        if valid is None:
            hr, lr = central_crop(hr, lr, r, MAX_ESTIMATION_LR_SIDE)
        else:
            hr, lr, valid = central_crop(hr, lr, r, MAX_ESTIMATION_LR_SIDE, np.asarray(valid, dtype=bool))
    hr = hr.astype(np.float64)
    lr = lr.astype(np.float64)
    h, w, C = lr.shape
    S = np.asarray(srf, dtype=np.float64)
    if S.ndim != 2 or S.shape != (hr.shape[2], C) or hr.shape[0] != r * h or hr.shape[1] != r * w:
        raise InputError(f"PSF estimation: HR-MSI {hr.shape}, LR-HSI {lr.shape}, SRF {S.shape} and ratio {r} "
                         f"do not describe one pair")
    b = np.zeros(S.shape[0]) if offset is None else np.asarray(offset, dtype=np.float64)
    shift = max(abs(float(start_centre[0])), abs(float(start_centre[1])))
    reach = max(r, int(math.ceil(3.0 * start_sigma + shift)) + 1)
    cap = min(max_radius or MAX_RADIUS, MAX_RADIUS)
    R_free = min(max(2 * r, reach), cap)                 # the free form's widest support
    R_max = min(max(R_free, MOFFAT_REACH * r), cap)      # the moments' support: the Moffat's
    R_max = max(1, min(R_max, (min(h, w) * r) // 4))
    while True:     # a small pair: a smaller support leaves more pixels clear of the border
        m = int(math.ceil(R_max / r))
        usable = None
        if valid is not None and not np.asarray(valid).all():
            from scipy import ndimage
            usable = ndimage.binary_erosion(np.asarray(valid, dtype=bool), iterations=m + 1)
        rows, cols = _interior_pixels(h, w, m, usable)
        if rows.size >= MIN_PIXELS or R_max <= max(1, r // 2):
            break
        R_max = max(1, r // 2, R_max - r)
    R_free = min(R_free, R_max)
    if rows.size < MIN_PIXELS:
        log.info("PSF estimation: only %d LR pixels clear of the border and of nodata (need %d); the "
                 "Gaussian blur stays", rows.size, MIN_PIXELS)
        return PsfEstimate(kernel=gaussian_kernel(float(start_sigma)), form="gaussian", radius=0, smoothness=0.0,
                           holdout_rmse=float("nan"), gaussian_holdout_rmse=float("nan"),
                           gaussian_sigma=float(start_sigma), pixels_used=int(rows.size))
    folds = ((rows // 4 + cols // 4) % 2 == 0)
    z = lr @ S.T + b                                     # the LR-HSI seen by the MSI camera
    key = (r, R_max, hr.shape, rows.size, int(rows.sum()), int(cols.sum()))
    cached = None if gram_cache is None else gram_cache.get(key)
    mom = _moments(hr, z, rows, cols, folds, r, R_max, cancel, grams=cached)
    if gram_cache is not None:
        gram_cache[key] = mom.G
    n_values = mom.n
    scores = {}

    def score(R, mu):
        if (R, mu) not in scores:
            check_cancel(cancel)
            sub, lam_L = _regularised(mom, R_max, R, mu)
            scores[(R, mu)] = _holdout(sub, lam_L)
        return scores[(R, mu)]

    def within(cands):
        best_sse = min(score(*t) for t in cands)
        return [t for t in cands if score(*t) <= (1.0 + HOLDOUT_TOLERANCE) * best_sse]

    if fixed is not None:
        R, mu = min(int(fixed[0]), R_free), float(fixed[1])
        score(R, mu)
    else:
        # the smoothness on the widest support (the smoothest the data allow), then the smallest
        # support at that smoothness: two short scans instead of the grid (NNLS of up to 1089
        # unknowns is the cost)
        mu = max(m for _, m in within([(R_free, m) for m in SMOOTHNESS_GRID]))
        radii = sorted({R for R in (max(1, r // 2), r, (3 * r + 1) // 2, 2 * r, R_free) if R <= R_free})
        R = min(R_ for R_, _ in within([(R_, mu) for R_ in radii]))
    sub, lam_L = _regularised(mom, R_max, R, mu)
    G, g, _ = sub.total()
    p = _solve(G, g, lam_L)
    rmse = math.sqrt(max(scores[(R, mu)], 0.0) / n_values)
    gauss = _gaussian_in(R_max, float(start_sigma), start_centre).ravel()
    g_rmse = math.sqrt(max(_gain_holdout(gauss, mom), 0.0) / n_values)
    named = {f"R={R_},mu={mu_:g}": math.sqrt(max(v, 0.0) / n_values) for (R_, mu_), v in scores.items()}
    check_cancel(cancel)
    from ..core.device import single_thread_blas
    with single_thread_blas():      # thousands of T x T products: a threaded BLAS spins on a busy machine
        m_sse, moffat = psf_parametric.holdout_fit(mom.G, mom.g, mom.zz, R_max, start_sigma, start=moffat_start,
                                                   centre=start_centre)
    m_rmse = math.sqrt(max(m_sse, 0.0) / n_values)
    # a kernel read from the pair must predict held-out pixels FREE_FORM_MIN_GAIN better than the
    # Gaussian; of those that do, the better predictor is kept, and the four numbers of the Moffat
    # over the free form's taps when the two are within HOLDOUT_TOLERANCE (the support and
    # smoothness rule: the data do not argue for more). Measured: the held-out pair's off-centre
    # Gaussian, free form 0.004376 and Moffat 0.004376; kernel errors 0.10 and 0.01.
    bar = (1.0 - FREE_FORM_MIN_GAIN) * g_rmse
    candidates = [(m_rmse * m_rmse, "moffat")] if m_rmse <= bar else []
    if p.sum() > 0 and rmse <= bar:
        candidates.append(((1.0 + HOLDOUT_TOLERANCE) * rmse * rmse, "free-form"))
    form = min(candidates)[1] if candidates else "gaussian"
    if form == "gaussian":
        kernel = trim_kernel(gauss.reshape(2 * R_max + 1, -1))
    elif form == "free-form":
        kernel = trim_kernel(p.reshape(2 * R + 1, -1) / p.sum())
    else:
        kernel = trim_kernel(psf_parametric.moffat_taps(R_max, *moffat).reshape(2 * R_max + 1, -1))
    est = PsfEstimate(kernel=kernel, form=form, radius=R, smoothness=float(mu), holdout_rmse=rmse,
                      gaussian_sigma=float(start_sigma), gaussian_holdout_rmse=g_rmse,
                      pixels_used=int(rows.size), scores=named, moffat_holdout_rmse=m_rmse,
                      moffat=tuple(float(v) for v in moffat))
    log.info("PSF estimation: %s", est.summary())
    return est


# ---------------------------------------------------------------------------
# the SRF and the kernel together

PSF_MODELS = ("free", "gaussian")
# kernel given the SRF, SRF given the kernel, in turn. Three since the 17th session (two before):
# the blind bench's grid, seeds 1-3, +0.06 dB on average and no setting 0.05 dB below two rounds,
# most where the PSF is not a Gaussian (bench/README.md, "A third round"). Read at each call
# (rounds None), so `bench quality --blind --joint-rounds N` can try another count
JOINT_ROUNDS = 3


def round_count(rounds: Optional[int]) -> int:
    """The alternation's rounds: `rounds`, or JOINT_ROUNDS read now (None); at least one."""
    return max(1, int(JOINT_ROUNDS if rounds is None else rounds))


def estimate_sensors(hr_msi, lr_hsi, ratio: int, *, wavelengths=None, valid=None, cancel=None,
                     psf_model: str = "free", rounds: Optional[int] = None):
    """The SRF and the blur of a pair, fitted together: the SRF with the best Gaussian blur
    (srf_estimation.estimate_srf), then alternately the free-form kernel given the SRF and the
    SRF given the kernel. Returns an SrfEstimate whose `kernel` / `psf_estimate` hold the free
    kernel (kernel None when the Gaussian explains the pair as well, or psf_model "gaussian")."""
    from .srf_estimation import estimate_srf
    if psf_model not in PSF_MODELS:
        raise InputError(f"psf_model must be one of {', '.join(PSF_MODELS)}, got {psf_model!r}")
    first = estimate_srf(hr_msi, lr_hsi, ratio, wavelengths=wavelengths, cancel=cancel, valid=valid)
    if psf_model == "gaussian":
        return first
    start, centre = misregistered_start(first, hr_msi, lr_hsi, ratio, wavelengths=wavelengths, valid=valid,
                                        cancel=cancel)
    return refine_blur(start, hr_msi, lr_hsi, ratio, wavelengths=wavelengths, valid=valid, cancel=cancel,
                       rounds=rounds, start_centre=centre)


MIN_START_SHIFT = 0.25      # HR pixels: a smaller measured displacement is left to the free form


def misregistered_start(first, hr_msi, lr_hsi, ratio: int, *, wavelengths=None, valid=None, cancel=None):
    """(start, centre): the SRF fitted through off-centre Gaussians when the pair is misregistered
    and they explain it better than the centred ones of `first`, else (`first`, (0, 0)).

    Why: the SRF's unknowns (one per HSI band, per MSI band) take up what a wrong blur leaves;
    on a small pair (Urban at ratio 4: 8 x 19 LR pixels for 162 bands) they are more than the
    pixels, and an SRF fitted through a centred Gaussian of a shifted pair is far from the true
    one. The alternation of refine_blur starts from that SRF and two rounds do not leave it.
    Measured (blind bench, Urban misreg-r4c4: Gaussian 1.6 px at (1, 1) HR px, seeds 1-3): the
    centred scan's best width is its widest (3 px); kernel error 0.34-0.38 after the two rounds,
    0.06-0.12 only after eight, 0.01-0.16 given the true SRF. Started from the Gaussians centred
    where the LR-HSI's displacement is measured (coregistration: (1.55-1.75, 0.82-0.85) px
    there), the held-out SRF misfit falls 4-8x and two rounds give 0.03-0.06 (usgs-a, usgs-b,
    held-out scene: 0.14 -> 0.01)."""
    from dataclasses import replace
    from .srf_estimation import estimate_srf
    centre = measured_centre(hr_msi, lr_hsi, ratio, MIN_START_SHIFT, valid=valid)
    if centre is None:
        return first, (0.0, 0.0)
    scores, fits = {}, {}

    def score(sigma):
        if sigma not in scores:
            check_cancel(cancel)
            est = estimate_srf(hr_msi, lr_hsi, ratio, wavelengths=wavelengths, cancel=cancel, valid=valid,
                               kernel=shifted_gaussian(sigma, centre))
            scores[sigma], fits[sigma] = min(est.sigma_scores.values()), est
        return scores[sigma]

    grid = sorted(s for s in first.sigma_scores if s > 0)
    if not grid:
        return first, (0.0, 0.0)
    sigma = walk_down(grid, min(first.psf_sigma, grid[-1]), score)
    if scores[sigma] >= min(first.sigma_scores.values()):
        return first, (0.0, 0.0)
    log.info("PSF estimation: the LR-HSI is displaced by (%.2f, %.2f) HR px; the SRF is fitted through a "
             "Gaussian of sigma %g there (held-out misfit %.4g against %.4g centred)", centre[0], centre[1],
             sigma, scores[sigma], min(first.sigma_scores.values()))
    return replace(fits[sigma], psf_sigma=sigma, sigma_scores=scores), centre


def refine_blur_given(hr_msi, lr_hsi, ratio: int, srf, gain, offset, *, start_sigma: float,
                      start_centre=(0.0, 0.0), valid=None, cancel=None, rounds: Optional[int] = None):
    """refine_blur for a given SRF (a file, a named camera): the free-form kernel given the SRF with
    its gain and offset, then the gain and offset refitted through that kernel, in turn.
    Returns (the last PsfEstimate, gain, offset): the first round's estimate and the gain and
    offset passed in when the free form does not beat the Gaussian it starts from.

    Why: the gain and offset were fitted through the best Gaussian; on a pair whose PSF is not
    one they carry the Gaussian's error, and the kernel estimated once from them kept it (the
    estimated SRF's alternation does not)."""
    from .srf_fit import gain_offset_through
    S = np.asarray(srf, dtype=np.float64)
    grams: dict = {}
    best = None
    for _ in range(round_count(rounds)):
        check_cancel(cancel)
        fixed = None if best is None else (best.radius, best.smoothness)
        pe = estimate_psf(hr_msi, lr_hsi, ratio, np.asarray(gain)[:, None] * S, offset, start_sigma=start_sigma,
                          valid=valid, cancel=cancel, fixed=fixed, gram_cache=grams,
                          moffat_start=None if best is None else best.moffat, start_centre=start_centre)
        if not pe.estimated:
            return (pe if best is None else best), gain, offset
        best = pe
        gain, offset, _ = gain_offset_through(hr_msi, lr_hsi, ratio, S, pe.kernel, valid=valid)
    return best, gain, offset


# A given SRF's blur starts off the pixel only past this shift (HR pixels): the free form started
# centred reaches a smaller one (the blind bench's off-centre pairs, 0.4 px, did better so),
# not a quarter LR pixel (its misregistered pairs: 1-2 HR px at ratios 4-8)
MIN_GIVEN_SRF_SHIFT = 0.5


def measured_centre(hr_msi, lr_hsi, ratio: int, minimum: float, valid=None):
    """(dy, dx) HR pixels where a kernel centred would explain the LR-HSI's measured displacement
    against the HR-MSI (coregistration), or None: not measured, under `minimum` HR pixels in
    both directions, or a pair whose grids do not nest."""
    from .coregistration import estimate_displacement
    r = int(ratio)
    hr = np.asarray(hr_msi)
    hr = hr[:, :, None] if hr.ndim == 2 else hr
    lr = np.asarray(lr_hsi)
    if hr.shape[:2] != (r * lr.shape[0], r * lr.shape[1]):
        return None
    shift = estimate_displacement(hr, lr, r, valid=None if valid is None else np.asarray(valid, dtype=bool))
    if shift is None:
        return None
    dx, dy = shift.displacement             # LR pixels, LR(x) ~ MSI(x - d): a kernel centred at +d
    centre = (float(dy) * r, float(dx) * r)
    return None if max(abs(centre[0]), abs(centre[1])) < minimum else centre


def misregistered_gain_start(hr_msi, lr_hsi, ratio: int, srf, sigma: float, *, valid=None, cancel=None):
    """misregistered_start for a given SRF (a file, a named camera): (gain, offset, sigma, centre)
    fitted through Gaussians centred where the LR-HSI is measured displaced (by at least
    MIN_GIVEN_SRF_SHIFT), when they explain the pair better than the centred Gaussian of width
    `sigma` (fit_gain_offset's); else None. The free-form kernel then starts from there.

    Why: the given SRF's gain and offset are fitted through a Gaussian and the kernel starts from
    it; on a misregistered pair the centred one is the wrong start (the blind bench's Urban
    misreg-r4c4 pair given its true SRF lost 4.6 dB to the same pair whose SRF was estimated,
    which starts from the measured shift)."""
    from .srf_fit import gain_offset_through
    centre = measured_centre(hr_msi, lr_hsi, ratio, MIN_GIVEN_SRF_SHIFT, valid=valid)
    if centre is None:
        return None
    r = int(ratio)
    hr, lr = np.asarray(hr_msi), np.asarray(lr_hsi)
    fits = {}

    def score(s):
        if s not in fits:
            check_cancel(cancel)
            fits[s] = gain_offset_through(hr, lr, r, srf, shifted_gaussian(s, centre), valid=valid)
        return fits[s][2]
    centred = gain_offset_through(hr, lr, r, srf, gaussian_kernel(float(sigma)), valid=valid)[2]
    grid = sorted(float(s) for s in DEFAULT_PSF_SIGMAS if s > 0)
    best = walk_down(grid, min(float(sigma), grid[-1]), score)
    if fits[best][2] >= centred:
        return None
    log.info("given SRF: the LR-HSI is displaced by (%.2f, %.2f) HR px; gain and offset fitted through a "
             "Gaussian of sigma %g there (misfit %.4g against %.4g centred)", centre[0], centre[1], best,
             fits[best][2], centred)
    return fits[best][0], fits[best][1], best, centre


def walk_down(grid, start: float, score) -> float:
    """The grid value where `score` stops falling, walking from the grid value nearest `start`
    down, else up: the centred Gaussian of a shifted pair is wider than the shifted one, so the
    best width lies at or below it (three or four of the grid's fits instead of all)."""
    i = int(np.argmin([abs(g - start) for g in grid]))
    for step in (-1, 1):
        j = i
        while 0 <= j + step < len(grid) and score(grid[j + step]) < score(grid[j]):
            j += step
        if j != i:
            return grid[j]
    return grid[i]


def refine_blur(first, hr_msi, lr_hsi, ratio: int, *, wavelengths=None, valid=None, cancel=None,
                rounds: Optional[int] = None, start_centre=(0.0, 0.0)):
    """`first` (an SrfEstimate with a Gaussian blur, centred at `start_centre`) with the free-form
    kernel fitted in turn with the SRF; `first` itself when the free kernel does not predict the
    pair better."""
    from dataclasses import replace
    from .srf_estimation import estimate_srf
    best = first
    grams: dict = {}
    for _ in range(round_count(rounds)):
        check_cancel(cancel)
        last = best.psf_estimate
        fixed = None if last is None else (last.radius, last.smoothness)
        pe = estimate_psf(hr_msi, lr_hsi, ratio, best.srf, best.offset, start_sigma=first.psf_sigma,
                          valid=valid, cancel=cancel, fixed=fixed, gram_cache=grams,
                          moffat_start=None if last is None else last.moffat, start_centre=start_centre)
        if not pe.estimated:
            if best.kernel is not None and best.psf_estimate is None:   # the off-centre Gaussian stays
                best = replace(best, psf_estimate=pe)
            break
        again = estimate_srf(hr_msi, lr_hsi, ratio, wavelengths=wavelengths, cancel=cancel, valid=valid, kernel=pe.kernel)
        best = replace(again, psf_sigma=first.psf_sigma, sigma_scores=first.sigma_scores, psf_estimate=pe)
    return best
