"""The CUDA path gives the CPU's result to float tolerance (skips on machines without a GPU)."""
import numpy as np
import pytest
import torch

from spectramorph_engine import FusionConfig, FusionInputs, InputError, run_fusion
from spectramorph_engine.core.device import resolve_device

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch")


def test_auto_picks_what_exists_and_a_missing_gpu_is_an_input_error():
    dev = resolve_device("auto")
    assert dev.type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device"):
            resolve_device("cuda")


@needs_cuda
@pytest.mark.cuda
def test_cuda_result_matches_cpu():
    from spectramorph_engine.run.demo import demo_scene
    truth = demo_scene(size=64, num_bands=60, seed=1)[0]
    results = {}
    for device in ("cpu", "cuda"):
        cfg = FusionConfig(epochs=200, num_endmembers=5, downsample_ratio=4, num_msi_bands=4, device=device)
        results[device] = run_fusion(cfg, inputs=FusionInputs(truth=truth), write_outputs=False)
    cpu, gpu = results["cpu"], results["cuda"]
    assert gpu.device.startswith("cuda")
    np.testing.assert_allclose(gpu.endmembers, cpu.endmembers, atol=1e-3)
    np.testing.assert_allclose(gpu.loss_history[-1], cpu.loss_history[-1], rtol=0.05)
    assert abs(gpu.metrics["PSNR"] - cpu.metrics["PSNR"]) < 0.3
    assert np.mean(np.abs(np.asarray(gpu.hr_hsi) - np.asarray(cpu.hr_hsi))) < 5e-3
