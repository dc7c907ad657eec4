"""How the two cameras saw the scene: the forward model and what it is made of.

`catalogue` (the names: PSF types, SRF presets, named cameras; a leaf module both the config and
the sensor models import), `psf` (blur kernels: make, load, save, describe), `srf` (spectral
responses: presets, cameras, files), `degradation` (blur, area downsampling, SRF, noise: the
synthetic pair and the bicubic baseline), `srf_estimation` (the SRF and blur fitted on a real
pair), `srf_fit` (how well a given SRF explains the pair, and the advice drawn from it),
`coregistration` (the LR-HSI's sub-pixel displacement against the HR-MSI),
`scenarios` (the real-camera test scenario), `subspace` (how many spectral directions of the
LR-HSI carry signal above its noise). Imports `core` and `io` only.
"""
