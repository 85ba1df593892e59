"""Command line: `python -m explain {models,text,image,bench,evaluate}`. See README.md."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from explain.methods import METHODS
from explain.rollout import HEAD_FUSIONS


class CliError(ValueError):
    """Bad command-line input: printed as one sentence, exit code 2."""


def _ratio(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None


def _add_method_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default="rollout", help=f"one of {', '.join(METHODS)} (default rollout)")
    parser.add_argument("--layer", type=int, help="layer for --method attention (default: the last)")
    parser.add_argument("--head", type=int, help="head for --method attention (default: mean of heads)")
    parser.add_argument("--head-fusion", default="mean", help=f"rollout head fusion: {', '.join(HEAD_FUSIONS)}")
    parser.add_argument("--discard-ratio", type=_ratio, default=0.0, help="rollout: share of each row dropped, in [0, 1)")
    parser.add_argument("--start-layer", type=int, default=0, help="first layer rolled out (default 0)")
    parser.add_argument("--out", required=True, help="the .npz file to write")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explain", description="Attention maps, attention rollout and gradient rollout.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="list the available models as JSON")

    text = commands.add_parser("text", help="explain a sentence (or a sentence pair)")
    text.add_argument("text")
    text.add_argument("--pair", help="a second sentence")
    text.add_argument("--model", default="minilm")
    text.add_argument("--target", help="a probe sentence (embedding models) or a class name or index (classifiers)")
    text.add_argument("--label", action="append", default=[], help="a zero-shot label (repeat); --target picks one")
    _add_method_options(text)

    image = commands.add_parser("image", help="explain an image")
    image.add_argument("path")
    image.add_argument("--model", default="shapes-vit")
    image.add_argument("--target", help="class name or index (default: the predicted class)")
    image.add_argument("--overlay", help="also write the relevance over the image as a PNG")
    _add_method_options(image)

    bench = commands.add_parser("bench", help="time capture, rollout and gradient rollout")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--repeats", type=int, default=7)

    evaluate = commands.add_parser("evaluate", help="classification and pointing-game figures of an image model")
    evaluate.add_argument("--model", default="shapes-vit")
    evaluate.add_argument("--scenes", type=int, default=2000)
    evaluate.add_argument("--seed", type=int)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _check_options(args: argparse.Namespace) -> None:
    if args.method not in METHODS:
        raise CliError(f"Unknown method '{args.method}': choose one of {', '.join(METHODS)}.")
    if args.head_fusion not in HEAD_FUSIONS:
        raise CliError(f"Unknown head fusion '{args.head_fusion}': choose one of {', '.join(HEAD_FUSIONS)}.")
    if not 0.0 <= args.discard_ratio < 1.0:
        raise CliError(f"Discard ratio {args.discard_ratio} is out of range: choose a value in [0, 1).")
    if args.method != "attention" and (args.layer is not None or args.head is not None):
        raise CliError("--layer and --head select one attention map: use them with --method attention.")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise CliError(f"--out must name a .npz file, not '{args.out}'.")
    if not out.parent.exists():
        raise CliError(f"The folder of --out ({out.parent}) does not exist: create it first.")


def _explanation(capture, args):  # noqa: ANN001, ANN202
    from explain.methods import explain_capture

    return explain_capture(
        capture, args.method, layer=args.layer, head=args.head, head_fusion=args.head_fusion,
        discard_ratio=args.discard_ratio, start_layer=args.start_layer,
    )


def _save(args: argparse.Namespace, capture, explanation, extra: dict) -> None:  # noqa: ANN001
    arrays = {
        "attentions": capture.attentions.numpy().astype(np.float32),
        "matrix": explanation.matrix.numpy().astype(np.float32),
        "relevance": (explanation.grid if explanation.grid is not None else explanation.relevance).numpy().astype(np.float32),
        "method": np.array(args.method),
        "model": np.array(args.model),
        **extra,
    }
    if capture.scores is not None:
        arrays["scores"] = capture.scores.numpy().astype(np.float32)
        arrays["score_labels"] = np.array(capture.score_labels, dtype=str)
    if capture.target_label is not None and args.method == "gradient-rollout":
        arrays["target"] = np.array(capture.target_label)
    np.savez(args.out, **arrays)


def run_text(args: argparse.Namespace) -> None:
    import models
    from explain.capture import capture_text

    _check_options(args)
    if not args.text.strip():
        raise CliError("The text is empty: give a sentence to explain.")
    loaded = models.load(args.model)
    if loaded.spec.kind != "text":
        raise CliError(f"'{args.model}' is an image model: use `python -m explain image`.")
    gradient = args.method == "gradient-rollout"
    if gradient and not loaded.spec.classifier and not (args.target or args.label):
        raise CliError(
            f"Gradient rollout on '{args.model}' (an embedding model) needs --target PROBE_SENTENCE or --label LABEL."
        )
    capture = capture_text(
        loaded, args.text, args.pair, target=args.target if gradient else None,
        labels=args.label if gradient else None, with_gradients=gradient,
    )
    if capture.dropped_tokens:
        print(
            f"warning: the input is longer than {loaded.spec.name}'s maximum of {loaded.spec.max_length} tokens; "
            f"the last {capture.dropped_tokens} tokens were dropped.",
            file=sys.stderr,
        )
    explanation = _explanation(capture, args)
    _save(args, capture, explanation, {"tokens": np.array(capture.tokens, dtype=str)})
    print(f"wrote {args.out}: {len(capture.tokens)} tokens, {capture.layers} layers x {capture.heads} heads")


def run_image(args: argparse.Namespace) -> None:
    import models
    from explain.capture import capture_image
    from explain.images import open_image

    _check_options(args)
    if args.overlay and Path(args.overlay).suffix.lower() != ".png":
        raise CliError(f"--overlay must name a .png file, not '{args.overlay}'.")
    picture = open_image(args.path)
    loaded = models.load(args.model)
    if loaded.spec.kind != "image":
        raise CliError(f"'{args.model}' is a text model: use `python -m explain text`.")
    gradient = args.method == "gradient-rollout"
    capture = capture_image(loaded, picture, target=args.target if gradient else None, with_gradients=gradient)
    explanation = _explanation(capture, args)
    _save(args, capture, explanation, {"grid": np.array(capture.grid, dtype=np.int64)})
    if args.overlay:
        from viz.overlay import overlay, to_png_bytes

        Path(args.overlay).write_bytes(to_png_bytes(overlay(capture.image, explanation.grid.numpy())))
    print(f"wrote {args.out}: {capture.grid[0]}x{capture.grid[1]} patches, top class {capture.score_labels[int(capture.scores.argmax())]}")


def run_models(_: argparse.Namespace) -> None:
    import models

    print(json.dumps([spec.summary() for spec in models.list_models()], indent=2))


def run_bench(args: argparse.Namespace) -> None:
    from explain.bench import benchmark

    result = benchmark(repeats=max(1, args.repeats))
    print(json.dumps(result, indent=2) if args.json else json.dumps(result))


def run_evaluate(args: argparse.Namespace) -> None:
    try:
        from explain import evaluate as evaluation
    except ImportError as error:
        raise CliError("The evaluation module is not available in this checkout.") from error
    if args.scenes < 1:
        raise CliError("--scenes must be at least 1.")
    options = {"model_name": args.model, "n_scenes": args.scenes}
    if args.seed is not None:
        options["seed"] = args.seed
    print(json.dumps(evaluation.evaluate(**options), indent=2))


COMMANDS = {"models": run_models, "text": run_text, "image": run_image, "bench": run_bench, "evaluate": run_evaluate}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad input, with one sentence on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (ValueError, RuntimeError) as error:  # ModelLoadError, ImageInputError and CliError are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
