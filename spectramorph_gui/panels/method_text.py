"""What the window says about each fusion method: its name, its title and what it uses.

Everything is read from the method modules (NAME, TITLE, USES), so the window and
the engine cannot disagree about a method.
"""
from __future__ import annotations

from functools import lru_cache

from spectramorph_engine.methods import METHOD_NAMES, get_method

__all__ = ["METHOD_NAMES", "title", "short_name", "uses_lines", "has_training", "curve_kind"]

# What the Live curves panel can draw for a method: epochs of a trained network, or the
# objective per iteration of an iterative solver (the result's loss_history); others draw nothing.
CURVES = {"spectramorph": "training", "hysure": "objective"}


@lru_cache(maxsize=None)
def title(name: str) -> str:
    """The method's TITLE, e.g. 'GLP-HS (MTF-matched generalised Laplacian pyramid hypersharpening)'."""
    return get_method(name).TITLE


def short_name(name: str) -> str:
    """The title without its explanation in brackets: 'GLP-HS', 'HySure', 'SpectraMorph'."""
    return title(name).split(" (", 1)[0]


def has_training(name: str) -> bool:
    """Whether the method trains a network (epochs, loss and learning-rate curves)."""
    return curve_kind(name) == "training"


def curve_kind(name: str):
    """'training', 'objective' or None (nothing to plot)."""
    return CURVES.get(name)


@lru_cache(maxsize=None)
def uses_lines(name: str) -> tuple:
    """(used, sentence) for each entry of the method's USES: used is False for what it ignores.

    The modules write their entries either as whole sentences ('Uses the PSF ...',
    'Ignores the SRF: ...') or as what follows 'uses' / 'ignores' ('the PSF ...'); both
    become one capitalised sentence."""
    lines = []
    for key, text in get_method(name).USES.items():
        sentence = " ".join(str(text).split())
        if not sentence:
            continue
        ignored = key == "ignores" or sentence.lower().startswith("ignores")
        if not sentence[0].isupper():
            sentence = ("Ignores " if key == "ignores" else "Uses ") + sentence
        if sentence[-1] not in ".!?":
            sentence += "."
        lines.append((not ignored, sentence))
    return tuple(lines)
