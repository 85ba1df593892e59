"""Every command in README.md runs as written (issue: a literal <scene> placeholder broke in a shell).

Rule: each `python -m ...` line of the README's bash blocks runs from a temporary directory that sees
the repository's models/ (relative paths work, outputs land in the temporary directory) and must exit 0.
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


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("python -m "):
                commands.append(line)
    return commands


COMMANDS = readme_commands()


def test_the_readme_has_commands_and_no_placeholders():
    assert len(COMMANDS) >= 10
    for command in COMMANDS:
        assert not re.search(r"<[a-z_]+>", command), f"placeholder in: {command}"
    outputs = [arg for c in COMMANDS for arg in re.findall(r"--(?:out|overlay) (\S+)", c)]
    assert len(outputs) == len(set(outputs)), "two README commands write the same file"


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs_as_written(command, tmp_path):
    (tmp_path / "models").symlink_to(ROOT / "models")
    argv = shlex.split(command)
    argv[0] = sys.executable
    if any(marker in command for marker in SLOW):
        argv = argv[:3] + ["--help"]
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
