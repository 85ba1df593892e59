"""Train the bundled multi-label ViT on generated scenes (CPU, two threads).

Usage:
    python -m training.train_vit [--steps N] [--seed S] [--out DIR] [--samples DIR] [--checkpoints DIR]

Long runs write a checkpoint (model, optimiser, step, the scene stream's random state, the curve so far)
every ``--checkpoint-every`` steps to ``--checkpoints`` and continue from the last one when started again
with the same arguments: a killed run resumes exactly where it stopped (tested).

The model is a plain Hugging Face ``ViTForImageClassification`` built from a
``ViTConfig`` (random init, nothing downloaded; attention starts from the mimetic
initialisation, see ``mimetic_init``). The defaults are the committed model's
settings (``python -m training.train_vit`` alone retrains it). Scenes come from
``training.scenes`` on the fly: one stream seeded with ``--seed`` (< 10**6) for
training, a fixed held-out batch (seed ``VALIDATION_SEED``, also in the training
range but never part of the training stream) for the periodic F1.

The output directory loads with nothing but transformers:
``ViTForImageClassification.from_pretrained(out, attn_implementation="eager")``
and ``AutoImageProcessor.from_pretrained(out)``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

from explain.metrics.classification import macro_f1
from training.loop import seeded_stream, train_loop
from training.scenes import CLASS_NAMES, EVAL_SEED, GENERATOR_VERSION, Scene, make_scene, make_scenes, stack_scenes

IMAGE_SIZE = 64
PATCH_SIZE = 8
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)
VALIDATION_SEED = 999_999
SAMPLE_SEED = EVAL_SEED + 1  # sample PNGs: evaluation range, never trained on
DEFAULT_OUT = Path("models/bundled/shapes-vit")
DEFAULT_SAMPLES = Path("models/bundled/samples")


def build_config(hidden_size: int = 128, layers: int = 4, heads: int = 4) -> ViTConfig:
    """Multi-label ViT config sized for two CPU cores.

    Args:
        hidden_size: Width of the residual stream.
        layers: Number of encoder blocks.
        heads: Attention heads per block.

    Returns:
        A ``ViTConfig`` for 64x64 inputs with 8x8 patches (8x8 grid + [CLS] = 65 tokens).
    """
    return ViTConfig(
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        num_channels=3,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden_size,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        problem_type="multi_label_classification",
        id2label=dict(enumerate(CLASS_NAMES)),
        label2id={name: i for i, name in enumerate(CLASS_NAMES)},
    )


def to_pixel_values(images: np.ndarray) -> torch.Tensor:
    """Normalise uint8 images exactly as the saved ``ViTImageProcessor`` does.

    Args:
        images: (B, H, W, 3) uint8 with H = W = ``IMAGE_SIZE`` (so resizing is a no-op).

    Returns:
        (B, 3, H, W) float32 pixel values.
    """
    x = torch.tensor(images).permute(0, 3, 1, 2).float() / 255.0  # copy: inputs may be read-only
    mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def patch_targets(scenes: list, grid: int, min_cover: float = 0.1) -> torch.Tensor:
    """Multi-hot class targets per patch for token labelling: (B, grid*grid, C).

    A patch is labelled with an object's class when the object covers more than `min_cover` of it.
    """
    size = scenes[0].image.shape[0]
    patch = size // grid
    targets = np.zeros((len(scenes), grid * grid, len(CLASS_NAMES)), dtype=np.float32)
    for i, scene in enumerate(scenes):
        for mask, class_index in zip(scene.masks, scene.classes):
            cover = mask.reshape(grid, patch, grid, patch).mean(axis=(1, 3)).reshape(-1)
            targets[i, cover > min_cover, class_index] = 1.0
    return torch.from_numpy(targets)


def sincos_position_embeddings(grid: int, dim: int) -> torch.Tensor:
    """(1 + grid*grid, dim) fixed 2-D sine-cosine position code; the [CLS] row is zero.

    Half the channels encode the row, half the column, each with dim/4 frequencies, so that
    neighbouring patches get similar codes (MAE, He et al. 2022).
    """
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float32),
                                torch.arange(grid, dtype=torch.float32), indexing="ij")
    parts = []
    for coord in (rows.reshape(-1), cols.reshape(-1)):
        angles = coord[:, None] * omega[None, :]
        parts += [torch.sin(angles), torch.cos(angles)]
    code = torch.cat(parts, dim=1)
    return torch.cat([torch.zeros(1, dim), code], dim=0)


@torch.no_grad()
def mimetic_init(model: ViTForImageClassification, generator: torch.Generator,
                 qk: tuple[float, float] = (0.7, 0.7), vo: tuple[float, float] = (0.4, 0.4)) -> None:
    """Mimetic initialisation of self-attention (Trockman and Kolter, 2023), in place.

    Pretrained ViTs have W_q W_k^T close to a positive multiple of the identity plus noise, and
    W_v W_o close to a negative multiple of it; starting there (with 2-D sine-cosine position codes,
    so that tokens near each other attend to each other) makes early attention local, like a
    convolution, and a small ViT learns much faster from scratch.

    Args:
        model: The ViT to initialise.
        generator: Seeded source of the random parts.
        qk: (alpha, beta) in W_q^T W_k ~ alpha * Z + beta * I, per head, Z ~ N(0, 1/d).
        vo: (alpha, beta) in W_v^T W_o^T ~ alpha * Z - beta * I.
    """
    config = model.config
    dim, heads = config.hidden_size, config.num_attention_heads
    head_dim = dim // heads
    grid = config.image_size // config.patch_size
    model.vit.embeddings.position_embeddings.copy_(sincos_position_embeddings(grid, dim)[None])

    def factor(alpha: float, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        target = alpha * torch.randn(dim, dim, generator=generator) / dim**0.5 + beta * torch.eye(dim)
        u, s, vh = torch.linalg.svd(target)
        return u, s.sqrt(), vh

    for layer in model.vit.layers:
        attention = layer.attention
        for h in range(heads):
            u, root, vh = factor(*qk)  # W_q,h^T W_k,h = rank-head_dim part of the target
            rows = slice(h * head_dim, (h + 1) * head_dim)
            attention.q_proj.weight[rows] = (u[:, :head_dim] * root[:head_dim]).T
            attention.k_proj.weight[rows] = (vh[:head_dim].T * root[:head_dim]).T
        u, root, vh = factor(vo[0], -vo[1])
        attention.v_proj.weight.copy_((u * root).T)  # v = x W_v^T, out = v W_o^T
        attention.o_proj.weight.copy_((root[:, None] * vh).T)


@torch.no_grad()
def predict(model: ViTForImageClassification, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, C) sigmoid probabilities for (N, H, W, 3) uint8 images."""
    model.eval()
    out = [torch.sigmoid(model(pixel_values=to_pixel_values(images[i:i + batch])).logits)
           for i in range(0, len(images), batch)]
    return torch.cat(out).numpy()


def write_samples(model: ViTForImageClassification, samples_dir: Path, n: int = 8) -> list[dict]:
    """Save the first ``n`` scenes of ``SAMPLE_SEED`` as PNGs plus samples.json.

    The scenes are taken in order (not picked for the model's benefit).

    Returns:
        One record per sample: file, labels (names) and the model's predicted names.
    """
    samples_dir.mkdir(parents=True, exist_ok=True)
    scenes = make_scenes(n, seed=SAMPLE_SEED, size=IMAGE_SIZE)
    images, _ = stack_scenes(scenes)
    probs = predict(model, images)
    records = []
    for i, scene in enumerate(scenes):
        name = f"scene_{i:02d}.png"
        Image.fromarray(scene.image).save(samples_dir / name)
        predicted = [CLASS_NAMES[c] for c in np.flatnonzero(probs[i] >= 0.5)]
        records.append({"file": name, "labels": scene.label_names, "predicted": predicted})
    meta = {"generator_version": GENERATOR_VERSION, "seed": SAMPLE_SEED, "samples": records}
    (samples_dir / "samples.json").write_text(json.dumps(meta, indent=2) + "\n")
    return records


def train(steps: int, seed: int, out: Path, samples: Path | None, batch_size: int = 64,
          peak_lr: float = 1e-3, hidden_size: int = 128, layers: int = 4, heads: int = 4,
          eval_every: int = 1000, threads: int = 2, token_labels: bool = True,
          init: str = "mimetic", checkpoints: Path | None = None, checkpoint_every: int = 500,
          stop_after: int | None = None) -> dict:
    """Train from scratch and save the model, processor and (optionally) samples.

    Args:
        steps: Optimiser steps.
        seed: Training seed (< 10**6), seeds both torch and the scene stream.
        out: Output model directory.
        samples: Directory for sample PNGs, or None to skip.
        batch_size: Scenes per step.
        peak_lr: AdamW peak learning rate.
        hidden_size: Width of the residual stream.
        layers: Encoder blocks.
        heads: Attention heads.
        eval_every: Steps between held-out metrics.
        threads: torch intra-op threads (1 is faster when the two cores are shared).
        token_labels: also train every patch token, through the same classifier head, to predict the
            classes of the objects it covers (token labelling, Jiang et al. 2021). The [CLS] loss alone
            learns slowly from scratch (macro F1 0.13 after 1,750 steps); with it, 0.14 after 500. The
            saved model is unchanged: a plain ViTForImageClassification.
        init: ``"mimetic"`` (see ``mimetic_init``) or ``"default"`` (transformers' truncated normal).
        checkpoints: directory for ``vit.pt``, written every ``checkpoint_every`` steps; when it holds a
            checkpoint of a run with the same settings, training continues from it.
        checkpoint_every: steps between checkpoints.
        stop_after: stop (after checkpointing) once this many steps are done, as a killed run would;
            for tests.

    Returns:
        Summary dict (steps, wall time, final held-out loss and F1, the held-out curve).
    """
    if seed == VALIDATION_SEED:
        raise ValueError(f"seed {VALIDATION_SEED} is reserved for the held-out batch: choose another --seed.")
    torch.set_num_threads(threads)
    rng = seeded_stream(seed)

    model = ViTForImageClassification(build_config(hidden_size, layers, heads))
    if init == "mimetic":
        mimetic_init(model, torch.Generator().manual_seed(seed))
    elif init != "default":
        raise ValueError(f"init must be 'mimetic' or 'default', got {init!r}")
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embeddings" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "embeddings" in n]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=peak_lr)
    val_images, val_labels = stack_scenes(make_scenes(512, seed=VALIDATION_SEED, size=IMAGE_SIZE))
    print(f"ViT: {layers} layers, {heads} heads, hidden {hidden_size}, {n_params / 1e6:.2f}M params; "
          f"{steps} steps x {batch_size} scenes, seed {seed}", flush=True)

    def next_batch(stream: np.random.Generator) -> list[Scene]:
        return [make_scene(stream, IMAGE_SIZE) for _ in range(batch_size)]

    def loss_of(model: ViTForImageClassification, scenes: list[Scene]) -> torch.Tensor:
        images, labels = stack_scenes(scenes)
        sequence = model.vit(pixel_values=to_pixel_values(images)).last_hidden_state  # (B, 1 + P, D)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model.classifier(sequence[:, 0]), torch.from_numpy(labels))
        if token_labels:  # every patch token, through the same head, on the classes of the objects covering it
            loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(
                model.classifier(sequence[:, 1:]), patch_targets(scenes, IMAGE_SIZE // PATCH_SIZE))
        return loss

    def evaluate(model: ViTForImageClassification) -> dict:
        probs = predict(model, val_images)  # (512, C)
        val_loss = torch.nn.functional.binary_cross_entropy(
            torch.from_numpy(probs).clamp(1e-7, 1 - 1e-7), torch.from_numpy(val_labels)).item()
        return {"val_loss": round(val_loss, 4), "val_macro_f1": round(macro_f1(probs, val_labels)[0], 4)}

    settings = {"steps": steps, "seed": seed, "batch_size": batch_size, "peak_lr": peak_lr, "hidden_size": hidden_size,
                "layers": layers, "heads": heads, "token_labels": token_labels, "init": init,
                "generator_version": GENERATOR_VERSION}
    run = train_loop(model, optimiser, rng, next_batch=next_batch, loss_of=loss_of, evaluate=evaluate,
                     settings=settings, steps=steps, peak_lr=peak_lr, eval_every=eval_every,
                     checkpoint=None if checkpoints is None else Path(checkpoints) / "vit.pt",
                     checkpoint_every=checkpoint_every, stop_after=stop_after)
    if not run.finished:
        return {"stopped_at": run.step}
    curve = run.curve

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor = ViTImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                  image_mean=list(IMAGE_MEAN), image_std=list(IMAGE_STD))
    processor.save_pretrained(out)
    summary = {"steps": steps, "seed": seed, "batch_size": batch_size, "wall_time_s": round(run.wall_s, 1),
               "cpu_time_s": round(time.process_time(), 1),
               "params": n_params, "generator_version": GENERATOR_VERSION, **(curve[-1] if curve else {}),
               "curve": curve}
    if samples is not None:
        summary["samples"] = write_samples(model, samples)
    print(json.dumps(summary, indent=2), flush=True)
    return summary


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and train."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000, help="optimiser steps")
    parser.add_argument("--seed", type=int, default=0, help=f"training seed, < {10**6}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output model directory")
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES,
                        help="directory for sample scene PNGs + samples.json")
    parser.add_argument("--no-samples", action="store_true", help="do not write sample scenes")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--no-token-labels", action="store_true",
                        help="train the [CLS] classification loss only (slower to learn)")
    parser.add_argument("--init", choices=("mimetic", "default"), default="mimetic",
                        help="attention initialisation (mimetic learns faster from scratch)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads; 1 when other jobs share the cores")
    parser.add_argument("--checkpoints", type=Path, default=Path("/tmp/shapes-vit-checkpoints"),
                        help="checkpoint directory (resumes from it); outside the repository")
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--summary", type=Path, help="also write the summary (curve included) as JSON here")
    args = parser.parse_args(argv)
    summary = train(args.steps, args.seed, args.out, None if args.no_samples else args.samples,
                    batch_size=args.batch_size, peak_lr=args.lr, hidden_size=args.hidden,
                    layers=args.layers, heads=args.heads, eval_every=args.eval_every,
                    threads=args.threads, token_labels=not args.no_token_labels, init=args.init,
                    checkpoints=args.checkpoints, checkpoint_every=args.checkpoint_every)
    if args.summary is not None:
        args.summary.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
