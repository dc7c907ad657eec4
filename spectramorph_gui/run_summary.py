"""How a result was made, as text: the banner's facts, the settings-used paragraph and the
real-world consistency figures (Qt-free; the results panel shows them).

Nothing here computes: it words what the engine put in the `FusionResult` (`method_info`,
`selection`, `consistency`).
"""
from __future__ import annotations

from html import escape

from .panels.method_text import short_name


def no_unmixing_note(method: str) -> str:
    name = short_name(method)
    return (f"{name} has no endmembers or abundance maps: it fuses the images directly, without "
            f"unmixing the scene into materials (only SpectraMorph does). Its result is above and its "
            f"scores below.")


def result_facts(r) -> str:
    """The method's own figures for the banner, ending with ', ' (or empty)."""
    info = r.method_info or {}
    if r.endmembers is not None:
        loss = "" if r.final_loss is None else f", final loss {r.final_loss:.4g}"
        return f"K = {r.endmembers.shape[0]} endmembers{loss}, "
    if r.loss_history:
        from spectramorph_engine.run.method_report import facts_text, method_figures
        return facts_text(method_figures(info, r.loss_history)) + ", "
    return ""


def _on_off(flag) -> str:
    return "on" if flag else "off"


def _tv_choice_words(tv) -> str:
    """What refine_tv_select did, after the TV weight (empty when it was off)."""
    if not isinstance(tv, dict):
        return ""
    if tv.get("skipped"):
        return f" (not chosen: {escape(str(tv['skipped']))})"
    if tv.get("chosen") != tv.get("configured"):
        return f" (chosen from left-out MSI bands; {tv.get('configured', 0):g} configured)"
    return " (kept: no other weight predicted the left-out MSI bands better)"


def _tv_choice_table(tv) -> str:
    """The left-out bands' error per TV weight, for the details tooltip."""
    if not isinstance(tv, dict) or not tv.get("errors"):
        return ""
    chosen = f"{tv.get('chosen', 0):g}"
    rows = "".join(f"<tr><td>{'▶ ' if w == chosen else ''}{escape(w)}</td><td align='right'>{e:.3g}</td></tr>"
                   for w, e in tv["errors"].items())
    return ("<p>TV weight chosen from left-out MSI bands (mean squared error of the bands' prediction):</p>"
            f"<table><tr><th align='left'>TV weight</th><th>error</th></tr>{rows}</table>")


def run_summary(r) -> tuple:
    """(one rich-text paragraph, a details tooltip) on how a result was made: the settings the
    method actually used and, for SpectraMorph, what auto-selection tried and chose."""
    info = r.method_info or {}
    name = escape(short_name(r.method))
    if r.method == "spectramorph":
        used = [f"coarse spectral prior <b>{_on_off(info.get('prior'))}</b>",
                f"K = <b>{info.get('num_endmembers', '?')}</b> ({escape(str(info.get('endmember_method', 'nmf')))} "
                f"endmembers)"]
        ref = info.get("refinement")
        if info.get("refined") and isinstance(ref, dict):
            how = f"{ref.get('iterations', '?')} iterations, subspace {ref.get('subspace_dim', '?')}"
            if isinstance(ref.get("subspace_estimate"), dict):
                how += " (estimated from the LR-HSI)"
            if ref.get("tv_weight"):
                weight = getattr(r.config_used, "refine_tv_weight", None)
                how += ", with TV" if weight is None else f", TV weight <b>{weight:g}</b>"
            how += _tv_choice_words(info.get("tv_selection"))
            used.append(f"refinement <b>on</b> ({how})")
        else:
            used.append(f"refinement <b>{_on_off(info.get('refined'))}</b>")
        text = f"<b>Settings used:</b> {', '.join(used)}."
        sel = r.selection
        details = ""
        if sel is None:
            text += " <b>Auto-selection:</b> off (the configured settings ran)."
        elif sel.get("skipped"):
            text += f" <b>Auto-selection skipped:</b> {escape(str(sel['skipped']))}."
        else:
            rows = sel.get("candidates") or []
            chosen = sel.get("chosen")
            base = next((c for c in rows if c.get("label") == "configured"), None)
            best = next((c for c in rows if c.get("label") == chosen), None)
            scores = " · ".join(
                (f"<b>{escape(str(c['label']))} {c['PSNR']:.2f}</b>" if c.get("label") == chosen
                 else f"{escape(str(c['label']))} {c['PSNR']:.2f}") for c in rows)
            verdict = "kept the configured settings" if chosen == "configured" else \
                f"chose <b>{escape(str(chosen))}</b>"
            gain = ""
            if best is not None and base is not None and best is not base:
                gain = f", {best['PSNR'] - base['PSNR']:+.2f} dB over the configured settings"
            text += (f" <b>Auto-selection</b> {verdict}{gain} ({len(rows)} candidates on the "
                     f"reduced-resolution pair, PSNR in dB: {scores}; {sel.get('seconds', 0):.1f} s).")
            details = ("<table><tr><th align='left'>candidate</th><th>PSNR dB</th><th>SAM °</th><th>s</th></tr>"
                       + "".join(f"<tr><td>{'▶ ' if c.get('label') == chosen else ''}{escape(str(c['label']))}"
                                 f"</td><td align='right'>{c['PSNR']:.2f}</td><td align='right'>"
                                 f"{c.get('SAM', float('nan')):.2f}</td><td align='right'>"
                                 f"{c.get('seconds', 0):.1f}</td></tr>" for c in rows) + "</table>")
        if sel is not None and sel.get("summary"):
            details = (details + "<p>" if details else "<p>") + escape(str(sel["summary"])) + "</p>"
        details += _tv_choice_table(info.get("tv_selection"))
        return text, details
    if r.method == "glp":
        if "gain_median" in info:
            return (f"<b>{name}:</b> injection gains {info['gain_min']:.3f}–{info['gain_max']:.3f} (median "
                    f"{info['gain_median']:.3f}); regression of each band on the MSI bands, R² median "
                    f"{info.get('regression_r2_median', float('nan')):.3f}.", "")
        return "", ""
    if r.method == "hysure":
        objective = info.get("objective") or r.loss_history
        stop = str(info.get("stop") or "")
        parts = [f"{info.get('iterations', len(objective))} ADMM iterations"
                 + (" (converged)" if stop.startswith("converged") else
                    " (the limit, not converged: more Iterations would change the result)" if stop else "")]
        if "subspace" in info:
            energy = info.get("subspace_energy")
            parts.append(f"subspace {info['subspace']}" +
                         (f" ({100 * energy:.2f}% of the LR-HSI's energy)" if energy is not None else ""))
        if "tv_weight" in info:
            parts.append(f"TV weight {info['tv_weight']:g}")
        if len(objective) >= 2:
            parts.append(f"objective {objective[0]:.4g} → {objective[-1]:.4g}")
        return f"<b>{name}:</b> {', '.join(parts)}.", ""
    return "", ""


def _fmt(v, digits: int = 4) -> str:
    return f"{v:.{digits}g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "–"


def consistency_columns(consistency: dict):
    """Columns (header, tooltip, SpectraMorph value, bicubic value) of the real-world figures."""
    from spectramorph_engine.quality.metrics import METRIC_INFO
    cols = []
    bic = consistency.get("bicubic") or {}
    units = {"PSNR": ("dB", True), "SAM": ("°", False)}

    def add(prefix, figures, base, tip):
        if not isinstance(figures, dict):
            return
        for name, value in figures.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                b = base.get(name) if isinstance(base, dict) else None
                unit, higher = units.get(name, ("", METRIC_INFO.get(name, ("", True))[1]))
                header = f"{prefix}\n{name}\n{f'{unit} ' if unit else ''}{'↑' if higher else '↓'}"
                cols.append((header, tip + " " + METRIC_INFO.get(name, ("", True, ""))[2], value, b))

    add("LR", consistency.get("lr_consistency"), bic.get("lr_consistency", bic.get("lr")),
        "LR consistency: the result blurred and downsampled by r, against the LR-HSI.")
    add("MSI", consistency.get("msi_consistency"), bic.get("msi_consistency", bic.get("msi")),
        "MSI consistency: the result seen through the SRF, against the HR-MSI.")
    rr = consistency.get("reduced_resolution") or {}
    pixels = f" on {rr['training_pixels']} LR pixels" if rr.get("training_pixels") else ""
    source = ""
    if rr.get("epochs"):
        source = (f" The fusion is auto-selection's of the chosen settings ({rr['epochs']} epochs{pixels})."
                  if rr.get("source") == "auto-selection" else
                  f" Its fusion trains {rr['epochs']} epochs{pixels} (auto-selection's training).")
    add("RR", rr.get("fusion"), rr.get("bicubic"),
        "Reduced resolution (Wald's protocol): both inputs degraded by r, fused, and scored against the "
        "original LR-HSI." + source)
    return cols


def consistency_rows(consistency: dict):
    """Rows (label, value, bicubic value, tooltip), the figures one per row (kept for callers)."""
    return [(h, _fmt(v), _fmt(b), tip) for h, tip, v, b in consistency_columns(consistency)]


__all__ = ["consistency_columns", "consistency_rows", "no_unmixing_note", "result_facts", "run_summary"]
