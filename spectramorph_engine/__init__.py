"""SpectraMorph engine: hyperspectral super-resolution as a library.

    from spectramorph_engine import FusionConfig, run_fusion
    result = run_fusion(FusionConfig(mat_file="scene.mat", mat_key="im"),
                        progress=print, cancel=threading.Event())

No Qt here: the CLI and the desktop app are two thin clients of this package.
"""
from .run.config import FusionConfig, load_config, save_config, apply_overrides
from .core.errors import Cancelled, InputError
from .core import events

from .core.version import __version__  # noqa: F401


def __getattr__(name):
    # The pipeline imports torch; load it on first use so `import spectramorph_engine`
    # (config checks, CLI --help) stays fast.
    where = {"run_fusion": "pipeline", "prepare_inputs": "prepare", "FusionInputs": "results",
             "FusionResult": "results", "PreparedInputs": "results", "export_outputs": "write",
             "warm_up": "pipeline"}
    if name in where:
        import importlib
        return getattr(importlib.import_module(f".run.{where[name]}", __name__), name)
    raise AttributeError(name)


__all__ = ["FusionConfig", "load_config", "save_config", "apply_overrides", "InputError",
           "Cancelled", "events", "run_fusion", "prepare_inputs", "FusionInputs",
           "FusionResult", "PreparedInputs", "export_outputs", "warm_up"]
