"""The one training loop (training.loop): a 2-parameter model trained by the loop equals the same steps
written out by hand, and a run stopped part-way and resumed ends with the weights of an uninterrupted run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.loop import Run, lr_at, seeded_stream, train_loop

STEPS = 6
PEAK_LR = 0.5
SLOPE, INTERCEPT = 2.0, 0.5  # targets y = 2 x + 0.5


def line(weight: float = 0.0, bias: float = 0.0) -> torch.nn.Linear:
    """y = w x + b: two parameters, float64."""
    model = torch.nn.Linear(1, 1).double()
    with torch.no_grad():
        model.weight.fill_(weight)
        model.bias.fill_(bias)
    return model


def next_batch(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=8)  # (8,) inputs x


def squared_error(model: torch.nn.Module, x: np.ndarray) -> torch.Tensor:
    inputs = torch.from_numpy(x)[:, None]  # (8, 1)
    return ((model(inputs)[:, 0] - (SLOPE * inputs[:, 0] + INTERCEPT)) ** 2).mean()


def test_the_loop_takes_the_steps_written_out_by_hand() -> None:
    """SGD on y = w x + b, mean squared error, warm-up then cosine, gradient norm clipped at 1."""
    seen_in_evaluation = []

    def evaluate(model: torch.nn.Module) -> dict:
        seen_in_evaluation.append((model.training, torch.is_grad_enabled()))
        return {"weight": float(model.weight), "bias": float(model.bias)}

    model = line()
    run = train_loop(model, torch.optim.SGD(model.parameters(), lr=0.0), np.random.default_rng(3),
                     next_batch=next_batch, loss_of=squared_error, evaluate=evaluate, settings={},
                     steps=STEPS, peak_lr=PEAK_LR, eval_every=2)

    # the same six steps by hand: numpy gradients, the schedule and the clipping from their formulas
    rng, w, b = np.random.default_rng(3), 0.0, 0.0
    warmup = 1  # max(6 // 20, 1)
    clipped, points = [], []
    for step in range(STEPS):
        x = rng.normal(size=8)
        residual = w * x + b - (SLOPE * x + INTERCEPT)
        loss = float(np.mean(residual**2))
        grad = np.array([np.mean(2 * residual * x), np.mean(2 * residual)])  # d/dw, d/db
        norm = float(np.linalg.norm(grad))
        clipped.append(norm > 1.0)
        grad = grad * min(1.0, 1.0 / (norm + 1e-6))  # torch.nn.utils.clip_grad_norm_
        lr = PEAK_LR if step < warmup else PEAK_LR * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (STEPS - warmup)))
        w, b = w - lr * grad[0], b - lr * grad[1]
        if (step + 1) % 2 == 0:
            points.append({"step": step + 1, "train_loss": round(loss, 4), "weight": w, "bias": b})

    assert any(clipped) and not all(clipped)  # both branches of the clipping were taken
    assert isinstance(run, Run) and run.finished and run.step == STEPS
    assert model.weight.item() == pytest.approx(w, abs=1e-12) and model.bias.item() == pytest.approx(b, abs=1e-12)
    assert [p["step"] for p in run.curve] == [2, 4, 6]
    for point, expected in zip(run.curve, points):
        assert point["train_loss"] == expected["train_loss"]
        assert point["weight"] == pytest.approx(expected["weight"], abs=1e-12)
        assert point["bias"] == pytest.approx(expected["bias"], abs=1e-12)
        assert list(point) == ["step", "train_loss", "weight", "bias", "elapsed_s"]
    assert seen_in_evaluation == [(False, False)] * 3  # eval mode, no gradients


def noisy_run(checkpoint, stop_after: int | None = None, steps: int = STEPS) -> tuple[torch.nn.Module, Run]:
    """A run as a command starts it (seeded model, AdamW, seeded stream) whose loss also draws torch noise,
    so that a resume must restore the optimiser's moments, the data stream and torch's random state."""
    rng = seeded_stream(11)
    model = torch.nn.Linear(1, 1).double()  # initialised from torch's seeded state

    def loss_of(model: torch.nn.Module, x: np.ndarray) -> torch.Tensor:
        noise = 0.1 * torch.randn(len(x), dtype=torch.float64)  # (8,)
        return squared_error(model, x) + (noise * model(torch.from_numpy(x)[:, None])[:, 0]).mean()

    optimiser = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.01)
    run = train_loop(model, optimiser, rng, next_batch=next_batch, loss_of=loss_of,
                     evaluate=lambda m: {"bias": round(float(m.bias), 6)}, settings={"steps": steps},
                     steps=steps, peak_lr=0.1, eval_every=4, checkpoint=checkpoint, checkpoint_every=4,
                     stop_after=stop_after)
    return model, run


def test_a_stopped_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path) -> None:
    whole_model, whole = noisy_run(None)

    stopped_model, stopped = noisy_run(tmp_path / "run.pt", stop_after=3)
    assert (stopped.step, stopped.finished) == (3, False)
    assert torch.load(tmp_path / "run.pt", weights_only=False)["step"] == 3  # written at stop_after, not only every 4
    assert not torch.equal(stopped_model.weight, whole_model.weight)

    resumed_model, resumed = noisy_run(tmp_path / "run.pt")  # a fresh process: model and stream built again
    assert resumed.finished and resumed.step == STEPS
    torch.testing.assert_close(resumed_model.state_dict(), whole_model.state_dict(), rtol=0, atol=0)
    drop_time = lambda curve: [{k: v for k, v in p.items() if k != "elapsed_s"} for p in curve]  # noqa: E731
    assert drop_time(resumed.curve) == drop_time(whole.curve)
    assert [p["step"] for p in whole.curve] == [4, 6]  # every 4 steps, and the last
    assert torch.load(tmp_path / "run.pt", weights_only=False)["step"] == STEPS  # the last step is always written

    with pytest.raises(ValueError, match="other settings"):
        noisy_run(tmp_path / "run.pt", steps=STEPS + 1)


def test_seeded_stream_seeds_torch_and_the_data_stream() -> None:
    stream = seeded_stream(5)
    drawn = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(drawn, torch.rand(3))
    assert stream.integers(10**9) == np.random.default_rng(5).integers(10**9)
    with pytest.raises(ValueError, match="reserved for evaluation"):
        seeded_stream(10**6)


def test_lr_schedule_warmup_then_cosine() -> None:
    assert lr_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(55, 100, 1.0, 10) == pytest.approx(0.5)
    assert lr_at(100, 100, 1.0, 10) == pytest.approx(0.0)


def test_constant_schedule_and_unknown_ones() -> None:
    assert lr_at(5, 100, 1.0, 10, "constant") == pytest.approx(0.6)  # still warming up
    assert lr_at(99, 100, 1.0, 10, "constant") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Unknown schedule"):
        lr_at(50, 100, 1.0, 10, "linear")
