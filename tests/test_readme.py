"""Every command in README.md runs as written (issue: a literal <scene> placeholder broke in a shell).

Rule: each `.venv/bin/python -m ...` line of the README's bash blocks runs from a temporary directory that sees
the repository's models/ (relative paths work, outputs land in the temporary directory, after the block's
`mkdir -p` lines) and must exit 0. No line may call a bare `python`: pasted after the README's install, which
puts everything in .venv, it would not find torch.
Commands that train a model (`python -m training.train_*`) or take minutes (`explain bench`,
`explain evaluate`) are run with `--help` instead: the suite never retrains, and their full runs are
the figures the README reports. Installing a virtual environment and `streamlit run` are what CI and
the browser test do.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SLOW = ("explain bench", "explain evaluate", "training.train_")


PYTHON = ".venv/bin/python -m "


def readme_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def readme_commands() -> list[str]:
    return [line for line in readme_lines() if line.startswith(PYTHON)]


COMMANDS = readme_commands()
FOLDERS = [folder for line in readme_lines() if line.startswith("mkdir -p ") for folder in shlex.split(line)[2:]]


def test_every_command_runs_in_the_virtual_environment():
    for line in readme_lines():
        assert not re.match(r"(python3?|streamlit|pytest)\b", line) or line.startswith("python3 -m venv"), (
            f"'{line}' needs the virtual environment's interpreter: write .venv/bin/python (or .venv/bin/streamlit)")
    assert FOLDERS == ["out"], FOLDERS


def test_the_readme_has_commands_and_no_placeholders():
    assert len(COMMANDS) >= 10
    for command in COMMANDS:
        assert not re.search(r"<[a-z_]+>", command), f"placeholder in: {command}"
    outputs = [arg for c in COMMANDS for arg in re.findall(r"--(?:out|overlay) (\S+)", c)]
    assert len(outputs) == len(set(outputs)), "two README commands write the same file"


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs_as_written(command, tmp_path):
    (tmp_path / "models").symlink_to(ROOT / "models")
    for folder in FOLDERS:
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    argv = shlex.split(command)
    argv[0] = sys.executable
    if any(marker in command for marker in SLOW):
        module = argv[:4] if argv[2] == "explain" else argv[:3]  # python -m explain bench / python -m training.x
        argv = module + ["--help"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"
    for output in re.findall(r"--(?:out|overlay) (\S+)", command):
        assert (tmp_path / output).is_file(), f"{command} did not write {output}"


def test_every_image_the_readme_shows_is_committed():
    """Each ![...](path) of the README is a PNG in the repository (the browser test writes them with
    UPDATE_SCREENSHOTS=1), and every committed screenshot is shown."""
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (ROOT / "README.md").read_text())
    assert len(shown) >= 12
    for path in shown:
        assert (ROOT / path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    committed = {str(p.relative_to(ROOT)) for p in (ROOT / "docs" / "screenshots").glob("*.png")}
    assert committed == set(shown)


def test_the_python_api_example_runs_as_written(tmp_path):
    """The README's Python block, run in a fresh interpreter from the repository root (it reads a bundled sample
    scene by its relative path and writes nothing)."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    script = tmp_path / "example.py"
    script.write_text("\n".join(blocks))
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
