"""The "Is this faithful?" panel: a leaderboard, for the current input, of the methods shown on the page. On
request it deletes (text) or replaces (images) the inputs in the order each method ranks them, and sorts the
methods by the area between the most-relevant-first and least-relevant-first curves (ABPC: a faithful ranking loses
the prediction fast when its top inputs go and slowly when its bottom ones do), beside ERASER's comprehensiveness
and sufficiency (text) or the deletion and insertion areas (images), a random ranking and the time each method
took. The maps come from the page (nothing is explained again); only the perturbed inputs run through the model
(explain.metrics.faithfulness), and the numbers are cached."""

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
RANDOM = "random"


def _requested(key: str, label: str, help_text: str) -> bool:
    """A button that, once pressed, keeps the panel open for this input (a later rerun shows it again)."""
    flag = f"_faithful.{key}"
    if st.button(label, key=f"{key}_button", help=help_text):
        st.session_state[flag] = True
    return bool(st.session_state.get(flag))


def _leaderboard(rows: dict[str, dict[str, float]], seconds: dict[str, float], order: str) -> pd.DataFrame:
    """The methods (and random) as table rows sorted by `order`, highest first, with the time each method took."""
    table = pd.DataFrame(rows).T
    table["seconds"] = [seconds.get(name, np.nan) for name in table.index]
    return table.sort_values(order, ascending=False).round(4)


def image_panel(key: tuple, loaded: LoadedModel, capture: ImageCapture, maps: dict[str, np.ndarray],
                seconds: dict[str, float] | None = None) -> None:
    """The leaderboard of the maps shown for the capture's target class: ABPC, deletion and insertion areas.

    Args:
        key: identifies the input (model, image digest, target, method options) for the cache.
        loaded: the image model; capture: its capture of the image (its input and target class).
        maps: method name -> (rows, cols) relevance, as the page drew them.
        seconds: method name -> the time it took.
    """
    if not _requested(str(hash(key)), "Is this faithful? Rank these maps",
                      "Replaces and restores patches in the order each map ranks them (10% at a time) and records the "
                      "class probability: 33 images per map and 330 for the random baseline, in batches."):
        return
    grid = capture.grid

    def compute() -> dict:
        pixel_values = capture.inputs["pixel_values"]
        probability = fx.image_probability(loaded, capture)
        progress = st.progress(0.0, text="Perturbing patches…")
        results = {}
        for number, (name, grid_map) in enumerate(maps.items()):
            results[name] = fx.image_curves(probability, pixel_values, grid_map, grid)
            progress.progress((number + 1) / (len(maps) + 1), text=f"Scored {name}")
        results[RANDOM] = fx.random_curves(probability, pixel_values, grid, seed=0)
        progress.empty()
        return {name: (r.curves, r.aucs, r.abpc) for name, r in results.items()}

    results = cached(("faithfulness-image",) + tuple(key), compute, "Scoring the explanations…", heavy=True)
    table = _leaderboard({name: {"ABPC (higher is better)": abpc, "deletion AUC (lower is better)": aucs["deletion"],
                                 "insertion AUC (higher is better)": aucs["insertion"]}
                          for name, (_, aucs, abpc) in results.items()}, seconds or {}, "ABPC (higher is better)")
    st.dataframe(table, width="stretch")
    _curve_charts({name: (curves, aucs) for name, (curves, aucs, _) in results.items()}, "patches", capture.target_label)
    st.caption("Removed patches take the normaliser's mean (0 after normalisation). ABPC is the area under the "
               "least-relevant-first curve (negative perturbation) minus the area under the most-relevant-first one "
               "(deletion). Insertion at a share f shows the same image as negative perturbation at 1 − f, so their "
               "areas are equal; their curves run opposite ways.")


def _curve_charts(results: dict, unit: str, target_label: str) -> None:
    left, right = st.columns(2)
    for column, curve, title in ((left, "deletion", "Deletion: most relevant removed first"),
                                 (right, "insertion", "Insertion: most relevant restored first")):
        with column:
            st.plotly_chart(curves_figure({name: curves[curve] for name, (curves, _) in results.items()}, fx.FRACTIONS,
                                          title, y_label=f"p({target_label})", x_label=f"share of {unit} removed" if
                                          curve == "deletion" else f"share of {unit} restored",
                                          aucs={name: aucs[curve] for name, (_, aucs) in results.items()}),
                            config=PLOTLY_CONFIG, key=f"faithful_{curve}")
    best = min((name for name in results if name != RANDOM), key=lambda n: results[n][1]["deletion"])
    clean, removed = results[best][0]["deletion"][0], results[best][0]["deletion"][1]
    chance = results[RANDOM][0]["deletion"][1]
    st.markdown(f"**Reading:** {best}: removing its top 10% of {unit} drops the '{target_label}' probability from "
                f"{clean:.2f} to {removed:.2f}; random {unit}: to {chance:.2f}.")


def text_panel(key: tuple, loaded: LoadedModel, capture: Capture, relevances: dict[str, np.ndarray],
               seconds: dict[str, float] | None = None) -> None:
    """The leaderboard of the rankings shown for the capture's target: ABPC, ERASER comprehensiveness and
    sufficiency (AOPC), against a random ranking.

    Args:
        key: identifies the input and target for the cache.
        loaded: the model; capture: its capture of the input (its target, the tokens that may be deleted).
        relevances: method name -> (T,) relevance over the input tokens, as the page drew them.
        seconds: method name -> the time it took.
    """
    if not _requested(str(hash(key)), "Is this faithful? Rank these explanations",
                      "Deletes the top 1, 5, 10, 20 and 50% of tokens by each ranking (comprehensiveness) or keeps only "
                      "them (sufficiency), and deletes 10%, 20%, ... of them most and least relevant first (ABPC); "
                      "records the target's probability each time."):
        return
    task = fx.text_perturbation(capture, loaded)
    if not any(task.removable):
        st.info("Only special tokens here: nothing can be removed.")
        return

    def compute() -> dict:
        scores = {name: fx.text_scores(task.probability, np.asarray(values)[:task.length], task.removable)
                  for name, values in relevances.items()}
        scores[RANDOM] = fx.random_text_scores(task.probability, task.removable, seed=0)
        return {name: (s.comprehensiveness, s.sufficiency, s.full_probability, s.abpc, s.most_first)
                for name, s in scores.items()}

    results = cached(("faithfulness-text",) + tuple(key), compute, "Scoring the explanations…", heavy=True)
    table = _leaderboard({name: {"ABPC (higher is better)": r[3],
                                 "comprehensiveness (AOPC, higher is better)": float(np.mean(list(r[0].values()))),
                                 "sufficiency (AOPC, lower is better)": float(np.mean(list(r[1].values())))}
                          for name, r in results.items()}, seconds or {}, "ABPC (higher is better)")
    st.dataframe(table, width="stretch")
    fractions = list(fx.ERASER_KS)
    left, right = st.columns(2)
    for column, index, title, better in ((left, 0, "Comprehensiveness: drop when the top k% are deleted", "higher"),
                                         (right, 1, "Sufficiency: drop when only the top k% are kept", "lower")):
        with column:
            st.plotly_chart(curves_figure({name: [r[index][k] for k in fractions] for name, r in results.items()},
                                          fractions, title, y_label="probability drop", x_label="top k% of tokens"),
                            config=PLOTLY_CONFIG, key=f"faithful_text_{index}")
            st.caption(f"{better.capitalize()} is better.")
    methods = [n for n in results if n != RANDOM]
    best = max(methods, key=lambda n: results[n][3])
    full, target_label = results[best][2], capture.target_label.strip()
    st.markdown(f"**Reading:** {best} ranks best here (ABPC {results[best][3]:.3f}; random "
                f"{results[RANDOM][3]:.3f}): deleting its top 20% of tokens drops the '{target_label}' probability "
                f"from {full:.2f} to {full - results[best][0][0.2]:.2f}; random tokens: to "
                f"{full - results[RANDOM][0][0.2]:.2f}.")
    st.caption("Deleted tokens are removed from the input, as ERASER does (special tokens stay); top k% means at least "
               "one token. ABPC is the area under the least-relevant-first deletion curve minus the area under the "
               "most-relevant-first one, over 0-100% of the tokens.")
