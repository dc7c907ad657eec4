"""The fusion methods in the window: the selector, what each uses and ignores, the new keys in
the Training panel and the YAML, progress of the new stages, and the results of each method."""

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from spectramorph_engine import FusionConfig, load_config
from spectramorph_engine.methods import get_method
from spectramorph_gui.panels.training_panel import BAR_TEXT

from .conftest import DEMO_SIZE, run_to_end

NEW_KEYS = ("method", "endmember_method", "nmf_max_iter", "nmf_tol", "spec_prior", "refine", "refine_trust",
            "refine_msi_weight", "refine_tv_weight", "refine_tv_select", "refine_iterations", "refine_subspace",
            "auto_select",
            "hysure_iterations", "hysure_tv_weight", "hysure_msi_weight", "hysure_subspace")
HYSURE_KEYS = ("hysure_iterations", "hysure_tv_weight", "hysure_msi_weight", "hysure_subspace")


def _choose(combo, value):
    i = combo.findData(value)
    assert i >= 0, value
    combo.setCurrentIndex(i)


def _plain(text: str) -> str:
    """A label's rich text as words (tags and entities out, spaces folded)."""
    import html
    import re
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def _enabled(window, key) -> bool:
    return window.training_panel.form.widget(key).isEnabled()


def test_every_new_key_has_a_field_with_its_default_and_key(window):
    form = window.training_panel.form
    defaults = FusionConfig()
    for key in NEW_KEYS:
        bound = form.bound[key]
        tip = bound.widget.toolTip()
        assert f"<code>{key}</code>" in tip and "default" in tip, key
        if key not in ("spec_prior", "method"):
            assert bound.value() == getattr(defaults, key), key
    assert form.bound["method"].value() == "spectramorph"
    assert form.bound["spec_prior"].value() == "auto"
    assert form.bound["refine_subspace"].value() is None          # automatic
    # grouped as a reader looks for them
    for title, keys in (("Method", ("method",)), ("Endmembers", ("endmember_method", "nmf_max_iter", "nmf_tol")),
                        ("Refinement", ("refine", "refine_trust", "refine_subspace")),
                        ("Auto-selection", ("auto_select",)), ("HySure", HYSURE_KEYS)):
        assert set(keys) <= set(form.forms[title].bound), title


def test_uses_text_and_greyed_fields_follow_the_method(qtbot, window):
    tp = window.training_panel
    combo = tp.form.widget("method")
    assert [combo.itemData(i) for i in range(combo.count())] == ["spectramorph", "glp", "hysure"]
    seen = {}
    for method in ("spectramorph", "glp", "hysure"):
        _choose(combo, method)
        assert window.state.config.method == method
        text = _plain(tp.uses_label.text())
        module = get_method(method)
        assert module.TITLE in text
        for sentence in module.USES.values():                 # every USES entry, in the module's words
            assert " ".join(sentence.split()).rstrip(".") in text, (method, sentence)
        seen[method] = text
    assert len(set(seen.values())) == 3
    assert "✗ Ignores the SRF" in seen["glp"]

    # GLP-HS: every SpectraMorph and HySure field greyed, with the reason in its tooltip; the
    # SpectraMorph blocks stay in sight (greyed, not hidden), HySure's own block folds to one line
    _choose(combo, "glp")
    for key in ("epochs", "num_endmembers", "spec_prior", "refine", "auto_select", "device") + HYSURE_KEYS:
        w = tp.form.widget(key)
        assert not w.isEnabled(), key
        assert w.toolTip().startswith("<p><b>Not used by this run:</b>") and "GLP-HS" in w.toolTip(), key
        assert not tp.form.bound[key].label.isEnabled()
        assert w.isVisibleTo(tp) == (key not in HYSURE_KEYS), key
    assert _enabled(window, "verbose")
    for title in ("Training", "Endmembers", "Refinement", "Auto-selection", "HySure"):
        assert "not used by GLP-HS" in tp.form.sections[title].note.text(), title
    assert not tp.form.sections["HySure"].expanded()
    # the SRF panel's training input is SpectraMorph's too
    assert not window.srf_panel.form.widget("training_input").isEnabled()

    # HySure: its own block unfolds and is editable, the device is used, SpectraMorph's are not
    _choose(combo, "hysure")
    assert tp.form.sections["HySure"].expanded() and tp.form.widget("hysure_iterations").isVisibleTo(tp)
    for key in HYSURE_KEYS + ("device",):
        assert _enabled(window, key), key
        assert "Not used" not in tp.form.widget(key).toolTip()
    for key in ("epochs", "hidden_size", "refine_trust", "nmf_tol"):
        assert not _enabled(window, key), key
    tp.form.widget("hysure_iterations").setValue(37)
    assert window.state.config.hysure_iterations == 37

    # SpectraMorph again: its fields come back; HySure's are greyed; refinement fields follow `refine`
    _choose(combo, "spectramorph")
    for key in ("epochs", "num_endmembers", "refine_trust", "auto_select", "device"):
        assert _enabled(window, key), key
    for key in HYSURE_KEYS:
        assert not _enabled(window, key) and "Only HySure" in tp.form.widget(key).toolTip()
    assert not tp.form.sections["HySure"].expanded()
    # a block the user unfolds by hand stays unfolded
    tp.form.sections["HySure"].button.click()
    _choose(combo, "glp")
    _choose(combo, "spectramorph")
    assert tp.form.sections["HySure"].expanded()
    assert window.srf_panel.form.widget("training_input").isEnabled()
    tp.form.widget("refine").setChecked(False)
    assert window.state.config.refine is False
    assert not _enabled(window, "refine_trust") and not _enabled(window, "refine_subspace")
    assert "refinement is off" in tp.form.widget("refine_iterations").toolTip()
    tp.form.widget("refine").setChecked(True)
    assert _enabled(window, "refine_trust")


def test_spec_prior_auto_on_off(qtbot, window, tmp_path):
    tp = window.training_panel
    combo = tp.form.widget("spec_prior")
    assert [combo.itemData(i) for i in range(3)] == ["auto", True, False]
    # the demo pair has 4 MSI bands: auto resolves to off, and the choice says so
    assert combo.itemText(0) == "auto (off for this pair)"
    for value, shown in ((True, "on"), (False, "off"), ("auto", "auto")):
        _choose(combo, value)
        assert window.state.config.spec_prior == value and type(window.state.config.spec_prior) is type(value)
        assert combo.currentText().startswith(shown)
    _choose(combo, False)
    assert not _enabled(window, "prior_downsample")        # no prior, nothing to downsample
    # a file written for the original (spec_prior: null) opens as auto
    path = tmp_path / "orig.yaml"
    path.write_text("spec_prior: null\nepochs: 11\n")
    with qtbot.waitSignal(window.state.loadFinished, timeout=30000) as blocker:
        window.export_panel.open_config(str(path))
    assert blocker.args == [True]
    assert window.state.config.spec_prior == "auto" and combo.currentData() == "auto"
    assert tp.form.widget("epochs").value() == 11


def test_method_and_new_keys_round_trip_through_yaml(qtbot, window, tmp_path):
    tp = window.training_panel
    form = tp.form
    _choose(form.widget("method"), "hysure")
    form.widget("hysure_iterations").setValue(55)
    form.widget("hysure_tv_weight").setValue(0.02)
    form.widget("hysure_msi_weight").setValue(2.5)
    form.widget("hysure_subspace").setValue(6)
    _choose(form.widget("endmember_method"), "minvol")
    form.widget("nmf_max_iter").setValue(123)
    form.widget("nmf_tol").setValue(1e-3)
    _choose(form.widget("spec_prior"), True)
    form.widget("refine_trust").setValue(4.0)
    form.widget("refine_msi_weight").setValue(0.5)
    form.widget("refine_tv_weight").setValue(3.0)
    form.widget("refine_tv_select").setChecked(True)
    form.widget("refine_iterations").setValue(40)
    form.bound["refine_subspace"].widget.check.setChecked(False)
    form.bound["refine_subspace"].widget.spin.setValue(12)
    form.widget("auto_select").setChecked(False)
    saved = window.state.config
    expected = dict(method="hysure", hysure_iterations=55, hysure_tv_weight=pytest.approx(0.02),
                    hysure_msi_weight=2.5, hysure_subspace=6, endmember_method="minvol", nmf_max_iter=123,
                    nmf_tol=pytest.approx(1e-3), spec_prior=True, refine_trust=4.0, refine_msi_weight=0.5,
                    refine_tv_weight=3.0, refine_tv_select=True, refine_iterations=40, refine_subspace=12,
                    auto_select=False)
    for key, value in expected.items():
        assert getattr(saved, key) == value, key

    path = tmp_path / "methods.yaml"
    window.export_panel.save_config(str(path))
    qtbot.waitUntil(lambda: path.exists() and window.state.workers.pending == 0, timeout=30000)
    on_disk = load_config(path)
    assert on_disk.replace(mat_file=None, wavelengths=None) == saved
    assert "method: hysure" in path.read_text()

    from spectramorph_gui.panels.main_window import MainWindow
    other = MainWindow(demo_size=DEMO_SIZE)
    qtbot.addWidget(other)
    other.show()
    qtbot.waitUntil(lambda: other.state.prepared is not None, timeout=30000)
    assert other.training_panel.form.widget("method").currentData() == "spectramorph"
    with qtbot.waitSignal(other.state.loadFinished, timeout=30000) as blocker:
        other.export_panel.open_config(str(path))
    assert blocker.args == [True]
    assert other.state.config == on_disk
    oform = other.training_panel.form
    assert oform.widget("method").currentData() == "hysure"              # the selector is restored
    assert "HySure" in _plain(other.training_panel.uses_label.text())
    for key, value in expected.items():
        assert oform.bound[key].value() == value, key
    assert oform.widget("hysure_iterations").isEnabled() and not oform.widget("epochs").isEnabled()
    other.close()


def _record_progress(window):
    """Every progress-bar text and value the Training panel showed during a run."""
    shown = []
    bar = window.training_panel.progress_bar
    window.state.runProgress.connect(lambda _p: shown.append((bar.format(), bar.value(), bar.maximum())))
    return shown


def test_glp_run_fills_the_scores_and_replaces_the_unmixing_plots(qtbot, window):
    tp, rp = window.training_panel, window.results_panel
    shown = _record_progress(window)
    # a SpectraMorph run first: its endmembers and maps are on screen ...
    sm = run_to_end(qtbot, window, epochs=10)
    assert sm.method == "spectramorph" and rp.endmember_stack.currentIndex() == 0
    assert len(rp.endmember_curves) == sm.endmembers.shape[0]
    assert any(f.startswith("Refining against both images…") and m == 1000 for f, _v, m in shown)
    summary = _plain(rp.run_summary.text())
    assert rp.run_summary.isVisible() and "Settings used:" in summary
    assert "coarse spectral prior off" in summary and "refinement on" in summary
    assert "(estimated from the LR-HSI)" in summary            # refine_subspace left at auto
    # the 16 x 16 LR demo is too small for the reduced-resolution check: the reason is shown
    assert "Auto-selection skipped:" in summary and "too small" in summary

    # ... then GLP-HS: no stale plots, a note in their place, the scores of GLP-HS
    _choose(tp.form.widget("method"), "glp")
    shown.clear()
    with qtbot.waitSignal(window.state.runFinished, timeout=60000):
        qtbot.mouseClick(tp.run_button, Qt.LeftButton)
    result = window.state.result
    assert result.method == "glp" and result.endmembers is None and result.alle is None
    assert any(f.startswith("Fusing (GLP-HS)…") for f, _v, _m in shown)
    assert rp.endmember_stack.currentIndex() == 1 and rp.endmember_note.isVisible()
    assert "GLP-HS has no endmembers or abundance maps" in rp.endmember_note.text()
    assert rp.alle_stack.currentIndex() == 1 and "GLP-HS" in rp.alle_note.text()
    assert rp.endmember_curves == [] and rp.alle_images == []
    t = rp.metrics_table
    assert t.rowCount() == 2 and t.columnCount() == len(result.metrics)
    assert t.verticalHeaderItem(0).text() == "GLP-HS"
    assert "Scores of GLP-HS" in rp.metrics_title.text()
    for name, value in result.metrics.items():
        assert rp.metric_value(name) == pytest.approx(value, rel=1e-3)
    assert result.metrics["PSNR"] > result.bicubic_metrics["PSNR"]
    assert "GLP-HS" in rp.banner.text() and "injection gains" in rp.run_summary.text()
    assert tp.progress_bar.format().startswith("done – GLP-HS")
    assert "Finished (GLP-HS)" in tp.status_label.text()
    # no training: the curves say so, and there are no endmember / ALLE figures to export
    curves = window.curves_panel
    assert curves.point_count() == 0
    assert not curves.lr_plot.isVisible() and not curves.loss_plot.isVisible()
    assert curves.no_curves.isVisible() and "GLP-HS is not iterative" in curves.no_curves.text()
    ep = window.export_panel
    assert ep.save_result_button.isEnabled() and ep.write_all_button.isEnabled()
    assert not ep.save_endmembers_button.isEnabled() and not ep.save_alle_button.isEnabled()
    # the result cube still saves, without endmembers
    path = Path("glp.mat")
    ep.export_result(str(path))
    qtbot.waitUntil(lambda: path.exists() and window.state.workers.pending == 0, timeout=30000)
    from spectramorph_engine import io
    assert io.load_cube(str(path), key="hr_hsi").data.shape == result.hr_hsi.shape
    # and "Write all" writes what GLP-HS has: the cube and the scores, no unmixing figures
    ep.write_all()
    out = Path(window.state.config.output_dir)
    qtbot.waitUntil(lambda: (out / "metrics.json").exists() and window.state.workers.pending == 0, timeout=30000)
    import json
    scores = json.loads((out / "metrics.json").read_text())
    assert scores["method"] == "glp" and scores["glp"]["PSNR"] == pytest.approx(result.metrics["PSNR"])
    assert (out / "hr_hsi.npy").exists() and not list(out.glob("endmembers.*")) and not list(out.glob("abundances*"))


def test_hysure_run_shows_its_objective_and_progress(qtbot, window):
    tp = window.training_panel
    _choose(tp.form.widget("method"), "hysure")
    tp.form.widget("hysure_iterations").setValue(30)
    shown = _record_progress(window)
    with qtbot.waitSignal(window.state.runFinished, timeout=60000):
        qtbot.mouseClick(tp.run_button, Qt.LeftButton)
    result = window.state.result
    assert result.method == "hysure"
    # the progress bar moved through the one "fuse" stage, from the engine's fractions
    fuse = [(f, v) for f, v, m in shown if f.startswith("Fusing (HySure)…") and m == 1000]
    values = [v for _f, v in fuse]
    assert values and values[-1] == 1000 and values == sorted(values)
    assert fuse[-1][0] == "Fusing (HySure)… 100%"
    # the live curves: the ADMM objective per iteration (from 0, before the first), no learning rate
    curves = window.curves_panel
    x, y = curves.loss_curve.getOriginalDataset()
    np.testing.assert_allclose(y, result.method_info["objective"])
    assert x[0] == 0 and x[-1] == 30
    assert "objective" in curves.loss_plot.getPlotItem().titleLabel.text
    assert curves.loss_plot.isVisible() and not curves.lr_plot.isVisible() and not curves.no_curves.isVisible()
    assert "objective" in curves.summary.text()
    rp = window.results_panel
    assert "HySure has no endmembers" in rp.endmember_note.text()
    assert "30 ADMM iterations (the limit, not converged" in rp.run_summary.text()
    assert "30 iterations (the limit: not converged), final objective" in rp.banner.text()
    assert rp.metrics_table.verticalHeaderItem(0).text() == "HySure"


def test_auto_selection_candidates_and_choice_are_shown(qtbot, window, monkeypatch):
    from spectramorph_engine.run import selection
    # the test demo's reduced pair (4 x 4 LR pixels) is below the engine's threshold: lower it
    monkeypatch.setattr(selection, "MIN_REDUCED_PIXELS", 1)
    form = window.training_panel.form
    form.widget("refine_iterations").setValue(10)
    form.widget("nmf_max_iter").setValue(50)
    shown = _record_progress(window)
    result = run_to_end(qtbot, window, epochs=10, timeout=120000)
    sel = result.selection
    assert sel["skipped"] is None and len(sel["candidates"]) >= 3
    assert any(f.startswith(BAR_TEXT["select"]) for f, _v, _m in shown)
    rp = window.results_panel
    text = _plain(rp.run_summary.text())
    assert "Auto-selection" in text
    for cand in sel["candidates"]:
        assert f"{cand['label']} {cand['PSNR']:.2f}" in text
    chosen = sel["chosen"]
    assert (f"chose {chosen}" in text) if chosen != "configured" else ("kept the configured settings" in text)
    assert f"<b>{chosen} " in rp.run_summary.text()                    # the winner stands out
    assert "SAM" in rp.run_summary.toolTip() and "▶ " + chosen in _plain(rp.run_summary.toolTip())
    # what the run then used is the chosen setting (method_info), not the configured one
    used = result.config_used
    assert f"K = {used.num_endmembers}" in text
    assert f"coarse spectral prior {'on' if result.method_info['prior'] else 'off'}" in text


def test_the_reduced_check_says_when_it_is_auto_selections_fusion():
    """The RR columns' tooltips say when the figure is auto-selection's fusion (and its epochs)."""
    from spectramorph_gui.run_summary import consistency_columns
    figures = {"PSNR": 40.0, "SAM": 2.0}
    base = {"lr_consistency": figures, "msi_consistency": figures, "bicubic": {"lr": figures, "msi": figures}}
    check = {"fusion": figures, "bicubic": figures}

    def rr_tips(rr):
        tips = [tip for header, tip, _, _ in consistency_columns({**base, "reduced_resolution": rr})
                if header.startswith("RR")]
        assert tips
        return tips
    assert not any("auto-selection" in tip for tip in rr_tips(check))
    reused = {**check, "source": "auto-selection", "epochs": 100}
    assert all("auto-selection's of the chosen settings (100 epochs)" in tip for tip in rr_tips(reused))
    sampled = {**reused, "training_pixels": 1024}
    assert all("(100 epochs on 1024 LR pixels)" in tip for tip in rr_tips(sampled))
    # with auto-selection off the check trains as the candidates would have, and says so
    own = {**check, "epochs": 100, "training_pixels": 1024}
    assert all("trains 100 epochs on 1024 LR pixels" in tip and "chosen settings" not in tip
               for tip in rr_tips(own))


def test_choosing_the_tv_weight_on_the_demo_says_why_it_was_not_made(qtbot, window):
    """'Choose TV weight' (on by default) on the demo (synthetic mode: its SRF is given, where the
    choice misled on the bench): the run says so, and its summary names the TV weight it used."""
    form = window.training_panel.form
    form.widget("refine_iterations").setValue(10)
    assert form.widget("refine_tv_select").isChecked()
    said = []
    window.state.workers.message.connect(lambda level, text: said.append(text))
    result = run_to_end(qtbot, window, epochs=10, timeout=120000)
    tv = result.method_info["tv_selection"]
    assert "SRF is given" in tv["skipped"] and result.config_used.refine_tv_weight == 10.0
    text = _plain(window.results_panel.run_summary.text())
    assert "TV weight 10 (not chosen: the SRF is given" in text
    assert any(t.startswith("VTV weight 10 as configured") for t in said)


def test_a_blind_pair_gets_its_tv_weight_chosen_in_its_own_stage(qtbot, window, tmp_path):
    """The demo's pair opened as a real one (the SRF estimated from it): the run chooses the TV
    weight by default, the bar says so while it does, and the summary names what it did."""
    from spectramorph_gui.panels.training_panel import BAR_TEXT
    from .test_panels import open_real_pair
    open_real_pair(qtbot, window, tmp_path)
    window.training_panel.form.widget("refine_iterations").setValue(10)
    shown = _record_progress(window)
    result = run_to_end(qtbot, window, epochs=10, timeout=120000)
    tv = result.method_info["tv_selection"]
    assert tv["skipped"] is None and "tv" in result.timings
    assert any(f.startswith(BAR_TEXT["tv"]) for f, _v, _m in shown)
    assert result.config_used.refine_tv_weight == tv["chosen"]
    words = ("(chosen from left-out MSI bands; 10 configured)" if tv["chosen"] != 10.0 else
             "(kept: no other weight predicted the left-out MSI bands better)")
    assert f"TV weight {tv['chosen']:g} {words}" in _plain(window.results_panel.run_summary.text())


def test_the_summary_of_a_chosen_tv_weight_names_it_and_lists_the_errors():
    """Qt-free: a run whose TV weight was chosen says so beside the weight, and the details list
    each candidate's error with the chosen one marked."""
    from types import SimpleNamespace
    from spectramorph_gui.run_summary import run_summary
    tv = {"configured": 10.0, "chosen": 2.5, "skipped": None, "errors": {"1": 3e-4, "2.5": 2e-4, "10": 4e-4}}
    r = SimpleNamespace(method="spectramorph", selection=None, config_used=FusionConfig(refine_tv_weight=2.5),
                        method_info={"prior": False, "num_endmembers": 7, "endmember_method": "minvol",
                                     "refined": True, "tv_selection": tv,
                                     "refinement": {"iterations": 200, "subspace_dim": 7, "tv_weight": 0.01}})
    text, details = run_summary(r)
    assert "TV weight <b>2.5</b> (chosen from left-out MSI bands; 10 configured)" in text
    assert "▶ 2.5" in _plain(details) and "TV weight chosen from left-out MSI bands" in _plain(details)
