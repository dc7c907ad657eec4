"""Training panel: Run / Stop, the progress of a run, and every training parameter.

The parameters are bound to the config (defaults, units and tooltips from
one table below); Run hands the current config and inputs to the worker.
"""
from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QGroupBox, QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton,
                               QScrollArea, QVBoxLayout, QWidget)

from spectramorph_engine.run.config import DEVICES, ENDMEMBER_METHODS, SCHEDULERS

from .fields import Field, SectionedForm, format_clock
from .method_text import METHOD_NAMES, short_name, title, uses_lines
from .style import RUN_STYLE, STOP_STYLE

STAGE_TEXT = {"starting": "Starting…", "load": "Preparing the inputs…", "degrade": "Degrading…",
              "check": "Checking the settings on the reduced-resolution pair…",
              "select": "Choosing settings on the reduced-resolution pair…",
              "tv": "Choosing the TV weight from left-out MSI bands…",
              "nmf": "Extracting endmembers (NMF)…", "train": "Training", "inference": "Inference…",
              "refine": "Refining against both images…", "fuse": "Fusing…",
              "metrics": "Scoring…", "save": "Saving…", "done": "Finished", "stopped": "Stopped",
              "failed": "Failed"}
ENDED_STAGES = ("done", "stopped", "failed")
# the progress bar's own words where the stage's text is too long for the bar in its dock (the
# status line under it keeps the whole text)
BAR_TEXT = {"check": "Reduced-resolution check…", "select": "Choosing settings…", "tv": "Choosing TV weight…"}


def stage_text(stage: str, method: str = "spectramorph") -> str:
    """The progress text of a stage; a classical method's one stage names the method."""
    if stage == "fuse":
        return f"Fusing ({short_name(method)})…"
    return STAGE_TEXT.get(stage, stage)


# The answers to Stop's question
FINISH, DISCARD, KEEP = "finish", "discard", "keep"
STOP_TIP = ("Stop the run: finish it with the network as trained so far, or discard it (Esc). "
            "Asks first.")


def _training_text(epoch, epochs, loss, held: bool) -> str:
    at = f"epoch {epoch} of {epochs}" if epochs else "the first epoch"
    loss = "" if loss is None else f", loss {loss:.4g}"
    if held:
        return f"Training is paused at {at}{loss}."
    return f"Training is at {at}{loss}; it pauses at the end of this epoch while you choose."


FINISH_TEXT = ("Finish: the run goes on with the network as trained up to that epoch (inference, refinement "
               "and scores take a moment); the result is shown. The loss has usually levelled off well "
               "before the last epoch.\n\nDiscard: the run ends with no result.")


def ask_stop(parent, progress, ended=(), held=None) -> str:
    """Ask what Stop should do; returns FINISH, DISCARD or KEEP. `progress`: the run's
    RunProgress. FINISH is offered only while the network trains (elsewhere there is nothing to
    finish early). `ended`: signals that close the question unanswered (KEEP) -- the run ended
    meanwhile. `held`: a signal (epoch, epochs, loss) saying where training waits while the
    question is open: the text then names the epoch that "finish" keeps (and a question asked
    before training began offers Finish once training waits). Tests replace this function."""
    training = progress.stage == "train"
    box = QMessageBox(parent)
    box.setObjectName("stopQuestion")
    box.setIcon(QMessageBox.Question)
    box.setWindowTitle("Stop the run?")
    box.setTextFormat(Qt.PlainText)
    if training:
        box.setText(_training_text(progress.epoch, progress.epochs, progress.loss, held=False))
        box.setInformativeText(FINISH_TEXT)
    else:
        doing = stage_text(progress.stage, progress.method).rstrip("…")
        doing = doing[:1].lower() + doing[1:]
        box.setText(f"The run is {doing}." if progress.stage not in ("starting", "") else "The run is starting.")
        box.setInformativeText("Nothing is training now, so there is nothing to finish early.\n\n"
                               "Discard: the run ends with no result.")
    buttons = {"finish": None}
    discard = box.addButton("Discard this run", QMessageBox.DestructiveRole)
    keep = box.addButton("Keep training" if training else "Keep going", QMessageBox.RejectRole)

    def offer_finish():
        buttons["finish"] = box.addButton("Finish with the model trained so far", QMessageBox.AcceptRole)
        box.setDefaultButton(buttons["finish"])
        keep.setText("Keep training")
    if training:
        offer_finish()
    else:
        box.setDefaultButton(keep)
    box.setEscapeButton(keep)                 # Escape again never discards

    def paused(epoch, epochs, loss):
        # training reached the end of an epoch and waits there: say which, and (when the
        # question was asked before training began) offer to finish with it
        if buttons["finish"] is None:
            offer_finish()
            box.setInformativeText(FINISH_TEXT)
        box.setText(_training_text(epoch, epochs, loss, held=True))
    for signal in ended:
        signal.connect(box.reject)
    if held is not None:
        held.connect(paused)
    try:
        box.exec()
    finally:
        for signal in list(ended) + ([held] if held is not None else []):
            try:
                signal.disconnect(paused if signal is held else box.reject)
            except (RuntimeError, TypeError):
                pass
    clicked = box.clickedButton()
    if buttons["finish"] is not None and clicked is buttons["finish"]:
        return FINISH
    if clicked is discard:
        return DISCARD
    return KEEP


def stop_asking(state, parent=None) -> str:
    """What every Stop of the app does (the button, Escape, the results' Stop): ask (ask_stop),
    then finish training, discard the run, or keep going. Returns the answer acted on
    (KEEP when no run is going or it ended while the question was open)."""
    if not state.running:
        return KEEP
    state.hold_training()            # the epoch the question names is the one "finish" keeps
    try:
        choice = ask_stop(parent, state.progress, ended=(state.runFinished, state.runFailed, state.runCancelled),
                          held=state.trainingHeld)
        if not state.running:            # the run ended while the question was open
            return KEEP
        if choice == DISCARD:
            state.stop_run()
        elif choice == FINISH:
            state.finish_training()
    finally:
        state.release_training()         # after the answer: finish / cancel is seen first
    return choice


SPECTRAMORPH = ("spectramorph",)
NOT_SPECTRAMORPH = ("{method} does not read this SpectraMorph setting: it trains no network and has no "
                    "endmembers, prior, refinement or auto-selection.")
HYSURE = ("hysure",)
NOT_HYSURE = "Only HySure reads this; the chosen method is {method}."


def _sm(key, label, tip, **kw) -> Field:
    """A SpectraMorph-only field."""
    return Field(key, label, tip, methods=SPECTRAMORPH, why_ignored=NOT_SPECTRAMORPH, **kw)


def _hs(key, label, tip, **kw) -> Field:
    """A HySure-only field."""
    return Field(key, label, tip, methods=HYSURE, why_ignored=NOT_HYSURE, **kw)


METHOD_FIELDS = [
    Field("method", "Fuse with", "Which fusion method runs on the pair: SpectraMorph (the network of this "
          "project) or one of two classical methods, scored the same way: GLP-HS (hypersharpening, "
          "seconds) and HySure (convex, uses the PSF and the SRF).", kind="choice", choices=METHOD_NAMES,
          choice_labels=[short_name(n) for n in METHOD_NAMES]),
]
HYSURE_FIELDS = [
    _hs("hysure_iterations", "Iterations", "Most ADMM iterations of HySure; it stops sooner once converged.", minimum=1, maximum=100_000, step=50),
    _hs("hysure_tv_weight", "TV weight", "Weight of the vector total variation prior: larger is smoother.",
        kind="sci", minimum=0.0, maximum=1e3),
    _hs("hysure_msi_weight", "MSI weight", "Weight of the HR-MSI data term against the LR-HSI's.",
        minimum=0.0, maximum=1e6, step=0.1, decimals=3),
    _hs("hysure_subspace", "Subspace", "Dimension of the spectral subspace (principal components of the "
        "LR-HSI) that HySure solves in.", minimum=1, maximum=1024),
]
SELECTION_FIELDS = [
    _sm("auto_select", "Choose settings", "Before the run, fuse a few candidate settings (coarse prior on/off when "
        "it is auto, K − 2 and K + 2, the other endmember method, the refinement off) on the "
        "reduced-resolution pair (both images degraded by the ratio, scored against the LR-HSI) with short "
        "training, and run the best. Off: exactly the settings below. Skipped on scenes too small for the "
        "check (the results say why).", null_text="from the data"),
]
TRAINING_FIELDS = [
    _sm("epochs", "Epochs", "Training passes over the LR pixels.", minimum=1, maximum=1_000_000, step=100),
    _sm("hidden_size", "Hidden units", "Width of the per-pixel network's hidden layer.", minimum=1,
        maximum=65536, step=64),
    _sm("scheduler", "LR schedule", "one_cycle: linear from the initial LR up to the maximum over the first "
        "30% of epochs, then down to the final LR; flat: the initial LR throughout.", kind="choice",
        choices=SCHEDULERS),
    _sm("init_lr", "Initial LR", "Adam learning rate at epoch 1 (and throughout with 'flat').", kind="sci"),
    _sm("max_lr", "Maximum LR", "Peak learning rate of one_cycle, reached at 30% of the epochs.", kind="sci"),
    _sm("final_lr", "Final LR", "Learning rate at the last epoch of one_cycle.", kind="sci"),
    _sm("training_batch_size", "Training batch", "LR pixels per optimiser step, shuffled every epoch; "
        "'all' trains on every pixel at once.", kind="opt_int", unit="px", minimum=1, maximum=10 ** 8,
        step=256, null_text="all"),
    _sm("max_training_pixels", "Training pixels", "At most this many LR pixels train the network: past it, "
        "a fixed sample spread evenly over the image (seeded), so training time stops growing with the "
        "scene; 'all' trains on every pixel.", kind="opt_int", unit="px", minimum=1, maximum=10 ** 9,
        step=1024, null_text="all"),
    _sm("inference_batch_size", "Inference batch", "HR pixels per inference batch: bounds memory, the "
        "result is identical; 'auto' picks a size.", kind="opt_int", unit="px", minimum=1,
        maximum=10 ** 9, step=4096, null_text="auto"),
    _sm("spec_prior", "Spectral prior", "Coarse spectral prior (CSP): feed each pixel a coarse LR-HSI "
        "spectrum beside its MSI values. auto: on for 1-2 MSI bands at ratios up to 4 (where the MSI alone "
        "cannot tell spectra apart), and wherever auto-selection finds it better; on / off force it. "
        "null in a YAML file means auto.", kind="choice", choices=("auto", True, False),
        choice_labels=("auto", "on", "off")),
    _sm("prior_downsample", "Prior downsample", "Area-downsampling factor of the LR-HSI that makes the "
        "coarse prior during training.", unit="×", minimum=1, maximum=64),
]
ENDMEMBER_FIELDS = [
    _sm("num_endmembers", "Endmembers K", "Number of NMF components (materials) taken from the LR-HSI; "
        "at most min(LR pixels, bands).", minimum=1, maximum=256),
    _sm("endmember_method", "Extraction", "minvol (the default): NMF followed by a minimum-volume refinement, "
        "purer spectra and the better fusion on our benches; nmf: plain NMF, as the original implementation.",
        kind="choice", choices=ENDMEMBER_METHODS, choice_labels=("NMF (plain)", "minimum volume")),
    _sm("nmf_max_iter", "NMF iterations", "Most NMF iterations.", minimum=1, maximum=1_000_000, step=100),
    _sm("nmf_tol", "NMF tolerance", "NMF stops when its error fell by less than this fraction over 10 "
        "iterations.", kind="sci", minimum=0.0, maximum=1.0),
]
REFINE_OFF = "The refinement is off (Refine unchecked)."
REFINEMENT_FIELDS = [
    _sm("refine", "Refine", "After inference, correct the result so that it agrees with both images: "
        "blurred and downsampled it must give the LR-HSI, seen through the SRF the HR-MSI.",
        null_text="against both images"),
    _sm("refine_trust", "Trust", "How much correction the refinement allows, relative to the error the "
        "LR-HSI shows.", minimum=0.01, maximum=1e6, step=1.0),
    _sm("refine_msi_weight", "MSI weight", "Weight of the HR-MSI against the LR-HSI in the refinement.",
        minimum=0.0, maximum=1e6, step=0.1, decimals=3),
    _sm("refine_tv_weight", "TV weight", "Vector total variation of the refined cube, in units of the "
        "LR-HSI's noise variance; 0: none. 10 suits flat regions with sharp edges; real-world pairs "
        "of a textured scene did better with 1-2.5 on the bench (with 2+ MSI bands, Choose TV weight finds "
        "it from the pair).", minimum=0.0, maximum=1e6, step=1.0),
    _sm("refine_tv_select", "Choose TV weight", "Choose the TV weight for this pair (1, 2.5, 5, 10 or 20, "
        "and the weight above): each MSI band in turn (at most four) is left out, a short fusion is made "
        "without it, and the weight whose result predicts the left-out bands best is used if it beats the "
        "weight above by 2%. "
        "Needs 2 or more MSI bands and an SRF estimated from the pair that explains it (with a given SRF, or "
        "under a camera the SRF cannot explain, it misled: the run then keeps the weight above); costs a few "
        "short trainings on a crop of the pair (a few seconds). On by default: on the blind bench it never lost "
        "and gained most on real texture; uncheck to run exactly the weight above.",
        null_text="from left-out MSI bands"),
    _sm("refine_iterations", "Iterations", "ADMM iterations with TV (without TV, conjugate gradients stop "
        "earlier by tolerance).", minimum=1, maximum=100_000, step=50),
    _sm("refine_subspace", "Subspace", "Dimension of the refinement's spectral subspace; 'auto': the "
        "LR-HSI's directions whose signal exceeds its noise, at least K and at most max(K, 10).", kind="opt_int",
        minimum=1, maximum=1024, null_text="auto"),
]
COMPUTE_FIELDS = [
    Field("device", "Device", "Where torch runs: auto picks CUDA, then MPS, then CPU.", kind="choice",
          choices=DEVICES, methods=("spectramorph", "hysure"),
          why_ignored="{method} runs on the CPU with numpy: the device is not used."),
    Field("verbose", "Log level", "0: warnings only in the log; 1: stage lines and timings.",
          minimum=0, maximum=2),
]
# (title, fields, unfolded at start, note: who reads the block). A block folded at start (one
# method's own settings) then follows the method: unfolded while it is chosen, folded otherwise,
# until the user folds or unfolds it by hand. The other blocks never fold by themselves: the
# settings a method ignores stay in sight, greyed out.
SECTIONS = [
    ("Method", METHOD_FIELDS, True, ""),
    ("HySure", HYSURE_FIELDS, False, "HySure only"),
    ("Auto-selection", SELECTION_FIELDS, True, "SpectraMorph, before the run"),
    ("Training", TRAINING_FIELDS, True, "SpectraMorph's network"),
    ("Endmembers", ENDMEMBER_FIELDS, True, "SpectraMorph"),
    ("Refinement", REFINEMENT_FIELDS, True, "SpectraMorph, after inference"),
    ("Computation", COMPUTE_FIELDS, True, ""),
]
ALL_FIELDS = [f for _t, fields, _e, _n in SECTIONS for f in fields]


def uses_html(method: str) -> str:
    """What the method uses (✓) and ignores (✗), from its module's USES."""
    lines = "".join(
        f"<br><span style='color:{'#2e7d32' if used else '#c62828'}'>{'✓' if used else '✗'}</span> "
        f"{escape(sentence)}" for used, sentence in uses_lines(method))
    return f"<b>{escape(title(method))}</b>{lines}"


def ignored_reason(field: Field, config) -> str | None:
    """Why a run with `config` does not read `field`, or None when it does."""
    if field.methods is not None and config.method not in field.methods:
        return field.why_ignored.format(method=short_name(config.method))
    if field.key.startswith("refine_") and not config.refine:
        return REFINE_OFF
    if field.key == "prior_downsample" and config.spec_prior is False:
        return "The coarse spectral prior is off."
    return None


class TrainingPanel(QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state

        self.run_button = QPushButton("▶  Run")
        self.run_button.setObjectName("runButton")
        self.run_button.setToolTip("Fuse the current inputs with these parameters (Ctrl+R).")
        self.stop_button = QPushButton("■  Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setToolTip(STOP_TIP)
        self.stop_button.setEnabled(False)
        for b in (self.run_button, self.stop_button):
            b.setMinimumHeight(40)
        self.run_button.setStyleSheet(RUN_STYLE)
        self.stop_button.setStyleSheet(STOP_STYLE)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("ready")
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setMinimumHeight(24)
        self.progress_bar.setObjectName("runProgress")
        self.status_label = QLabel("Ready.")
        self.status_label.setObjectName("runStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.RichText)    # every status text is HTML (&nbsp;, <b>)

        run_box = QGroupBox("Run")
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 2)
        buttons.addWidget(self.stop_button, 1)
        box_layout = QVBoxLayout(run_box)
        box_layout.addLayout(buttons)
        box_layout.addWidget(self.progress_bar)
        box_layout.addWidget(self.status_label)

        self.form = SectionedForm(state, [(t, fields, unfolded) for t, fields, unfolded, _n in SECTIONS])
        self.section_notes = {t: note for t, _f, _u, note in SECTIONS}
        self.method_blocks = {t for t, _f, unfolded, _n in SECTIONS if not unfolded}
        self.uses_label = QLabel()
        self.uses_label.setObjectName("methodUses")
        self.uses_label.setWordWrap(True)
        self.uses_label.setTextFormat(Qt.RichText)
        self.uses_label.setStyleSheet("QLabel#methodUses { background: #f5f7fa; border: 1px solid #d0d7de; "
                                      "border-radius: 3px; padding: 4px; }")
        self.form.forms["Method"].form.addRow(self.uses_label)
        method_combo = self.form.widget("method")
        for i in range(method_combo.count()):
            method_combo.setItemData(i, title(method_combo.itemData(i)), Qt.ToolTipRole)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        scroll.setWidget(self.form)
        self.scroll = scroll

        layout = QVBoxLayout(self)
        layout.addWidget(run_box)
        layout.addWidget(scroll, 1)

        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        state.runStarted.connect(self._on_started)
        state.runProgress.connect(self._on_progress)
        state.runFinished.connect(lambda r: self._on_ended(finished_text(r)))
        state.runFailed.connect(lambda text: self._on_ended(f"Failed: {text}", error=True))
        state.runCancelled.connect(self._on_cancelled)
        state.preparedChanged.connect(lambda _p: self._update_run_enabled())
        state.preparedChanged.connect(lambda _p: self._show_method(state.config))
        state.busyChanged.connect(lambda _l: self._update_run_enabled())
        state.configChanged.connect(self._show_method)
        self._show_method(state.config)
        self._update_run_enabled()

    # ------------------------------------------------------------------ user actions
    def run(self) -> None:
        if self.run_button.isEnabled():
            self.state.start_run()

    def stop(self) -> None:
        """Stop, as the user asks for it: finish with the network trained so far, discard the
        run, or keep going (ask_stop). Nothing is discarded without that answer."""
        if stop_asking(self.state, self) == FINISH:
            p = self.state.progress
            self.status_label.setText(f"<b>Finishing</b> with the network as trained at epoch {p.epoch} "
                                      f"of {p.epochs}…")

    # ------------------------------------------------------------------ reactions
    def _show_method(self, config) -> None:
        """What the chosen method uses, and the fields it ignores greyed out (with the reason)."""
        method = config.method
        self.uses_label.setText(uses_html(method))
        for f in ALL_FIELDS:
            self.form.bound[f.key].set_ignored(ignored_reason(f, config))
        for t, section in self.form.sections.items():
            readers = {m for f in self.form.forms[t].bound.values() for m in (f.field.methods or METHOD_NAMES)}
            used = method in readers
            note = self.section_notes[t]
            section.set_note(note if used else f"not used by {short_name(method)}")
            if t in self.method_blocks and not section.user_folded:
                section.set_expanded(used)
        self._show_prior_choice(config)

    def _show_prior_choice(self, config) -> None:
        """'auto' says what it resolves to for the prepared pair."""
        combo = self.form.widget("spec_prior")
        p = self.state.prepared
        text = "auto"
        if p is not None:
            on = config.use_prior_for(p.hr_msi.shape[2], p.ratio)
            text = f"auto ({'on' if on else 'off'} for this pair)"
        combo.setItemText(combo.findData("auto"), text)

    def _update_run_enabled(self) -> None:
        s = self.state
        ready = s.prepared is not None and not s.running
        self.run_button.setEnabled(ready)
        if s.running:
            return
        if s.prepared is None:
            self.run_button.setToolTip(s.prepare_error or "Waiting for the inputs to be prepared.")
        else:
            self.run_button.setToolTip("Fuse the current inputs with these parameters (Ctrl+R).")

    def _on_started(self) -> None:
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.form.setEnabled(False)
        self.progress_bar.setRange(0, 0)      # busy until the first stage reports a fraction
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("starting…")
        self.status_label.setText(f"Starting {escape(short_name(self.state.progress.method))}…")

    def _on_progress(self, p) -> None:
        if p.stage in ENDED_STAGES:
            return
        if p.stage == "train":
            if not p.epochs:
                return
            self.progress_bar.setRange(0, p.epochs)
            self.progress_bar.setValue(p.epoch)
            loss = "–" if p.loss is None else f"{p.loss:.4g}"
            lr = "–" if p.lr is None else f"{p.lr:.2e}"
            self.progress_bar.setFormat(f"epoch {p.epoch} / {p.epochs} · loss {loss} · {format_clock(p.eta)} left")
            self.status_label.setText(f"<b>Training</b> &nbsp; loss {loss} &nbsp; lr {lr} &nbsp; "
                                      f"<b>{format_clock(p.eta)}</b> left &nbsp; ({format_clock(p.elapsed)} elapsed)")
            return
        text = stage_text(p.stage, p.method)
        short = BAR_TEXT.get(p.stage, text)
        if p.fraction is not None:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * p.fraction))
            self.progress_bar.setFormat(f"{short} {100 * p.fraction:.0f}%")
        else:
            self.progress_bar.setRange(0, 0)   # busy indicator: no fraction known
            self.progress_bar.setFormat(short)
        self.status_label.setText(f"{escape(text)} &nbsp; ({format_clock(p.elapsed)} elapsed)")

    def _on_cancelled(self, _text) -> None:
        p = self.state.progress
        where = f"at epoch {p.epoch}" if p.stage == "train" or p.epoch else \
            f"while {stage_text(p.stage, p.method).rstrip('…').lower()}"
        self._on_ended(f"Stopped {where}: no result.")

    def _on_ended(self, text: str, error: bool = False) -> None:
        self.stop_button.setEnabled(False)
        self.form.setEnabled(True)
        p = self.state.progress
        if p.stage == "done":
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(1)
            r = self.state.result
            stopped = getattr(r, "training_stopped", None) if r is not None else None
            if stopped:
                self.progress_bar.setFormat(f"done – {stopped['epoch']} of {stopped['epochs']} epochs")
            elif r is not None and r.lr_history:
                self.progress_bar.setFormat(f"done – {len(r.lr_history)} epochs")
            else:
                seconds = sum(r.timings.values()) if r is not None else p.elapsed
                self.progress_bar.setFormat(f"done – {short_name(p.method)} in {seconds:.1f} s")
        else:
            self.progress_bar.setRange(0, max(p.epochs, 1))
            self.progress_bar.setValue(p.epoch)
            self.progress_bar.setFormat("stopped" if p.stage == "stopped" else "failed")
        colour = "#b71c1c" if error else "#1b5e20" if p.stage == "done" else "#e65100"
        self.status_label.setText(f"<span style='color:{colour}'>{escape(text)}</span>")
        self._update_run_enabled()


def finished_text(r) -> str:
    """One line on a finished run in its method's own terms (the engine's method_report: a loss
    for a trained network, an objective for a solver, neither for GLP-HS)."""
    from spectramorph_engine.run.method_report import facts_text, result_figures
    return f"Finished ({short_name(r.method)}): {facts_text(result_figures(r))}, device {r.device}."
