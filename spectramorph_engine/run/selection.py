"""Settings chosen from the data, with no ground truth (`auto_select: true`, issue 8).

Wald's protocol gives a truth to score against: degrade both inputs by the ratio r (the
HR-MSI to the LR grid, the LR-HSI to a grid r times coarser), fuse that reduced pair, and
compare with the LR-HSI itself. A few candidate settings are fused this way -- the
configured one, the coarse spectral prior flipped (when `spec_prior` is auto and the MSI has
at most PRIOR_FLIP_MAX_BANDS bands), K + 2 endmembers, minimum-volume endmembers when plain
NMF is configured, the refinement off -- with shorter training (fuse.CHECK_EPOCH_FRACTION of the
epochs, on at most fuse.CHECK_TRAINING_PIXELS LR pixels), and the best PSNR wins; a candidate must
beat the configured one by SWITCH_MARGIN_DB to replace it, so noise in the check does not flip
settings. The refinement-off variant shares the configured candidate's trained network, so it
costs no training. On a real pair the configured candidate is the reduced-resolution check's
fusion, made before the selection (the run's `check` stage), so the selection's own cost is the
other candidates.

What the check cannot judge is not a candidate: the refinement without its TV term scored
higher on the reduced pair in 3 of 6 bench cases (256 px library scenes, r4) while it was
6.9-11.5 dB worse against the truth -- on a grid r times coarser the TV's gain is invisible
(bench/README.md, selection check). Differences between K, K +- 2 and the endmember methods
on the reduced pair were 0.0-0.7 dB and tracked the truth poorly, hence the 0.3 dB margin.
Nor is what never wins (bench/README.md, "A leaner selection"): K - 2 was never the best
candidate against the truth in the 18 cases of the 256^2 and 512^2 checks, and with minimum
volume configured, K - 2 and plain NMF scored below it on every reduced pair of the 1024^2
replay; plain NMF trails minimum volume on the whole quality grid. The prior at 4 MSI bands
and more: never the best candidate in those 18 cases, 0.8-3.2 dB below on the 1024^2
reduced pairs, and 0.8-1.5 dB below without it on every scene of the prior bench; it matters
with 1-2 bands (the prior bench, the real pan pair), and 3 bands were not measured.

The reduced pair has r^2 fewer pixels than the real one, so the whole selection costs a
fraction of the full run (measured in bench/README.md). Scenes whose reduced LR-HSI has
fewer than MIN_REDUCED_PIXELS pixels are too small for a meaningful check: the configured
settings are used and the reason is recorded. Measured (issue 19 item 4): on 72 x 72 library
pairs at r4 / 4 bands (16 reduced LR pixels) the check, forced on, chose "prior on" for
seeds 1-3 (+0.4 dB on the reduced pair) and lost 2.4-3.3 dB against the truth: NMF and the
network fitted to 16 spectra are another regime than the run's. What such a pair could still
tell -- K or the endmember method by holding out LR pixels at full resolution -- is spectral
only (the prior would see the held-out pixel's own spectrum) and differed by 0.0-0.7 dB even
on big scenes, tracking the truth poorly: not worth a choice.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ..core import events as ev
from . import fuse

log = logging.getLogger(__name__)

MIN_REDUCED_PIXELS = 256
# Beyond fuse.MAX_REDUCED_SIDE reduced LR pixels a side the candidates are fused on a centre crop
# of the pair: the selection's cost stops growing with the scene (at 2048^2 it was 118 s of a
# run on the whole 128 x 128 reduced pair)
# The candidates train as the reduced-resolution check does (fuse.check_training: a fifth of the
# epochs on a spread sample of at most fuse.CHECK_TRAINING_PIXELS reduced LR pixels), so the
# check's fusion is the configured candidate's. 1024 of the 4096 LR pixels of a 1024^2 scene's
# 64 x 64 crop kept every pick of the 1024^2 replay and moved the chosen candidate's
# reduced-pair PSNR by -0.10 dB (mean; -0.29 to +0.01) at 0.65x the selection's time
# (bench/README.md, "A leaner selection").
SWITCH_MARGIN_DB = 0.3
K_STEP = 2
PRIOR_FLIP_MAX_BANDS = 3


def candidate_changes(config, msi_bands: int, max_k: int, ratio: int) -> list:
    """(label, config changes) of the candidates; the first is the configured setting with
    'auto' resolved."""
    base_prior = config.use_prior_for(msi_bands, ratio)
    base = {"spec_prior": base_prior, "num_endmembers": config.num_endmembers,
            "endmember_method": config.endmember_method, "refine": config.refine}
    out = [("configured", dict(base))]
    if config.prior_choice == "auto" and msi_bands <= PRIOR_FLIP_MAX_BANDS:
        out.append(("prior on" if not base_prior else "prior off", {**base, "spec_prior": not base_prior}))
    k2 = base["num_endmembers"] + K_STEP
    if k2 <= max_k:
        out.append((f"K {k2}", {**base, "num_endmembers": k2}))
    if config.endmember_method == "nmf":
        out.append(("endmembers minvol", {**base, "endmember_method": "minvol"}))
    return out


def _psnr_sam(metrics, reference, fused, ratio, valid=None) -> dict:
    """PSNR and SAM in one pass over the cubes, over the `valid` pixels (None: all)."""
    return metrics.compute_many(reference, [fused], ratio, names=("PSNR", "SAM"), valid=valid)[0]


def select_settings(config, prep, progress=None, cancel=None, check=None) -> dict:
    """Fuse each candidate on the reduced pair and pick the best. Returns a dict with
    "config" (the FusionConfig to run: the winner, auto_select off so it reproduces exactly),
    "candidates" (label, changes, PSNR, SAM, seconds), "chosen", "skipped" (a reason or None),
    "seconds", "summary" (one sentence for the log and the app) and, for a real pair,
    "reduced_check" (run.json's reduced_resolution: the chosen candidate's fusion scored).
    `check` (fuse.ReducedFusion): the reduced-resolution check's fusion of this pair, made
    before the selection with the configured settings: its pair and its fusion (as the
    configured candidate) are used, not made again."""
    from ..quality import metrics
    from ..methods.spectramorph.inference import mix_latents
    t0 = time.perf_counter()
    c = prep.hr_msi.shape[2]
    h, w, C = prep.lr_hsi.shape
    r = prep.ratio
    hr, wr = h // r, w // r
    reduced_pixels = hr * wr
    if reduced_pixels < MIN_REDUCED_PIXELS:
        changes = candidate_changes(config, c, C, r)[0][1]
        chosen = config.replace(**changes, auto_select=False)
        reason = (f"the reduced-resolution pair would have {reduced_pixels} LR pixels (< {MIN_REDUCED_PIXELS}): "
                  f"too small to compare settings; the configured ones are used")
        return {"config": chosen, "candidates": [], "chosen": "configured", "skipped": reason,
                "seconds": time.perf_counter() - t0, "reduced_shape": [hr, wr, C],
                "summary": f"auto-selection skipped: {reason}"}
    if check is not None:
        crop, sub, lr_ref, valid = check.crop, check.sub, check.lr_ref, check.valid
    else:
        crop, sub, lr_ref, valid = fuse.reduced_inputs(prep, cancel)
    max_k = min(C, sub.lr_hsi.shape[0] * sub.lr_hsi.shape[1])
    epochs, pixels = fuse.check_training(config)
    cands = candidate_changes(config, c, max_k, r)
    rows = []
    fused_of = {}       # the configured candidate's result and the best one's so far (reduced check)
    # candidates differing in neither K nor the extraction (the prior flip) share the endmembers:
    # the same deterministic extraction of the same reduced LR-HSI
    endmembers_of = {}
    from_check = None   # the label whose fusion is the check's
    for i, (label, changes) in enumerate(cands):
        ev.check_cancel(cancel)
        t1 = time.perf_counter()
        # the reduced pair has fewer pixels: K is capped there only (the full run keeps it)
        trial = fuse.reduced_trial(config.replace(**changes), c, r, max_k, epochs, pixels)
        extraction = (trial.num_endmembers, trial.endmember_method, trial.nmf_max_iter, trial.nmf_tol)
        if check is not None and check.out is not None and check.config == trial:
            out, from_check = check.out, label          # fused in the check stage
        else:
            out = fuse.fuse_with_method(trial, sub, cancel=cancel, endmembers=endmembers_of.get(extraction),
                                        progress=ev.nested_progress(progress, "select", i / len(cands),
                                                                    (i + 1) / len(cands)))
        if out.endmembers is not None:
            endmembers_of[extraction] = out.endmembers
        fused = np.asarray(out.hr_hsi)
        trained = out.info.get("training", {}).get("pixels")
        rows.append({"label": label, "changes": changes, **_psnr_sam(metrics, lr_ref, fused, r, valid),
                     "training_pixels": trained, "seconds": time.perf_counter() - t1,
                     "fused_by_the_check": from_check == label})
        _keep(fused_of, rows, fused)
        if label == "configured" and changes["refine"]:
            # the same network without the refinement: no second training
            t2 = time.perf_counter()
            plain = mix_latents(out.alle, out.endmembers, device="cpu", value_range=sub.value_range)
            rows.append({"label": "refinement off", "changes": {**changes, "refine": False},
                         **_psnr_sam(metrics, lr_ref, plain, r, valid),
                         "training_pixels": trained, "seconds": time.perf_counter() - t2})
            _keep(fused_of, rows, plain)
        ev.emit(progress, ev.StageProgress("select", (i + 1) / len(cands)))
    base = rows[0]
    best = max(rows, key=lambda row: row["PSNR"])
    if best is not base and best["PSNR"] < base["PSNR"] + SWITCH_MARGIN_DB:
        best = base
    chosen = config.replace(**best["changes"], auto_select=False)
    report = None
    if prep.mode == "real":
        if best["label"] == from_check:
            report = check.report           # the check scored this fusion already
        else:
            # the run's reduced-resolution check is the chosen candidate's fusion (trained as
            # the check's own)
            report = fuse.reduced_check_report(crop, (h, w), sub, lr_ref, fused_of[best["label"]], valid, cancel)
    seconds = time.perf_counter() - t0
    where = f"{hr}x{wr} LR pixels" if crop is prep else \
        f"a centre crop of {sub.lr_hsi.shape[0]}x{sub.lr_hsi.shape[1]} of its {hr}x{wr} LR pixels"
    trained = best["training_pixels"]
    training = f"{epochs} epochs each" + ("" if trained is None else f" on {trained} LR pixels")
    summary = (f"auto-selection on the reduced-resolution pair ({where}, {training}): "
               + ", ".join(f"{row['label']} {row['PSNR']:.2f} dB" for row in rows)
               + f" -> {best['label']} ({seconds:.1f} s"
               + ("; the configured candidate is the reduced-resolution check's fusion)" if from_check else ")"))
    selected = {"config": chosen, "candidates": rows, "chosen": best["label"], "skipped": None,
                "seconds": seconds, "reduced_shape": [hr, wr, C], "epochs": epochs,
                "training_pixels": trained, "summary": summary, "fused_shape": list(sub.lr_hsi.shape)}
    if report is not None:
        selected["reduced_check"] = {**report, "source": "auto-selection", "epochs": epochs,
                                     "training_pixels": trained}
    return selected


def _keep(fused_of: dict, rows: list, fused) -> None:
    """Keep the result of the row just added when it is the configured one or the best so far
    (the only two the choice can end on), dropping the others'."""
    label = rows[-1]["label"]
    best = max(rows, key=lambda row: row["PSNR"])["label"]
    fused_of[label] = fused
    for other in [k for k in fused_of if k not in (rows[0]["label"], best)]:
        del fused_of[other]

