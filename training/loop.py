"""The one training loop of the three training commands, nanoGPT-style: read `train_loop` top to bottom.

Each step takes a batch from the data stream, sets the step's learning rate (linear warm-up, then cosine
decay or constant), runs forward and loss, zero_grad, backward, clips the gradient norm and steps the
optimiser; every ``eval_every`` steps (and at the last) it appends a held-out point to the curve, and every
``checkpoint_every`` steps (and at ``stop_after`` and the last) it writes a checkpoint. What differs between
models is passed in: a batch function, a loss function and an evaluation function.

A checkpoint holds model, optimiser, the data stream's random state, torch's random state, the step, the
wall time so far and the curve, so a killed run started again with the same settings continues exactly
where it stopped and ends with the weights of an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from training.seeds import check_seed


@dataclass(frozen=True)
class Run:
    """What `train_loop` hands back.

    Attributes:
        step: Optimiser steps done (the run's ``steps`` when it finished).
        finished: False when the loop stopped early at ``stop_after``.
        curve: Held-out points, one dict per evaluation: {"step", "train_loss", ...evaluation, "elapsed_s"}.
        wall_s: Wall time of the run, resumed parts included.
    """

    step: int
    finished: bool
    curve: list[dict]
    wall_s: float


def seeded_stream(seed: int) -> np.random.Generator:
    """Check a training seed (< 10**6), seed torch with it and return the data stream's generator."""
    check_seed(seed, "train")
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


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


def train_loop(model: torch.nn.Module, optimiser: torch.optim.Optimizer, data_rng: np.random.Generator, *,
               next_batch: Callable[[np.random.Generator], Any],
               loss_of: Callable[[torch.nn.Module, Any], torch.Tensor],
               evaluate: Callable[[torch.nn.Module], dict],
               settings: dict, steps: int, peak_lr: float, schedule: str = "cosine", eval_every: int = 1000,
               checkpoint: Path | None = None, checkpoint_every: int = 250, stop_after: int | None = None,
               grad_clip: float = 1.0) -> Run:
    """Train `model` for `steps` optimiser steps, resuming from `checkpoint` when it holds this run.

    Args:
        model: The model, already built (and seeded) by the command.
        optimiser: Its optimiser; the loop sets every parameter group's learning rate at each step.
        data_rng: The training data stream, saved in checkpoints with torch's random state.
        next_batch: ``next_batch(data_rng)`` -> the step's batch (anything ``loss_of`` takes).
        loss_of: ``loss_of(model, batch)`` -> the scalar training loss, with its graph.
        evaluate: ``evaluate(model)`` -> the held-out figures of a curve point (run in eval mode, without
            gradients).
        settings: The run's settings; a checkpoint of other settings is refused, not resumed.
        steps: Optimiser steps of the whole run.
        peak_lr: Learning rate after the warm-up (5% of the steps, at least one).
        schedule: ``"cosine"`` (decay to zero at `steps`) or ``"constant"`` after the warm-up.
        eval_every: Steps between held-out points (the last step is always evaluated).
        checkpoint: File of the run's checkpoint, or None for none.
        checkpoint_every: Steps between checkpoints (the last step is always written).
        stop_after: Stop, after checkpointing, once this many steps are done, as a killed run would (tests).
        grad_clip: Largest gradient norm.

    Returns:
        The `Run`: steps done, whether it finished, the held-out curve and the wall time.

    Raises:
        ValueError: `checkpoint` holds a run with other settings.
    """
    warmup = max(steps // 20, 1)
    first_step, elapsed_before, curve = resume(checkpoint, settings, model, optimiser, data_rng)
    start = time.time() - elapsed_before
    bar = tqdm(range(first_step, steps), desc="train", mininterval=5.0, initial=first_step, total=steps)
    for step in bar:
        # one optimiser step on a fresh batch
        model.train()
        batch = next_batch(data_rng)
        for group in optimiser.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr, warmup, schedule)
        loss = loss_of(model, batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimiser.step()
        done = step + 1
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)

        # a held-out point on the curve
        if done % eval_every == 0 or done == steps:
            model.eval()
            with torch.no_grad():
                figures = evaluate(model)
            point = {"step": done, "train_loss": round(loss.item(), 4), **figures,
                     "elapsed_s": round(time.time() - start, 1)}
            curve.append(point)
            tqdm.write(json.dumps(point))

        # checkpoint, and stop early when asked to (as a killed run would)
        if checkpoint is not None and (done % checkpoint_every == 0 or done == steps or done == stop_after):
            save_checkpoint(checkpoint, settings, model, optimiser, data_rng, done, time.time() - start, curve)
        if stop_after is not None and stop_after <= done < steps:
            bar.close()
            return Run(done, False, curve, time.time() - start)
    bar.close()
    return Run(steps, True, curve, time.time() - start)


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
    data_rng.bit_generator.state = state["data_rng"]
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
