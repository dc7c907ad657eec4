"""The memory guard: a run or a load that cannot fit is refused with a sentence giving the
estimate and the memory available, before anything big is allocated."""
import re
import tracemalloc

import numpy as np
import pytest

from spectramorph_engine import FusionConfig, FusionInputs, InputError, io, run_fusion
from spectramorph_engine.core import memory


def _sizes(msg: str) -> list:
    """The sizes a message gives, in bytes ("5.3 MB" -> 5.3e6)."""
    scale = {"GB": 1e9, "MB": 1e6, "kB": 1e3}
    return [float(v) * scale[u] for v, u in re.findall(r"([\d.]+) (GB|MB|kB)", msg)]


def test_estimate_grows_with_the_scene_and_streaming_drops_the_result():
    cfg = FusionConfig(hidden_size=1024, num_endmembers=7, spec_prior=True)
    big = memory.estimate_run(cfg, (2048, 2048, 4), (512, 512, 200), synthetic=False, streaming=False)
    small = memory.estimate_run(cfg, (512, 512, 4), (128, 128, 200), synthetic=False, streaming=False)
    streamed = memory.estimate_run(cfg, (2048, 2048, 4), (512, 512, 200), synthetic=False, streaming=True)
    assert big["peak"] > 8 * small["peak"]              # 16x the pixels, plus fixed buffers
    # the 2048 x 2048 x 200 float32 result is 3.4 GB: held unless streamed to its file
    assert big["inference"] - streamed["inference"] == 4 * 2048 * 2048 * 200
    assert 3.4e9 < big["peak"] < 8e9


def test_a_run_that_cannot_fit_is_refused_with_the_estimate_and_what_is_available(monkeypatch, tmp_path):
    from spectramorph_engine.run.demo import demo_scene
    truth = demo_scene(size=32, num_bands=20, seed=2)[0]
    monkeypatch.setattr(memory, "available_bytes", lambda: 200_000)          # 200 kB free
    cfg = FusionConfig(epochs=5, hidden_size=16, num_endmembers=3, downsample_ratio=2, kernel_size=2,
                       sigma=1.0, num_msi_bands=3, device="cpu", auto_select=False,
                       output_dir=str(tmp_path / "out"), log_dir=str(tmp_path / "logs"))
    seen = []
    with pytest.raises(InputError) as err:
        run_fusion(cfg, inputs=FusionInputs(truth=truth), progress=seen.append)
    msg = str(err.value)
    assert "memory" in msg and "200.0 kB is available" in msg and "\n" not in msg
    need, free = _sizes(msg)
    assert free == 200_000 and need > memory.HEADROOM * free      # the estimate, above what is free
    from spectramorph_engine.core import events
    assert "train" not in {e.stage for e in seen if isinstance(e, events.StageStarted)}   # nothing ran
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_eager_load_too_big_for_memory_is_refused_before_allocating(monkeypatch, tmp_path):
    p = tmp_path / "cube.npy"
    np.save(p, np.zeros((64, 64, 32), dtype=np.float32))                  # 524 kB of data
    monkeypatch.setattr(memory, "available_bytes", lambda: 100_000)
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"loading '.*cube\.npy' \(64x64x32 float32\) needs about 524\.3 kB "
                                             r"of memory but only 100\.0 kB is available"):
            io.load_cube(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200_000
    # a lazy open reads nothing and is allowed
    with io.load_cube(p, lazy=True) as cube:
        assert cube.shape == (64, 64, 32)
    monkeypatch.undo()
    assert io.load_cube(p).data.shape == (64, 64, 32)
