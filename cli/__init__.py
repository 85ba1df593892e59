"""The programs on top of the library: the command line (`python -m explain ...`, cli/main.py), the benchmark
(cli/bench.py) and the evaluations of the bundled models (cli/evaluate.py for images, cli/evaluate_text.py for
text)."""
