"""How a finished run reports its method, in that method's own terms.

Methods differ in what they can say about how they ran: SpectraMorph trains a network
(epochs, a training loss), HySure iterates a solver (iterations, an objective), GLP-HS
computes its result directly (neither). Each method records those facts in its own info
(MethodOutput.info: "training" for a trained network, "objective" for an iterative
solver); everything here reads them from there, so the CLI summary, run.json and the log
never assume a figure a method does not have.
"""
from __future__ import annotations

from typing import Optional

KIND_TRAINING = "training"
KIND_ITERATIONS = "iterations"
KIND_DIRECT = "direct"


def short_name(method: str) -> str:
    """The method's TITLE without its explanation in brackets: 'SpectraMorph', 'GLP-HS', 'HySure'."""
    from ..methods import get_method
    return get_method(method).TITLE.split(" (", 1)[0]


def method_figures(info: Optional[dict], loss_history=()) -> dict:
    """{"kind": "training", "epochs", "epochs_run", "stopped_early", "final_loss"} for a trained
    network, {"kind": "iterations", "iterations", "final_objective", "converged"} for an iterative
    solver (converged None where the solver does not say why it stopped),
    {"kind": "direct"} for a method that has neither."""
    info = info or {}
    training = info.get("training")
    if isinstance(training, dict):
        return {"kind": KIND_TRAINING, "epochs": training.get("epochs"),
                "epochs_run": training.get("epochs_run", len(loss_history)),
                "stopped_early": bool(training.get("stopped_early")),
                "final_loss": _last(loss_history)}
    objective = info.get("objective")
    if objective is not None:
        stop = info.get("stop")
        return {"kind": KIND_ITERATIONS, "iterations": info.get("iterations", max(0, len(objective) - 1)),
                "final_objective": _last(objective),
                "converged": None if not stop else str(stop).startswith("converged")}
    return {"kind": KIND_DIRECT}


def facts_text(figures: dict) -> str:
    """The figures as a short phrase: 'trained 150 epochs, final loss 0.0123',
    'converged after 850 iterations, final objective 11.12', 'computed directly (no training, no
    iterations)'."""
    kind = figures.get("kind")
    if kind == KIND_TRAINING:
        done = (f"training stopped at epoch {figures['epochs_run']} of {figures['epochs']}"
                if figures.get("stopped_early") else f"trained {figures['epochs_run']} epochs")
        return done + _figure(", final loss", figures.get("final_loss"))
    if kind == KIND_ITERATIONS:
        n = figures["iterations"]
        done = {True: f"converged after {n} iterations",
                False: f"{n} iterations (the limit: not converged)"}.get(figures.get("converged"), f"{n} iterations")
        return done + _figure(", final objective", figures.get("final_objective"))
    return "computed directly (no training, no iterations)"


def result_figures(result) -> dict:
    """method_figures of a FusionResult."""
    return method_figures(result.method_info, result.loss_history)


def result_facts(result) -> str:
    """'<method>: <facts_text>' of a FusionResult, e.g. 'HySure: converged after 850 iterations, ...'."""
    return f"{short_name(result.method)}: {facts_text(result_figures(result))}"


def _last(values) -> Optional[float]:
    values = list(values or ())
    return float(values[-1]) if values else None


def _figure(label: str, value) -> str:
    return "" if value is None else f"{label} {value:.5g}"
