"""The command line, `python -m explain {models,text,seq2seq,image,rnn,qkv,lens,bench,evaluate}` (explain/__main__.py hands
over here). Bad input gets one sentence on stderr and exit code 2. See README.md."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from explain.methods import METHODS, explain_capture, get_method
from explain.rollout import HEAD_FUSIONS
from models import ModelKind


FULL_LOGITS_VOCABULARY = 8192  # `lens` writes every logit up to this vocabulary size, else only the top k


class CliError(ValueError):
    """Bad command-line input: printed as one sentence, exit code 2."""


def _ratio(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None


def _add_method_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default="rollout", help="; ".join(f"{m.name}: {m.summary}" for m in METHODS.values())
                        + " (default rollout)")
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

    text = commands.add_parser("text", help="explain a sentence (or a sentence pair), or a decoder's prompt")
    text.add_argument("text")
    text.add_argument("--pair", help="a second sentence (encoders)")
    text.add_argument("--model", default="minilm")
    text.add_argument("--target", help="a probe sentence (embedding models), a class name or index (classifiers), "
                                       "or the next token to explain, as text or vocabulary id (decoders)")
    text.add_argument("--label", action="append", default=[], help="a zero-shot label (repeat); --target picks one")
    text.add_argument("--generate", type=int, default=0,
                      help="decoders: append this many greedy tokens to the prompt first (default 0)")
    _add_method_options(text)

    seq2seq = commands.add_parser("seq2seq", help="explain an encoder-decoder's output for a source text")
    seq2seq.add_argument("source")
    seq2seq.add_argument("--model", default="iso-dates")
    seq2seq.add_argument("--output", help="explain this output (teacher-forced) instead of the model's own")
    seq2seq.add_argument("--max-new-tokens", type=int, default=64, help="longest generated output (default 64)")
    _add_method_options(seq2seq)

    image = commands.add_parser("image", help="explain an image")
    image.add_argument("path")
    image.add_argument("--model", default="shapes-vit")
    image.add_argument("--target", help="class name or index (default: the predicted class)")
    image.add_argument("--overlay", help="also write the relevance over the image as a PNG (at least 512 px)")
    image.add_argument("--overlay-style", choices=("smooth", "patches"), default="smooth",
                       help="relevance upsampled smoothly (bilinear) or as crisp patches (default smooth)")
    _add_method_options(image)

    rnn = commands.add_parser("rnn", help="reverse a string of letters with a recurrent encoder-decoder: its output, "
                                          "alignment (attention model) and gradient norms per source letter")
    rnn.add_argument("text", help="lower-case letters, for example 'attention'")
    rnn.add_argument("--model", default="reverse-gru-attn", help="reverse-gru-attn (default) or reverse-gru")
    rnn.add_argument("--initialised", action="store_true",
                     help="measure a freshly initialised model of the same shape (seed 0) instead of the trained one")
    rnn.add_argument("--out", required=True, help="the .npz file to write")

    qkv = commands.add_parser("qkv", help="every step of one attention head for one query token")
    qkv.add_argument("text", nargs="?", default=None, help="the input text (not for --image)")
    qkv.add_argument("--model", default="minilm")
    qkv.add_argument("--image", help="an image file, for image models")
    qkv.add_argument("--layer", type=int, required=True)
    qkv.add_argument("--head", type=int, required=True)
    qkv.add_argument("--token", type=int, required=True, help="index of the query token")
    qkv.add_argument("--stack", choices=("self", "cross"), default="self",
                     help="encoder-decoders: cross-attention (queries from the decoder, keys and values from the encoder)")
    qkv.add_argument("--side", choices=("encoder", "decoder"), help="encoder-decoders' self-attention: which one")
    qkv.add_argument("--output", help="encoder-decoders: the output to teacher-force (default: greedy)")
    qkv.add_argument("--out", required=True, help="the .npz file to write")

    lens = commands.add_parser(
        "lens", help="a decoder's logit lens (its final norm and unembedding after every layer) and the norms of the "
                     "residual stream and of what attention and the feed-forward add to it")
    lens.add_argument("text", help="the prompt")
    lens.add_argument("--model", default="induction-lm", help="a decoder (default induction-lm)")
    lens.add_argument("--top", type=int, default=10, help="top_ids / top_probs: the K most likely tokens per layer and "
                                                          "position (default 10)")
    lens.add_argument("--full-logits", action="store_true",
                      help=f"also write layer_logits (layers + 1, T, V) when the vocabulary exceeds "
                           f"{FULL_LOGITS_VOCABULARY:,} entries (at or below that size it is always written)")
    lens.add_argument("--out", required=True, help="the .npz file to write")

    bench = commands.add_parser("bench", help="time capture, rollout and gradient rollout")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--repeats", type=int, default=7)
    bench.add_argument("--no-methods", action="store_true",
                       help="skip each registered method's time on each bundled model (a few minutes)")
    bench.add_argument("--no-large", action="store_true",
                       help="skip the random 8-layer x 16-head Llama at 1,024 tokens (about a minute on 2 cores)")

    evaluate = commands.add_parser(
        "evaluate", help="an image model on generated scenes (classification, pointing game, faithfulness, "
                         "localisation), or a text model on a file of texts (ERASER comprehensiveness and sufficiency)")
    evaluate.add_argument("--model", default="shapes-vit")
    evaluate.add_argument("--scenes", type=int, default=2000)
    evaluate.add_argument("--seed", type=int)
    evaluate.add_argument("--texts", help="a file with one text per line (text models; default: the model's bundled "
                                          "examples under models/bundled/texts/)")
    evaluate.add_argument("--label", action="append", default=[],
                          help="zero-shot labels for an embedding model (repeat; default animals, food, language, computers, travel)")
    evaluate.add_argument("--method", action="append", default=[],
                          help="a method to score (repeat; default: every registered method that applies)")
    evaluate.add_argument("--ood", action="store_true",
                          help="images: the largest logit on held-out scenes and the out-of-distribution threshold "
                               "(its 1st percentile) the image page uses; write it as the model's ood.json")
    evaluate.add_argument("--no-perturbation", action="store_true",
                          help="images: skip the perturbation curves and localisation scores (much faster)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _check_options(args: argparse.Namespace) -> None:
    if args.method not in METHODS:
        raise CliError(f"Unknown method '{args.method}': choose one of {', '.join(METHODS)}.")
    if args.head_fusion not in HEAD_FUSIONS:
        raise CliError(f"Unknown head fusion '{args.head_fusion}': choose one of {', '.join(HEAD_FUSIONS)}.")
    if not 0.0 <= args.discard_ratio < 1.0:
        raise CliError(f"Discard ratio {args.discard_ratio} is out of range: choose a value in [0, 1).")
    takes = {name for options in METHODS[args.method].options.values() for name in options}
    if "layer" not in takes and (args.layer is not None or args.head is not None):
        raise CliError("--layer and --head select one attention map: use them with --method attention.")
    _check_out(args.out)


def _check_out(path: str) -> None:
    out = Path(path)
    if out.suffix != ".npz":
        raise CliError(f"--out must name a .npz file, not '{path}'.")
    if not out.parent.exists():
        raise CliError(f"The folder of --out ({out.parent}) does not exist: create it first.")


def _explanation(capture, args, loaded):  # noqa: ANN001, ANN202
    """The chosen method on a capture, with the options of the command line it takes."""
    options = dict(layer=args.layer, head=args.head, head_fusion=args.head_fusion, discard_ratio=args.discard_ratio,
                   start_layer=args.start_layer)
    method = get_method(args.method)
    return explain_capture(capture, args.method, loaded, **method.accepted(capture, options))


def _save(args: argparse.Namespace, capture, explanation, extra: dict) -> None:  # noqa: ANN001
    arrays = {
        "attentions": capture.attentions.numpy().astype(np.float32),
        **({} if explanation.matrix is None else {"matrix": explanation.matrix.numpy().astype(np.float32)}),
        "relevance": (explanation.grid if explanation.grid is not None else explanation.relevance).numpy().astype(np.float32),
        "method": np.array(args.method),
        "model": np.array(args.model),
        **extra,
    }
    if capture.scores is not None:
        arrays["scores"] = capture.scores.numpy().astype(np.float32)
        arrays["score_labels"] = np.array(capture.score_labels, dtype=str)
    if capture.target_label is not None and get_method(args.method).needs_target:
        arrays["target"] = np.array(capture.target_label)
    for name, value in explanation.measures.items():  # e.g. completeness_gap (integrated gradients)
        arrays[name] = np.array(value, dtype=np.float32)
    arrays["seconds"] = np.array(explanation.seconds, dtype=np.float32)
    np.savez(args.out, **arrays)


def _wrong_kind(name: str, kind: ModelKind) -> CliError:
    return CliError(f"'{name}' is {kind.article}: use `python -m explain {kind.command}`.")


def _truncation_warning(loaded, dropped: int, where: str) -> None:  # noqa: ANN001
    if dropped:
        print(f"warning: the {where} {loaded.spec.name}'s maximum of {loaded.spec.max_length} tokens; "
              f"the {'first' if loaded.spec.kind.causal else 'last'} {dropped} "
              f"{'prompt ' if loaded.spec.kind.causal else ''}tokens were dropped.", file=sys.stderr)


def run_text(args: argparse.Namespace) -> None:
    import models
    from explain.encoder import capture_text

    _check_options(args)
    if not args.text.strip():
        raise CliError("The text is empty: give a sentence to explain.")
    loaded = models.load(args.model)
    kind = loaded.spec.kind
    if kind.causal:
        run_decoder(args, loaded)
        return
    if kind.command != "text":
        raise _wrong_kind(args.model, kind)
    if args.generate:
        raise CliError("--generate continues a prompt: use it with a decoder model (e.g. --model induction-lm).")
    method = get_method(args.method)
    if method.needs_target and not loaded.spec.classifier and not (args.target or args.label):
        raise CliError(
            f"{method.label} on '{args.model}' (an embedding model) needs --target PROBE_SENTENCE or --label LABEL."
        )
    capture = capture_text(
        loaded, args.text, args.pair, target=args.target if method.needs_target else None,
        labels=args.label if method.needs_target else None, with_gradients=method.needs_gradients,
    )
    _truncation_warning(loaded, capture.dropped_tokens, "input is longer than")
    explanation = _explanation(capture, args, loaded)
    _save(args, capture, explanation, {"tokens": np.array(capture.tokens, dtype=str)})
    print(f"wrote {args.out}: {len(capture.tokens)} tokens, {capture.layers} layers x {capture.heads} heads")


def run_decoder(args: argparse.Namespace, loaded) -> None:  # noqa: ANN001
    from explain.decoder import capture_decoder

    if args.pair or args.label:
        raise CliError(f"'{args.model}' is a decoder: --pair and --label belong to text encoders.")
    capture = capture_decoder(loaded, args.text, generate=args.generate, target=args.target,
                              with_gradients=get_method(args.method).needs_gradients)
    _truncation_warning(loaded, capture.dropped_tokens, "prompt and its continuation exceed")
    explanation = _explanation(capture, args, loaded)
    _save(args, capture, explanation, {
        "tokens": np.array(capture.tokens, dtype=str), "target": np.array(capture.target_label),
        "target_position": np.array(capture.target_position), "prompt_length": np.array(capture.prompt_length),
    })
    probability = float(capture.scores[capture.target_index])
    print(f"wrote {args.out}: {len(capture.tokens)} tokens ({capture.prompt_length} prompt), {capture.layers} layers x "
          f"{capture.heads} heads; target {capture.target_label!r} (p={probability:.3f}) after position {capture.target_position}")


def run_seq2seq(args: argparse.Namespace) -> None:
    import models
    from explain.seq2seq import capture_seq2seq, output_relevance

    _check_options(args)
    if not args.source.strip():
        raise CliError("The source text is empty: give a text to rewrite.")
    loaded = models.load(args.model)
    if not loaded.spec.kind.cross_attention:
        raise _wrong_kind(args.model, loaded.spec.kind)
    first = capture_seq2seq(loaded, args.source, output=args.output, max_new_tokens=args.max_new_tokens)
    _truncation_warning(loaded, first.dropped_tokens, "source is longer than")
    # One explanation per output token n (its logit where the decoder predicted it), the output fixed.
    options = dict(layer=args.layer, head=args.head, head_fusion=args.head_fusion, discard_ratio=args.discard_ratio,
                   start_layer=args.start_layer)
    source_rows, output_rows = output_relevance(loaded, first, args.method,
                                                **get_method(args.method).accepted(first, options))
    np.savez(
        args.out,
        encoder_attentions=first.attentions.numpy().astype(np.float32),
        decoder_attentions=first.decoder_attentions.numpy().astype(np.float32),
        cross_attentions=first.cross_attentions.numpy().astype(np.float32),
        source_tokens=np.array(first.source_tokens, dtype=str),
        output_tokens=np.array(first.output_tokens, dtype=str),
        decoder_tokens=np.array(first.decoder_tokens, dtype=str),
        relevance_source=source_rows.numpy().astype(np.float32),
        **({} if output_rows is None else {"relevance_output": output_rows.numpy().astype(np.float32)}),
        output_probabilities=first.output_probabilities.numpy().astype(np.float32),
        output_text=np.array(first.output_text), method=np.array(args.method), model=np.array(args.model),
    )
    print(f"wrote {args.out}: {len(first.source_tokens)} source tokens -> {len(first.output_tokens)} output tokens "
          f"({'given' if first.teacher_forced else 'generated'}): {first.output_text!r}")


def run_image(args: argparse.Namespace) -> None:
    import models
    from explain.images import open_image
    from explain.targets import resolve_index
    from explain.vision import capture_image

    _check_options(args)
    if args.overlay and Path(args.overlay).suffix.lower() != ".png":
        raise CliError(f"--overlay must name a .png file, not '{args.overlay}'.")
    picture = open_image(args.path)
    loaded = models.load(args.model)
    if not loaded.spec.kind.reads_images:
        raise _wrong_kind(args.model, loaded.spec.kind)
    method = get_method(args.method)
    gradient = method.needs_target
    capture = capture_image(loaded, picture, with_gradients=method.needs_gradients,
                            **({"target": args.target} if gradient else {}))
    # --target names the explained class for the methods that explain one; for the others, which do not depend on
    # a class, it names the class whose score is reported and saved.
    target = resolve_index(args.target, capture.score_labels, int(capture.scores.argmax()), "Class")
    label, score = capture.score_labels[target], float(capture.scores[target])
    explanation = _explanation(capture, args, loaded)
    _save(args, capture, explanation, {"grid": np.array(capture.grid, dtype=np.int64), "target": np.array(label),
                                       "target_score": np.array(score, dtype=np.float32)})
    if args.overlay:
        from explain.images import overlay_base
        from viz.overlay import overlay, to_png_bytes

        base = overlay_base(picture, capture.image, loaded.processor)
        drawn = overlay(base, explanation.grid.numpy(), smooth=args.overlay_style == "smooth")
        Path(args.overlay).write_bytes(to_png_bytes(drawn))
    top = capture.score_labels[int(capture.scores.argmax())]
    note = "" if gradient or args.target is None else f" ({method.label} does not depend on the class; --target picks the score shown)"
    print(f"wrote {args.out}: {capture.grid[0]}x{capture.grid[1]} patches; target class {label!r}, score {score:.3f}; "
          f"top class {top!r}{note}")


def run_models(_: argparse.Namespace) -> None:
    import models

    print(json.dumps([spec.summary() for spec in models.list_models()], indent=2))


def run_bench(args: argparse.Namespace) -> None:
    from cli.bench import benchmark

    result = benchmark(repeats=max(1, args.repeats), large=not args.no_large, methods=not args.no_methods)
    print(json.dumps(result, indent=2) if args.json else json.dumps(result))


def run_evaluate(args: argparse.Namespace) -> None:
    from cli import evaluate as evaluation
    import models

    kind = models.load_spec(args.model).kind
    if not kind.transformer:
        raise CliError(f"'{args.model}' is {kind.article}: its measured figures are in its model card and reversal.json "
                       f"(`{models.registry.TRAIN_COMMANDS.get(args.model, RETRAIN_RECURRENT)}` "
                       "re-measures them); evaluate scores the explanation methods of transformers.")
    if args.texts or not kind.reads_images:
        from cli.evaluate_text import BUNDLED_TEXTS, DEFAULT_LABELS, evaluate_texts, read_texts

        if kind.reads_images:
            raise CliError(f"'{args.model}' is an image model: evaluate it on scenes (--scenes), not on --texts.")
        path = args.texts or BUNDLED_TEXTS / f"{models.resolve(args.model)[0]}.txt"
        if not args.texts and not Path(path).is_file():
            raise CliError(f"No bundled texts for '{args.model}': give --texts FILE with one input per line.")
        labels = tuple(args.label) or DEFAULT_LABELS
        for method in args.method:
            get_method(method)
        print(json.dumps(evaluate_texts(args.model, read_texts(path), labels, seed=args.seed or 0,
                                        methods=tuple(args.method)), indent=2))
        return
    if args.scenes < 1:
        raise CliError("--scenes must be at least 1.")
    if args.ood:
        print(json.dumps(evaluation.ood_calibration(args.model, args.scenes, **({"seed": args.seed} if args.seed else {})),
                         indent=2))
        return
    for method in args.method:
        get_method(method)
    options = {"model_name": args.model, "n_scenes": args.scenes, "perturbation": not args.no_perturbation,
               "methods": tuple(args.method)}
    if args.seed is not None:
        options["seed"] = args.seed
    print(json.dumps(evaluation.evaluate(**options), indent=2))


def run_rnn(args: argparse.Namespace) -> None:
    import models
    from explain.recurrent import check_letters, run_recurrent

    _check_out(args.out)
    check_letters(args.text)
    loaded = models.load(args.model)
    if loaded.spec.kind.transformer:
        raise _wrong_kind(args.model, loaded.spec.kind)
    run = run_recurrent(loaded, args.text, initialised=args.initialised)
    arrays = {
        "output_text": np.array(run.output_text), "input_tokens": np.array(run.input_tokens, dtype=str),
        "output_tokens": np.array(run.output_tokens, dtype=str), "gradient_norms": run.gradient_norms,
        "gradient_norms_first": run.gradient_norms_first, "distances": run.distances.astype(np.int64),
        "model": np.array(args.model), "initialised": np.array(run.initialised),
    }
    if run.alignment is not None:
        arrays["alignment"] = run.alignment
    np.savez(args.out, **arrays)
    verdict = "correct" if run.correct else f"wrong (the reversal is {run.letters[::-1]!r})"
    diagonal = "" if run.anti_diagonal is None else f"; largest attention on the anti-diagonal for {run.anti_diagonal:.0%} of letters"
    print(f"wrote {args.out}: {len(run.letters)} letters -> {run.output_text!r}, {verdict}{diagonal}")


def run_qkv(args: argparse.Namespace) -> None:
    import models
    from explain.qkv import head_internals

    _check_out(args.out)
    image = None
    if args.image:
        from explain.images import open_image

        image = open_image(args.image)
    elif args.text is None or not args.text.strip():
        raise CliError("The text is empty: give a sentence (or --image PATH for an image model).")
    loaded = models.load(args.model)
    result = head_internals(loaded, text=args.text, image=image, output=args.output, layer=args.layer,
                            head=args.head, token=args.token, stack=args.stack, side=args.side)
    _truncation_warning(loaded, result.dropped_tokens,
                        "prompt is longer than" if loaded.spec.kind.causal else "text is longer than")
    arrays = {name: getattr(result, name).numpy().astype(np.float32) for name in (
        "hidden", "key_hidden", "q", "k", "v", "scores", "weights", "model_weights", "context", "concatenated", "projected")}
    np.savez(args.out, **arrays, mask=result.mask.numpy(), tokens=np.array(result.tokens, dtype=str),
             key_tokens=np.array(result.key_tokens, dtype=str), scaling=np.array(result.scaling, dtype=np.float32),
             layer=np.array(args.layer), head=np.array(args.head), token=np.array(args.token), stack=np.array(args.stack),
             rotary=np.array(result.rotary))
    largest = float((result.weights - result.model_weights).abs().max())
    print(f"wrote {args.out}: layer {args.layer}, head {args.head}, query {args.token} {result.tokens[args.token]!r}; "
          f"weights equal the model's within {largest:.1e}")


def run_lens(args: argparse.Namespace) -> None:
    import models
    from explain.block import inside_block, logit_lens

    _check_out(args.out)
    if not args.text.strip():
        raise CliError("The prompt is empty: give a text for the decoder to read.")
    if args.top < 1:
        raise CliError("--top must be at least 1.")
    loaded = models.load(args.model)
    if not loaded.spec.kind.causal:
        raise CliError(f"'{args.model}' is {loaded.spec.kind.article}: the logit lens needs a decoder "
                       "(e.g. --model induction-lm).")
    trace = inside_block(loaded, text=args.text)
    _truncation_warning(loaded, trace.dropped_tokens, "prompt is longer than")
    vocabulary = trace.logits.shape[-1]
    full = args.full_logits or vocabulary <= FULL_LOGITS_VOCABULARY
    result = logit_lens(loaded, trace, top=args.top, keep_logits=full)
    arrays = {
        "tokens": np.array(trace.tokens, dtype=str), "top_ids": result.top_ids.numpy().astype(np.int64),
        "top_probs": result.top_probs.numpy().astype(np.float32),
        "top_tokens": np.array(result.top_tokens, dtype=str), "ranks": result.ranks.numpy().astype(np.int64),
        "predicted": result.predicted.numpy().astype(np.int64),
        "residual_norms": trace.residual_norms.numpy().astype(np.float32),
        "attention_norms": trace.attention_norms.numpy().astype(np.float32),
        "mlp_norms": trace.mlp_norms.numpy().astype(np.float32),
        "output_norms": trace.output_norms.numpy().astype(np.float32),
        "model": np.array(args.model),
    }
    if full:
        arrays["layer_logits"] = result.layer_logits.numpy().astype(np.float32)
    np.savez(args.out, **arrays)
    last = trace.tokens[-1]
    print(f"wrote {args.out}: {len(trace.tokens)} tokens, {trace.layers} layers, vocabulary {vocabulary:,} "
          f"({'every logit' if full else f'top {args.top} per layer'}); after {last!r} the model predicts "
          f"{result.predicted_tokens[-1]!r}, first ranked top after {first_top_layer(result.ranks[:, -1])}; "
          f"last layer's lens equals the model's logits within {result.max_difference:.1e}")


RETRAIN_RECURRENT = "python -m training.train_reverse --model reverse-gru-attn --out DIRECTORY"


def first_top_layer(ranks) -> str:  # noqa: ANN001 - (L + 1,) ranks of one position
    """Where the eventual prediction first becomes the lens's top token: "the embeddings" or "layer N" (layers
    counted from 0, as the app labels them: row i of the lens is the stream after layer i - 1)."""
    index = int(np.argmax(np.asarray(ranks) == 0))
    return "the embeddings" if index == 0 else f"layer {index - 1}"


COMMANDS = {
    "qkv": run_qkv, "rnn": run_rnn, "lens": run_lens,
    "models": run_models, "text": run_text, "seq2seq": run_seq2seq, "image": run_image, "bench": run_bench,
    "evaluate": run_evaluate,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad input, with one sentence on stderr)."""
    from models.runtime import apply_thread_policy, tune_allocator

    tune_allocator()
    apply_thread_policy()
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (ValueError, RuntimeError) as error:  # ModelLoadError, ImageInputError and CliError are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
