"""How good a result is, and how it is looked at: figures that need no fusion method.

`metrics` (RMSE, PSNR, SSIM, UIQI, ERGAS, SAM against a truth), `consistency` (quality without
a truth: the result degraded back onto both inputs, quality warnings), `inspection` (error and
difference maps, per-band scores, ROI statistics by row blocks), `library` (spectral libraries:
read, resample, match by angle), `previews` (display helpers: composites, stretches), `figures`
(matplotlib pictures of endmembers and abundances). Imports `core`, `io` and `sensors` only.
"""
