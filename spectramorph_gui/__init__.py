"""SpectraMorph Studio: the Qt desktop client of `spectramorph_engine`.

All science is in the engine; this package holds widgets, the application
state they share, and the worker thread that runs the engine.
"""
from .compat import guard as _guard_binding_refcounts

_guard_binding_refcounts()
