"""What the three training commands share: the learning-rate schedule and checkpoints that make a killed
run continue exactly where it stopped (model, optimiser, the data stream's random state, torch's random
state, the step, the wall time so far and the held-out curve)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch


def lr_at(step: int, total: int, peak: float, warmup: int, schedule: str = "cosine") -> float:
    """Linear warmup to ``peak`` over ``warmup`` steps, then cosine decay to zero at ``total`` (or, with
    ``schedule="constant"``, ``peak`` until the end)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    if schedule != "cosine":
        raise ValueError(f"Unknown schedule '{schedule}': choose cosine or constant.")
    progress = (step - warmup) / max(total - warmup, 1)
    return peak * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def save_checkpoint(path: Path, settings: dict, model: torch.nn.Module, optimiser: torch.optim.Optimizer,
                    data_rng: np.random.Generator, step: int, elapsed_s: float, curve: list) -> None:
    """Write everything a resumed run needs, atomically (a killed write leaves the previous checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save({"settings": settings, "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                "data_rng": data_rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "step": step,
                "elapsed_s": elapsed_s, "curve": curve}, partial)
    partial.replace(path)


def resume(path: Path | None, settings: dict, model: torch.nn.Module, optimiser: torch.optim.Optimizer,
           data_rng: np.random.Generator) -> tuple[int, float, list]:
    """Load a checkpoint of a run with the same `settings` into model, optimiser and random states.

    Returns:
        (the step to continue from, the wall time already spent, the curve so far); (0, 0.0, []) when
        there is no checkpoint.

    Raises:
        ValueError: the checkpoint belongs to a run with other settings.
    """
    if path is None or not Path(path).is_file():
        return 0, 0.0, []
    state = torch.load(path, weights_only=False)
    if state["settings"] != settings:
        raise ValueError(f"{path} holds a run with other settings ({state['settings']}): "
                         "remove it or give another --checkpoints directory.")
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    data_rng.bit_generator.state = state.get("data_rng", state.get("scene_rng"))
    torch.set_rng_state(state["torch_rng"])
    print(f"resuming from {path} at step {state['step']}", flush=True)
    return state["step"], state["elapsed_s"], state["curve"]


def write_summary(out: Path, settings: dict, threads: int, wall_s: float, model: torch.nn.Module, curve: list,
                  evaluation: dict) -> dict:
    """The run's summary (settings, wall and CPU time, parameters, held-out curve, final evaluation), written
    to `out`/training.json, which the model cards are rendered from (models/cards.py)."""
    summary = {"settings": settings, "threads": threads, "wall_time_s": round(wall_s, 1),
               "cpu_time_s": round(time.process_time(), 1),
               "params": sum(p.numel() for p in model.parameters()), "curve": curve, "evaluation": evaluation}
    (Path(out) / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
