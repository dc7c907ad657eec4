"""At the default 1400 x 900 nothing is cut (issue 21, item 7): the plots' titles are shown in
full (or elided with the whole text in their tooltip), the legends' names are whole and sit
beside the curves rather than over them, no tab bar needs scroll arrows, and an exported
spectrum plot has a legend as readable as its axes."""
import pyqtgraph as pg
from PySide6.QtGui import QFontMetricsF, QImage
from PySide6.QtWidgets import QTabBar, QToolButton

from .conftest import run_to_end


def _shown_rect(plot):
    view = plot if isinstance(plot, pg.GraphicsView) else plot.getViewWidget()
    return view.mapToScene(view.viewport().rect()).boundingRect()


def _cut(plot_widget, full_title):
    """What of the plot does not show in its widget: [] when everything does."""
    item = plot_widget.getPlotItem()
    shown = _shown_rect(plot_widget)
    out = []
    if item.sceneBoundingRect().right() > shown.right() + 1:
        out.append(f"plot {item.sceneBoundingRect().width():.0f} px wide in a {shown.width():.0f} px view")
    title = item.titleLabel
    r = title.item.sceneBoundingRect()
    if title.isVisible() and (r.left() < shown.left() - 1 or r.right() > shown.right() + 1):
        out.append(f"title {title.text!r} runs past the view")
    if (title.text if title.isVisible() else "") != full_title and title.toolTip() != full_title:
        out.append(f"title {title.text!r} is not {full_title!r} and its tooltip does not say it")
    vb = item.vb.sceneBoundingRect()
    for _sample, label in (item.legend.items if item.legend is not None else []):
        r = label.item.sceneBoundingRect()
        if r.right() > shown.right() + 1 or r.bottom() > shown.bottom() + 1 or r.left() < shown.left() - 1:
            out.append(f"legend label {label.text!r} runs past the view")
        if r.width() + 1 < label.item.document().idealWidth():
            out.append(f"legend label {label.text!r} is narrower than its text")
        if r.intersects(vb):
            out.append(f"legend label {label.text!r} covers the curves")
    return out


def test_spectra_titles_and_legends_fit_at_the_default_size(qtbot, window):
    assert (window.width(), window.height()) == (1400, 900)
    run_to_end(qtbot, window)
    rp = window.results_panel
    h, w = window.state.result.hr_hsi.shape[:2]
    rp.select_pixel(h // 3, w // 3)
    qtbot.wait(300)
    names = [label.text for _s, label in rp.spectrum_legend.items]
    assert names == ["reconstructed", "ground truth"]
    assert _cut(rp.spectrum_plot, "Pixel spectra: result vs ground truth") == []
    assert _cut(rp.lr_plot, "LR-HSI: the LR pixel containing it") == []
    assert _cut(rp.endmember_plot, "") == []
    # the curves' long-wavelength ends are on screen: the x axis reaches the last band
    x_end = rp.spectrum_plot.getPlotItem().vb.viewRange()[0][1]
    assert x_end >= float(window.state.result.prepared.wavelengths[-1])


def test_image_titles_are_elided_with_the_whole_title_in_the_tooltip(qtbot, window):
    view = window.results_panel.view
    view.set_title("A title far too long for any image view: " + "wavelengths " * 20)
    qtbot.wait(100)
    label = view.plot.titleLabel
    assert label.text.endswith("…") and label.toolTip() == view.title()
    assert label.item.sceneBoundingRect().right() <= _shown_rect(view).right() + 1
    view.set_title("Short")
    qtbot.wait(100)
    assert label.text == "Short" and label.toolTip() == ""


def test_no_tab_bar_needs_scroll_buttons(qtbot, window):
    run_to_end(qtbot, window)
    qtbot.wait(200)
    bars = [bar for bar in window.findChildren(QTabBar) if bar.isVisible()]
    assert any(bar.count() == 3 and bar.tabText(2) == "Library" for bar in bars)
    for bar in bars:
        texts = [bar.tabText(i) for i in range(bar.count())]
        need = sum(bar.tabSizeHint(i).width() for i in range(bar.count()))
        assert need <= bar.width(), f"tabs {texts} need {need} px, have {bar.width()}"
        assert not any(b.isVisible() for b in bar.findChildren(QToolButton)), f"{texts} shows scroll arrows"


def test_the_exported_spectrum_plot_has_a_readable_legend(qtbot, window, tmp_path, errors):
    from spectramorph_gui.panels.plotting import figure_layout
    from spectramorph_gui.panels.results_export import EXPORT_SCALE, EXPORT_SIZE
    run_to_end(qtbot, window)
    rp = window.results_panel
    rp.select_pixel(10, 10)
    path = tmp_path / "spectra.png"
    rp.export_spectrum_plot(str(path))
    assert errors == [] and path.is_file()
    image = QImage(str(path))
    assert (image.width(), image.height()) == (EXPORT_SIZE[0] * EXPORT_SCALE, EXPORT_SIZE[1] * EXPORT_SCALE)
    with figure_layout(rp.spectrum_plot, EXPORT_SIZE) as source:       # where the export drew the legend
        item = rp.spectrum_plot.getPlotItem()
        axis = item.getAxis("bottom")
        tick_height = QFontMetricsF(axis.style["tickFont"] or axis.font()).height()
        labels = [label.item.sceneBoundingRect().adjusted(0, 4, 0, -4)          # less the text's margins
                  for _s, label in item.legend.items]
        vb = item.vb.sceneBoundingRect()
    assert labels
    for r in labels:
        assert not r.intersects(vb)
        assert r.height() >= tick_height                       # as large as the axes' text, not tiny
        # something is drawn there: dark pixels (text) inside the label's box in the file
        x0, y0 = int((r.left() - source.left()) * EXPORT_SCALE), int((r.top() - source.top()) * EXPORT_SCALE)
        x1, y1 = int((r.right() - source.left()) * EXPORT_SCALE), int((r.bottom() - source.top()) * EXPORT_SCALE)
        dark = sum(1 for x in range(x0, min(x1, image.width()), 2) for y in range(y0, min(y1, image.height()), 2)
                   if image.pixelColor(x, y).lightness() < 100)
        assert dark > 20
    # the widget has its own layout back
    assert rp.spectrum_plot.getPlotItem().sceneBoundingRect().width() <= rp.spectrum_plot.width() + 1


def test_the_scrolling_docks_need_no_sideways_scrolling(qtbot, window):
    """The Data and Export forms fit their docks' default width: only up-down scrolling (the
    composite's band pickers once ran 40 px past the Data dock and hid the blue one)."""
    from PySide6.QtWidgets import QScrollArea
    qtbot.waitUntil(lambda: window.state.prepared is not None, timeout=30000)
    for name in ("data", "export"):
        window.docks[name].show()
        window.docks[name].raise_()
        qtbot.wait(100)
        area = window.findChild(QScrollArea, f"scroll_{name}")
        bar = area.horizontalScrollBar()
        assert bar.maximum() == 0, f"the {name} dock scrolls sideways by {bar.maximum()} px"
    window.docks["data"].raise_()
    window.data_panel.real_radio.setChecked(True)          # the real-world form, with its pair buttons
    qtbot.wait(200)
    bar = window.findChild(QScrollArea, "scroll_data").horizontalScrollBar()
    assert bar.maximum() == 0, f"the real-world Data form scrolls sideways by {bar.maximum()} px"
