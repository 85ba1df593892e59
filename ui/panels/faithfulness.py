"""The "Is this faithful?" panel: scores the explanations shown for the current input on request, caches
the numbers, and draws the curves, the AUC table and a one-line reading. The maps come from the page (no
explanation is recomputed); only the perturbed inputs run through the model (explain.faithfulness)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from explain import Capture, ImageCapture
from explain.metrics import faithfulness as fx
from models import LoadedModel
from ui.services import cached
from viz.faithfulness import curves_figure
from viz.plotting import PLOTLY_CONFIG

ERASER_PERCENT = [round(100 * k) for k in fx.ERASER_KS]


def _requested(key: str, label: str, help_text: str) -> bool:
    """A button that, once pressed, keeps the panel open for this input (a later rerun shows it again)."""
    flag = f"_faithful.{key}"
    if st.button(label, key=f"{key}_button", help=help_text):
        st.session_state[flag] = True
    return bool(st.session_state.get(flag))


def image_panel(key: tuple, loaded: LoadedModel, capture: ImageCapture, maps: dict[str, np.ndarray]) -> None:
    """Deletion and insertion curves and AUCs of each map for the capture's target class, against random rankings.

    Args:
        key: identifies the input (model, image digest, target, method options) for the cache.
        loaded: the image model; capture: its capture of the image (its input and target class).
        maps: method name -> (rows, cols) relevance, as the page drew them.
    """
    if not _requested(str(hash(key)), "Is this faithful? Score these maps",
                      "Removes and restores patches in the order each map ranks them (10% at a time) and "
                      "records the class probability: about 400 forward passes of the model."):
        return
    grid = loaded.spec.patch_grid

    def compute() -> dict:
        pixel_values = capture.inputs["pixel_values"]
        probability = fx.image_probability(loaded, capture)
        progress = st.progress(0.0, text="Perturbing patches…")
        results = {}
        for number, (name, grid_map) in enumerate(maps.items()):
            results[name] = fx.image_curves(probability, pixel_values, grid_map, grid)
            progress.progress((number + 1) / (len(maps) + 1), text=f"Scored {name}")
        results["random"] = fx.random_curves(probability, pixel_values, grid, seed=0)
        progress.empty()
        return {name: (r.curves, r.aucs) for name, r in results.items()}

    results = cached(("faithfulness-image",) + tuple(key), compute, "Scoring the explanations…")
    _curve_charts(results, "share of patches", capture.target_label)
    table = pd.DataFrame({name: {"deletion AUC (lower is better)": aucs["deletion"],
                                 "insertion AUC (higher is better)": aucs["insertion"],
                                 "negative perturbation AUC (higher is better)": aucs["negative_perturbation"]}
                          for name, (_, aucs) in results.items()}).T.round(3)
    st.dataframe(table, width="stretch")
    st.caption("Removed patches take the normaliser's mean (0 after normalisation). Insertion at a share f shows the "
               "same image as negative perturbation at 1 − f, so their areas are equal; their curves run opposite ways.")


def _curve_charts(results: dict, unit: str, target_label: str) -> None:
    left, right = st.columns(2)
    for column, curve, title in ((left, "deletion", "Deletion: most relevant removed first"),
                                 (right, "insertion", "Insertion: most relevant restored first")):
        with column:
            st.plotly_chart(curves_figure({name: curves[curve] for name, (curves, _) in results.items()}, fx.FRACTIONS,
                                          title, y_label=f"p({target_label})", x_label=f"{unit} removed" if curve ==
                                          "deletion" else f"{unit} restored",
                                          aucs={name: aucs[curve] for name, (_, aucs) in results.items()}),
                            config=PLOTLY_CONFIG, key=f"faithful_{curve}")
    best = min((name for name in results if name != "random"), key=lambda n: results[n][1]["deletion"])
    clean, removed = results[best][0]["deletion"][0], results[best][0]["deletion"][1]
    chance = results["random"][0]["deletion"][1]
    st.markdown(f"**Reading:** {best}: removing its top 10% of {unit} drops the '{target_label}' probability from "
                f"{clean:.2f} to {removed:.2f}; random {unit}: to {chance:.2f}.")


def text_panel(key: tuple, loaded: LoadedModel, capture: Capture, relevances: dict[str, np.ndarray]) -> None:
    """ERASER comprehensiveness and sufficiency of each method's ranking for the capture's target, against random.

    Args:
        key: identifies the input and target for the cache.
        loaded: the model; capture: its capture of the input (its target, the tokens that may be deleted).
        relevances: method name -> (T,) relevance over the input tokens, as the page drew them.
    """
    if not _requested(str(hash(key)), "Is this faithful? Score these rankings",
                      "Deletes the top 1, 5, 10, 20 and 50% of tokens by each ranking (comprehensiveness) or keeps only "
                      "them (sufficiency) and records the target's probability."):
        return
    task = fx.text_perturbation(capture, loaded)
    if not any(task.removable):
        st.info("Only special tokens here: nothing can be removed.")
        return

    def compute() -> dict:
        scores = {name: fx.text_scores(task.probability, np.asarray(values)[:task.length], task.removable)
                  for name, values in relevances.items()}
        scores["random"] = fx.random_text_scores(task.probability, task.removable, seed=0)
        return {name: (s.comprehensiveness, s.sufficiency, s.full_probability) for name, s in scores.items()}

    results = cached(("faithfulness-text",) + tuple(key), compute, "Scoring the explanations…")
    fractions = list(fx.ERASER_KS)
    left, right = st.columns(2)
    for column, index, title, better in ((left, 0, "Comprehensiveness: drop when the top k% are deleted", "higher"),
                                         (right, 1, "Sufficiency: drop when only the top k% are kept", "lower")):
        with column:
            st.plotly_chart(curves_figure({name: [r[index][k] for k in fractions] for name, r in results.items()},
                                          fractions, title, y_label="probability drop", x_label="top k% of tokens"),
                            config=PLOTLY_CONFIG, key=f"faithful_text_{index}")
            st.caption(f"{better.capitalize()} is better.")
    table = pd.DataFrame({name: {"comprehensiveness (AOPC, higher is better)": float(np.mean(list(r[0].values()))),
                                 "sufficiency (AOPC, lower is better)": float(np.mean(list(r[1].values())))}
                          for name, r in results.items()}).T.round(3)
    st.dataframe(table, width="stretch")
    methods = [n for n in results if n != "random"]
    best = max(methods, key=lambda n: np.mean(list(results[n][0].values())))
    full = results[best][2]
    target_label = capture.target_label.strip()
    st.markdown(f"**Reading:** {best}: deleting its top 20% of tokens drops the '{target_label}' probability from "
                f"{full:.2f} to {full - results[best][0][0.2]:.2f}; random tokens: to {full - results['random'][0][0.2]:.2f}.")
    st.caption("Deleted tokens are removed from the input, as ERASER does (special tokens stay); top k% means at "
               "least one token.")
