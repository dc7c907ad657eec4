"""A ground truth with known parts for the refinement tests: smooth-spectra materials mixed by
blocky abundances (8 x 8 pixel blocks)."""
import numpy as np


def blocky_scene(H=64, W=64, C=40, K=4, seed=0):
    """(truth H x W x C, abundances H x W x K, endmembers K x C), float32."""
    rng = np.random.default_rng(seed)
    wl = np.linspace(0, 1, C)
    E = np.stack([0.2 + 0.6 * np.exp(-0.5 * ((wl - m) / 0.15) ** 2) for m in rng.uniform(0, 1, K)])
    A = rng.random((H // 8, W // 8, K)) ** 3
    A = np.repeat(np.repeat(A, 8, 0), 8, 1)
    A /= A.sum(axis=2, keepdims=True)
    return (A @ E).astype(np.float32), A.astype(np.float32), E.astype(np.float32)
