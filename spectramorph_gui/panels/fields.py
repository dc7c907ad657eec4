"""Widgets bound to one `FusionConfig` key each.

A panel lists its keys with a label, a unit and a tooltip; `ConfigForm`
builds the right editor, writes user edits to the state (the config object
validates them) and puts the config's value back into the widget whenever the
config changes (a YAML file opened, an edit refused). Tooltips always end with
the key's name and its default so the YAML and the window read the same.
"""
from __future__ import annotations

import math
from dataclasses import fields as dc_fields
from html import escape
from typing import Any, Optional, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from spectramorph_engine import FusionConfig

DEFAULTS = FusionConfig()
_MISSING = object()


def default_text(key: str) -> str:
    value = getattr(DEFAULTS, key)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def tooltip(key: str, text: str) -> str:
    return f"<p>{text}</p><p><i>Config key</i> <code>{key}</code>, default <code>{default_text(key)}</code>.</p>"


class SciSpinBox(QDoubleSpinBox):
    """A spin box for values spanning decades (learning rates): shows 1e-06, steps by ~x1.26."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setDecimals(15)
        self.setRange(1e-12, 10.0)
        self.setKeyboardTracking(False)
        self.setMinimumWidth(70)

    def textFromValue(self, value: float) -> str:
        return f"{value:.4g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip().replace(self.suffix(), ""))
        except ValueError:
            return self.value()

    def validate(self, text, pos):
        body = text.strip().replace(self.suffix(), "") if self.suffix() else text.strip()
        if body in ("", "-", ".", "e", "1e", "1e-"):
            return QValidator.Intermediate, text, pos
        try:
            float(body)
        except ValueError:
            lowered = body.lower()
            ok = all(c in "0123456789.e-+" for c in lowered)
            return (QValidator.Intermediate if ok else QValidator.Invalid), text, pos
        return QValidator.Acceptable, text, pos

    def stepBy(self, steps: int) -> None:
        # one step = a tenth of a decade, the natural unit for learning rates and weights;
        # from 0 (allowed for some weights) the first step up lands on the smallest decade shown
        if self.value() <= 0:
            if steps > 0:
                self.setValue(max(self.minimum(), 1e-6))
            return
        self.setValue(self.value() * 10 ** (steps / 10))


class OptionalNumber(QWidget):
    """A number or null: a check box names what null means ('all pixels', 'no noise')."""
    changed = Signal()

    def __init__(self, null_text: str, spin, parent=None):
        super().__init__(parent)
        self.spin = spin
        self.check = QCheckBox(null_text)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.spin, 1)
        lay.addWidget(self.check)
        self.check.toggled.connect(self._toggled)
        self.spin.valueChanged.connect(lambda _v: self.changed.emit())

    def _toggled(self, on):
        self._show_null(on)
        self.changed.emit()

    def _show_null(self, null: bool) -> None:
        """Null: the box is disabled and reads '—' (not a stale number); the number typed before
        comes back when the box is unchecked."""
        spin = self.spin
        spin.blockSignals(True)
        if null:
            if spin.specialValueText() == "":
                self._last = spin.value()
            spin.setSpecialValueText("—")
            spin.setValue(spin.minimum())
        elif spin.specialValueText():
            spin.setSpecialValueText("")
            spin.setValue(getattr(self, "_last", spin.value()))
        spin.blockSignals(False)
        spin.setEnabled(not null)

    def value(self):
        return None if self.check.isChecked() else self.spin.value()

    def setValue(self, value):
        self.check.blockSignals(True)
        self.check.setChecked(value is None)
        self.check.blockSignals(False)
        self._show_null(value is None)
        if value is not None:
            self.spin.setValue(value)


class Field:
    """Spec of one editor: key, label, kind and options. `methods` names the fusion methods that
    read the key (None: every method); `why_ignored` is the sentence shown when the chosen method
    does not ('{method}' is replaced by its name)."""

    def __init__(self, key: str, label: str, tip: str, kind: str = "auto", unit: str = "",
                 minimum: Optional[float] = None, maximum: Optional[float] = None, step: Optional[float] = None,
                 decimals: int = 2, choices: Optional[Sequence] = None, choice_labels: Optional[Sequence] = None,
                 null_text: str = "", methods: Optional[Sequence[str]] = None, why_ignored: str = ""):
        self.key, self.label, self.tip, self.kind, self.unit = key, label, tip, kind, unit
        self.minimum, self.maximum, self.step, self.decimals = minimum, maximum, step, decimals
        self.choices, self.choice_labels, self.null_text = choices, choice_labels, null_text
        self.methods = None if methods is None else tuple(methods)
        self.why_ignored = why_ignored


def _make_spin(f: Field, integer: bool):
    spin = QSpinBox() if integer else QDoubleSpinBox()
    if not integer:
        spin.setDecimals(f.decimals)
    lo = f.minimum if f.minimum is not None else (1 if integer else 0.0)
    hi = f.maximum if f.maximum is not None else (10 ** 9 if integer else 1e6)
    spin.setRange(int(lo) if integer else lo, int(hi) if integer else hi)
    if f.step is not None:
        spin.setSingleStep(int(f.step) if integer else f.step)
    if f.unit:
        spin.setSuffix(f" {f.unit}")
    spin.setKeyboardTracking(False)   # commit on Enter / focus out / arrows, not per keystroke
    spin.setAlignment(Qt.AlignRight)
    spin.setMinimumWidth(70)          # a huge maximum (batch sizes) must not widen the whole dock
    return spin


class BoundWidget:
    """One editor bound to one key."""

    def __init__(self, state, f: Field):
        self.state, self.field = state, f
        kind = f.kind
        if kind == "auto":
            default = getattr(DEFAULTS, f.key)
            kind = ("bool" if isinstance(default, bool) else "int" if isinstance(default, int)
                    else "float" if isinstance(default, float) else "str")
        self.kind = kind
        if kind == "int":
            w = _make_spin(f, integer=True)
            w.valueChanged.connect(self._commit)
        elif kind == "float":
            w = _make_spin(f, integer=False)
            w.valueChanged.connect(self._commit)
        elif kind == "sci":
            w = SciSpinBox()
            if f.minimum is not None or f.maximum is not None:
                w.setRange(w.minimum() if f.minimum is None else f.minimum,
                           w.maximum() if f.maximum is None else f.maximum)
            if f.unit:
                w.setSuffix(f" {f.unit}")
            w.valueChanged.connect(self._commit)
        elif kind in ("opt_int", "opt_float"):
            w = OptionalNumber(f.null_text, _make_spin(f, integer=kind == "opt_int"))
            w.changed.connect(self._commit)
        elif kind == "bool":
            w = QCheckBox(f.null_text or "")
            w.toggled.connect(self._commit)
        elif kind == "choice":
            w = QComboBox()
            # Long item texts must not widen the whole dock: the popup still shows them in full.
            w.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            w.setMinimumContentsLength(10)
            labels = f.choice_labels or [str(c) for c in f.choices]
            for value, text in zip(f.choices, labels):
                w.addItem(text, value)
            w.currentIndexChanged.connect(self._commit)
        elif kind == "str":
            w = QLineEdit()
            w.editingFinished.connect(self._commit)
        else:
            raise ValueError(f"unknown field kind {kind}")
        self.base_tip = tooltip(f.key, f.tip)
        w.setToolTip(self.base_tip)
        w.setObjectName(f"field_{f.key}")
        self.widget = w
        self.label: Optional[QLabel] = None
        self.ignored_reason: Optional[str] = None
        self._updating = False
        self.show(getattr(state.config, f.key))

    def set_ignored(self, reason: Optional[str]) -> None:
        """Grey the editor (and its label) out, its tooltip opening with why the run ignores it;
        None makes it editable again. Disabled, not hidden: the value is still there to read."""
        self.ignored_reason = reason
        tip = self.base_tip if reason is None else \
            f"<p><b>Not used by this run:</b> {escape(reason)}</p>{self.base_tip}"
        for w in (self.widget, self.label):
            if w is not None:
                w.setEnabled(reason is None)
                w.setToolTip(tip)

    # value <-> widget ---------------------------------------------------
    def value(self) -> Any:
        w, k = self.widget, self.kind
        if k in ("int", "float", "sci", "opt_int", "opt_float"):
            return w.value()
        if k == "bool":
            return w.isChecked()
        if k == "choice":
            return w.currentData()
        text = w.text().strip()
        return text or None

    def show(self, value) -> None:
        self._updating = True
        try:
            w, k = self.widget, self.kind
            if k in ("int", "float", "sci", "opt_int", "opt_float"):
                w.setValue(value)
            elif k == "bool":
                w.setChecked(bool(value))
            elif k == "choice":
                i = w.findData(value)
                if i < 0:   # a value the list does not offer (from a YAML file): show it anyway
                    w.addItem(str(value), value)
                    i = w.count() - 1
                w.setCurrentIndex(i)
            else:
                w.setText("" if value is None else str(value))
        finally:
            self._updating = False

    def show_null_value(self, value) -> None:
        """An optional number left at null ('auto'): show what null resolves to in the disabled
        box, without committing it."""
        if self.kind in ("opt_int", "opt_float") and self.widget.value() is None:
            self._updating = True
            try:
                self.widget.spin.setValue(value)
            finally:
                self._updating = False

    def _commit(self, *_):
        if self._updating:
            return
        value = self.value()
        current = getattr(self.state.config, self.field.key)
        if isinstance(value, float) and isinstance(current, float) and math.isclose(value, current, rel_tol=1e-9):
            return
        self.state.update_config(**{self.field.key: value})


class ConfigForm(QWidget):
    """A QFormLayout of bound editors; redraws itself from every configChanged."""

    def __init__(self, state, specs: Sequence[Field], parent=None):
        super().__init__(parent)
        self.state = state
        self.form = QFormLayout(self)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.bound: dict = {}
        for spec in specs:
            b = BoundWidget(state, spec)
            self.bound[spec.key] = b
            label = QLabel(spec.label)
            label.setToolTip(b.widget.toolTip())
            b.label = label
            self.form.addRow(label, b.widget)
        state.configChanged.connect(self._from_config)

    def widget(self, key: str):
        return self.bound[key].widget

    def set_row_visible(self, key: str, visible: bool) -> None:
        self.form.setRowVisible(self.bound[key].widget, visible)

    def _from_config(self, config) -> None:
        for key, b in self.bound.items():
            b.show(getattr(config, key))


class Section(QWidget):
    """A titled block that folds away with a click on its title; a grey note beside the title
    says what the block is for (e.g. which method uses it)."""
    toggled = Signal(bool)

    def __init__(self, title: str, content: QWidget, expanded: bool = True, parent=None):
        super().__init__(parent)
        self.title = title
        self.user_folded = False          # the user clicked the header: method changes leave it alone
        self.button = QToolButton()
        self.button.setObjectName(f"section_{title}")
        self.button.setText(title)
        self.button.setCheckable(True)
        self.button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.button.setStyleSheet("QToolButton { border: none; font-weight: bold; padding: 1px; }")
        self.button.setToolTip("Click to fold or unfold these settings.")
        self.note = QLabel("")
        self.note.setStyleSheet("color: #777777;")
        self.note.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)   # long notes must not widen the dock
        self.content = content
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(self.button)
        header.addWidget(self.note, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 2, 0, 2)
        lay.setSpacing(2)
        lay.addLayout(header)
        lay.addWidget(content)
        content.setContentsMargins(14, 0, 0, 0)
        self.button.toggled.connect(self._show)
        self.button.clicked.connect(self._clicked)
        self.set_expanded(expanded)

    def _clicked(self, _checked=False) -> None:
        self.user_folded = True

    def _show(self, on: bool) -> None:
        self.button.setArrowType(Qt.DownArrow if on else Qt.RightArrow)
        self.content.setVisible(on)
        self.toggled.emit(on)

    def set_expanded(self, on: bool) -> None:
        if self.button.isChecked() == on:
            self._show(on)          # first call: draw the arrow
        self.button.setChecked(on)

    def expanded(self) -> bool:
        return self.button.isChecked()

    def set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setToolTip(text)


class SectionedForm(QWidget):
    """Several ConfigForms, each in a Section, read as one form: `bound` and `widget(key)`
    reach every key, whichever section holds it."""

    def __init__(self, state, sections: Sequence, parent=None):
        """`sections`: (title, [Field...]) or (title, [Field...], expanded)."""
        super().__init__(parent)
        self.state = state
        self.bound: dict = {}
        self.forms: dict = {}
        self.sections: dict = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        for entry in sections:
            title, specs = entry[0], entry[1]
            expanded = entry[2] if len(entry) > 2 else True
            form = ConfigForm(state, specs)
            section = Section(title, form, expanded=expanded)
            self.forms[title] = form
            self.sections[title] = section
            self.bound.update(form.bound)
            lay.addWidget(section)
        lay.addStretch(1)

    def widget(self, key: str):
        return self.bound[key].widget

    def form_of(self, key: str) -> ConfigForm:
        return next(form for form in self.forms.values() if key in form.bound)


KNOWN_KEYS = {f.name for f in dc_fields(FusionConfig)}


def format_clock(seconds) -> str:
    """Seconds as m:ss or h:mm:ss for progress text; '–' when unknown."""
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
