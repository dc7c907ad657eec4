"""The results view's state without Qt: what it keeps when the scene changes, pins, regions,
bands and levels (glue's viewer states are tested the same way). Nothing here imports PySide6
or pyqtgraph, and neither does the state module."""
import subprocess
import sys

import numpy as np

from spectramorph_gui.view_state import REGION_COLOURS, ResultsViewState, Scene


def _box(r0, c0, r1, c1):
    return [[r0, c0], [r0, c1], [r1, c1], [r1, c0]]


def test_the_state_and_the_summary_writer_import_no_qt():
    # (the package's start-up may look at PySide6's version; no Qt module is loaded)
    code = ("import sys, spectramorph_gui.view_state, spectramorph_gui.run_summary; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6.Qt', 'pyqtgraph'))]; "
            "print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_first_scene_pins_the_centre_and_takes_its_bands():
    vs = ResultsViewState()
    notes = vs.scene_changed(Scene(64, 48, 100, (400.0, 2500.0)), rgb_bands=(60, 30, 10))
    assert notes == [] and vs.pins == [(32, 24)] and vs.pixel == (32, 24)
    assert vs.rgb_bands == (60, 30, 10) and vs.band == 60
    assert vs.band_spec == ("rgb", (60, 30, 10))
    vs.mode = "band"
    assert vs.band_spec == ("band", 60)


def test_a_smaller_scene_keeps_what_fits_and_says_what_went():
    vs = ResultsViewState()
    vs.scene_changed(Scene(64, 64, 100, (400.0, 2500.0)), rgb_bands=(60, 30, 10))
    vs.pin(50, 60)
    assert vs.add_pin(5, 6) and not vs.add_pin(5, 6)
    inside = vs.add_region("rectangle", _box(2, 3, 10, 12))
    outside = vs.add_region("polygon", _box(40, 40, 60, 60))
    vs.set_levels([0.0, 1.0], ("rgb", (60, 30, 10)))
    vs.mode, vs.band = "band", 99
    notes = vs.scene_changed(Scene(32, 32, 60, (400.0, 2500.0)), rgb_bands=(40, 20, 5))
    assert vs.pins == [(5, 6)] and vs.regions == [inside] and vs.region(outside.number) is None
    assert any("1 pinned pixel" in n for n in notes) and any("R2" in n for n in notes)
    assert vs.levels is None and vs.needs_levels(("band", 40))       # levels start afresh
    assert vs.band_spec == ("band", 40)                                 # new axis: new bands
    assert vs.scene == Scene(32, 32, 60, (400.0, 2500.0))


def test_the_same_scene_keeps_everything_but_the_levels():
    vs = ResultsViewState()
    scene = Scene(16, 16, 8)
    vs.scene_changed(scene, rgb_bands=(5, 3, 1))
    vs.pins = [(1, 1), (15, 15)]
    vs.add_region("freehand", _box(0, 0, 16, 16))
    vs.rgb_bands = (7, 6, 5)
    vs.set_levels([[0, 1]] * 3, ("rgb", (7, 6, 5)))
    assert not vs.needs_levels(("rgb", (7, 6, 5))) and vs.needs_levels(("rgb", (1, 2, 3)))
    assert vs.scene_changed(scene, rgb_bands=(5, 3, 1)) == []
    assert vs.pins == [(1, 1), (15, 15)] and len(vs.regions) == 1
    assert vs.rgb_bands == (7, 6, 5) and vs.levels is None            # same axis: bands kept


def test_regions_are_numbered_coloured_moved_and_removed():
    vs = ResultsViewState()
    a = vs.add_region("rectangle", _box(0, 0, 4, 4))
    b = vs.add_region("polygon", [[0, 0], [0, 3], [3, 0]])
    assert (a.number, a.name, a.colour) == (1, "R1", REGION_COLOURS[0]) and b.colour == REGION_COLOURS[1]
    vs.move_region(1, _box(1, 1, 5, 5))
    np.testing.assert_array_equal(vs.region(1).vertices[0], [1, 1])
    assert vs.remove_region(1) and not vs.remove_region(1)
    assert vs.add_region("rectangle", _box(0, 0, 1, 1)).number == 3    # numbers are not reused
    vs.clear_regions()
    assert vs.regions == [] and vs.add_region("rectangle", _box(0, 0, 1, 1)).number == 1


def test_pins_inside_and_the_display_choice():
    vs = ResultsViewState(scene=Scene(10, 10, 3), pins=[(12, 1), (3, 4)])
    vs.pins_inside()
    assert vs.pins == [(3, 4)]
    vs.pins = [(20, 20)]
    vs.pins_inside()
    assert vs.pins == [(5, 5)]
    vs.display = "err_sam"
    assert not vs.limit_display({"result", "err_sam"}) and vs.display == "err_sam"
    assert vs.limit_display({"result"}) and vs.display == "result"
    vs.set_preset([2, 98])
    assert vs.preset == (2.0, 98.0)
