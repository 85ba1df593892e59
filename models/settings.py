"""The operator's settings for a shared server: which models visitors may load, how large, and how many heavy
requests run at once. The same settings apply to the app and the command line.

They come from environment variables, or from the `[explain]` table of a TOML file named by EXPLAIN_SETTINGS
(a variable set in the environment wins over the file). Streamlit's own `.streamlit/secrets.toml` can be that
file (`EXPLAIN_SETTINGS=.streamlit/secrets.toml`); on Streamlit Community Cloud, where secrets are the only
way to set anything, a root-level secret such as `EXPLAIN_LOCAL_PATHS = "false"` becomes an environment
variable. Environment variables, not `st.secrets`, because the command line reads them too and `models/` never
imports Streamlit.

    variable                 TOML key          default
    EXPLAIN_OTHER_MODELS     other_models      true: visitors may load models beyond the registry
    EXPLAIN_ALLOW            allow             empty: any hub id (else only ids matching these patterns)
    EXPLAIN_LOCAL_PATHS      local_paths       true: local checkpoint directories are accepted
    EXPLAIN_PICKLE_WEIGHTS   pickle_weights    false: pickle weights (.bin) are refused
    EXPLAIN_MAX_PARAMETERS   max_parameters    none: only the size in bytes limits
    EXPLAIN_MAX_MODEL_MB     max_model_mb      the smaller of half the free memory and the model cache
    EXPLAIN_MODEL_CACHE_MB   model_cache_mb    4096 (also the app's model cache budget, ui/cache.py)
    EXPLAIN_HEAVY_SLOTS      heavy_slots       cores / threads per run (models/runtime.py)

A value that cannot be read raises ValueError with one sentence naming the setting: a misspelt setting on a
shared server must not silently fall back to a permissive default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

SETTINGS_VARIABLE = "EXPLAIN_SETTINGS"
TABLE = "explain"
MODEL_CACHE_VARIABLE = "EXPLAIN_MODEL_CACHE_MB"
MODEL_CACHE_DEFAULT_MB = 4096

# setting name -> (environment variable, kind)
FIELDS: dict[str, tuple[str, str]] = {
    "other_models": ("EXPLAIN_OTHER_MODELS", "bool"),
    "allow": ("EXPLAIN_ALLOW", "patterns"),
    "local_paths": ("EXPLAIN_LOCAL_PATHS", "bool"),
    "pickle_weights": ("EXPLAIN_PICKLE_WEIGHTS", "bool"),
    "max_parameters": ("EXPLAIN_MAX_PARAMETERS", "count"),
    "max_model_mb": ("EXPLAIN_MAX_MODEL_MB", "megabytes"),
    "model_cache_mb": (MODEL_CACHE_VARIABLE, "megabytes"),
    "heavy_slots": ("EXPLAIN_HEAVY_SLOTS", "slots"),
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9}


@dataclass(frozen=True)
class Settings:
    """What visitors may load and how much of the machine they may take.

    Attributes:
        other_models: visitors may load models beyond the registry (hub ids, local directories).
        allow: hub ids or shell-style patterns (`google/*`, `facebook/deit-*`); when not empty, a model beyond the
            registry must match one (a local directory is matched by its absolute path).
        local_paths: local checkpoint directories are accepted.
        pickle_weights: pickle weight files (`pytorch_model.bin`), which can run code when unpickled, are loaded.
        max_parameters: the most parameters a model may have (None: no separate limit).
        max_model_bytes: the most bytes a model's parameters may take once loaded (None: derived from the machine,
            see models.access.size_limit).
        model_cache_bytes: the app's model cache budget (EXPLAIN_MODEL_CACHE_MB, default 4096 MB).
        heavy_slots: heavy requests run at once (None: derived from the cores and the thread policy).
    """

    other_models: bool = True
    allow: tuple[str, ...] = ()
    local_paths: bool = True
    pickle_weights: bool = False
    max_parameters: int | None = None
    max_model_bytes: int | None = None
    model_cache_bytes: int = MODEL_CACHE_DEFAULT_MB * 2**20
    heavy_slots: int | None = None


def _setting_error(name: str, source: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"The setting {name} ({source}) is {value!r}, which is not {expected}: fix it and restart.")


def _parse(name: str, kind: str, value: Any, source: str) -> Any:
    """One setting's value from the environment (a string) or the TOML file (a typed value)."""
    text = value.strip() if isinstance(value, str) else None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise _setting_error(name, source, value, "true or false")
    if kind == "patterns":
        if text is not None:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(item.strip() for item in value if item.strip())
        raise _setting_error(name, source, value, "a list of hub ids or patterns")
    number = _number(value, text, allow_suffix=kind == "count")
    if number is None or number <= 0 or (kind == "slots" and number != int(number)):
        expected = {"count": "a positive number such as 1.5e9 or 1500M", "megabytes": "a positive number of megabytes",
                    "slots": "a positive whole number"}[kind]
        raise _setting_error(name, source, value, expected)
    return int(number * 2**20) if kind == "megabytes" else int(number)


def _number(value: Any, text: str | None, allow_suffix: bool) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if text is None or not text:
        return None
    scale = 1.0
    if allow_suffix and text[-1].lower() in _SUFFIXES:
        scale, text = _SUFFIXES[text[-1].lower()], text[:-1]
    try:
        return float(text.replace("_", "")) * scale
    except ValueError:
        return None


def _file_values(path: str) -> dict[str, Any]:
    """The `[explain]` table of the TOML file at `path` (unknown keys are an error: a typo must not pass)."""
    file = Path(path).expanduser()
    try:
        data = tomllib.loads(file.read_text())
    except OSError as error:
        raise ValueError(f"The settings file {file} ({SETTINGS_VARIABLE}) cannot be read ({error.strerror}): "
                         "fix the path and restart.") from error
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"The settings file {file} is not valid TOML ({error}): fix it and restart.") from error
    table = data.get(TABLE, {})
    if not isinstance(table, dict):
        raise ValueError(f"The settings file {file} has '{TABLE}' as a value, not a table: write [{TABLE}] "
                         "above the settings.")
    unknown = sorted(set(table) - set(FIELDS))
    if unknown:
        raise ValueError(f"The settings file {file} has unknown settings in [{TABLE}] ({', '.join(unknown)}): "
                         f"use {', '.join(FIELDS)}.")
    return table


def read_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The operator's settings: the `[explain]` table of the EXPLAIN_SETTINGS file, overridden by environment
    variables; the defaults leave a single user's run as it was (only the size limit is on).

    Args:
        environ: the environment to read (default os.environ).

    Raises:
        ValueError: one sentence naming the setting that cannot be read.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = environ.get(SETTINGS_VARIABLE, "").strip()
    if path:
        for name, value in _file_values(path).items():
            values[name] = _parse(name, FIELDS[name][1], value, path)
    for name, (variable, kind) in FIELDS.items():
        raw = environ.get(variable)
        if raw is not None and raw.strip():
            values[name] = _parse(name, kind, raw, variable)
    if "max_model_mb" in values:
        values["max_model_bytes"] = values.pop("max_model_mb")
    if "model_cache_mb" in values:
        values["model_cache_bytes"] = values.pop("model_cache_mb")
    return Settings(**values)
