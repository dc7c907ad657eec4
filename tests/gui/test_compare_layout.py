"""How the comparison and the spectra read (issue 21, items 4 and 7): side by side opens at half
the width each; leaving the swipe gives the main view its own title back; a region's mean is in
the legend; the runs list shows the settings that tell runs apart."""
from PySide6.QtCore import Qt

from .conftest import run_to_end, wait_idle


def test_side_by_side_opens_at_half_the_width(qtbot, window):
    window.resize(1400, 900)
    rp, s = window.results_panel, window.state
    run_to_end(qtbot, window, epochs=5)
    run_to_end(qtbot, window, epochs=6)
    s.set_comparison(("run", 1))
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: rp.compare_view.isVisible(), timeout=10000)
    a, b = rp.views_splitter.sizes()
    assert abs(a - b) <= 0.1 * (a + b), (a, b)
    # swipe, then difference: the main view's title is its own again
    rp.compare_mode.setCurrentIndex(rp.compare_mode.findData("swipe"))
    wait_idle(qtbot, window)
    assert rp.view.title().startswith("Swipe:")
    rp.compare_mode.setCurrentIndex(rp.compare_mode.findData("diff_rmse"))
    wait_idle(qtbot, window)
    assert not rp.view.title().startswith("Swipe") and "Result" in rp.view.title()
    a, b = rp.views_splitter.sizes()
    assert abs(a - b) <= 0.1 * (a + b), (a, b)
    # the runs list tells the two runs apart: their epochs are on screen, not elided
    t = window.runs_panel.table
    for row, epochs in ((0, "5 ep"), (1, "6 ep")):
        item = t.item(row, 1)
        assert epochs in item.text()
        needed = t.fontMetrics().boundingRect(0, 0, t.columnWidth(1) - 8, 1000, Qt.TextWordWrap,
                                              item.text()).height()
        assert t.rowHeight(row) >= needed


def test_regions_are_named_in_the_legend(qtbot, window):
    rp = window.results_panel
    run_to_end(qtbot, window, epochs=5)
    first = rp.regions.add_rectangle(10, 12, 20, 30)
    second = rp.regions.add_rectangle(30, 30, 40, 40)
    wait_idle(qtbot, window)
    labels = [label.text for _sample, label in rp.spectrum_legend.items]
    assert any(text == f"{first.name} mean ± sd" for text in labels), labels
    assert any(text.startswith(f"{second.name} mean ± sd") for text in labels), labels
    assert first.colour.lower() != "#e6194b"          # not the reconstructed curve's red
    rp.regions.remove(first)
    wait_idle(qtbot, window)
    labels = [label.text for _sample, label in rp.spectrum_legend.items]
    assert not any(text.startswith(first.name) for text in labels) and \
        any(text.startswith(second.name) for text in labels)


def test_rgb_levels_show_each_channels_histogram(qtbot, window):
    """In RGB mode the levels column shows the three channels' histograms (pyqtgraph adds them
    onto the background, so on the app's white one they were invisible)."""
    from PySide6.QtGui import QPainter
    run_to_end(qtbot, window, epochs=5)
    wait_idle(qtbot, window)
    h = window.results_panel.histogram.item
    assert h.levelMode == "rgba"
    for plot in h.plots[1:4]:
        x, y = plot.getData()
        assert plot.isVisible() and x is not None and len(x) > 10 and y.max() > 0
        assert plot.opts["compositionMode"] != QPainter.CompositionMode_Plus
    # drawn: the channel colours stand out from the pale level regions where the curves run
    image = window.results_panel.histogram.grab().toImage()
    strong = sum(1 for i in range(image.width()) for j in range(image.height())
                 if max(image.pixelColor(i, j).getRgb()[:3]) - min(image.pixelColor(i, j).getRgb()[:3]) > 120)
    assert strong > 50
