"""Named colour maps shared by plotly figures and numpy/PIL rendering.

Each map is a tuple of evenly spaced RGB anchors copied literally from
``plotly.colors.sequential`` so a heatmap drawn by plotly and an overlay drawn
by :func:`apply_colormap` use the same colours. Between anchors colours are
interpolated linearly in RGB, which is also what plotly.js does.

This module must not import plotly: the command line renders overlays with
numpy and PIL only.
"""

from __future__ import annotations

import numpy as np

# name -> evenly spaced RGB anchors, copied from plotly.colors.sequential.<Name>
_ANCHORS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "viridis": (  # plotly.colors.sequential.Viridis
        (68, 1, 84), (72, 40, 120), (62, 73, 137), (49, 104, 142), (38, 130, 142),
        (31, 158, 137), (53, 183, 121), (110, 206, 88), (181, 222, 43), (253, 231, 37),
    ),
    "inferno": (  # plotly.colors.sequential.Inferno
        (0, 0, 4), (27, 12, 65), (74, 12, 107), (120, 28, 109), (165, 44, 96), (207, 68, 70),
        (237, 105, 37), (251, 155, 6), (247, 209, 61), (252, 255, 164),
    ),
    "magma": (  # plotly.colors.sequential.Magma
        (0, 0, 4), (24, 15, 61), (68, 15, 118), (114, 31, 129), (158, 47, 127), (205, 64, 113),
        (241, 96, 93), (253, 150, 104), (254, 202, 141), (252, 253, 191),
    ),
    "plasma": (  # plotly.colors.sequential.Plasma
        (13, 8, 135), (70, 3, 159), (114, 1, 168), (156, 23, 158), (189, 55, 134),
        (216, 87, 107), (237, 121, 83), (251, 159, 58), (253, 202, 38), (240, 249, 33),
    ),
    "cividis": (  # plotly.colors.sequential.Cividis
        (0, 34, 78), (18, 53, 112), (59, 73, 108), (87, 93, 109), (112, 113, 115),
        (138, 134, 120), (165, 156, 116), (195, 179, 105), (225, 204, 85), (254, 232, 56),
    ),
    "turbo": (  # plotly.colors.sequential.Turbo
        (48, 18, 59), (65, 69, 171), (70, 117, 237), (57, 162, 252), (27, 207, 212),
        (36, 236, 166), (97, 252, 108), (164, 252, 59), (209, 232, 52), (243, 198, 58),
        (254, 155, 45), (243, 99, 21), (217, 56, 6), (177, 25, 1), (122, 4, 2),
    ),
    "jet": (  # plotly.colors.sequential.Jet (evenly spaced, unlike plotly.js's named "Jet")
        (0, 0, 131), (0, 60, 170), (5, 255, 255), (255, 255, 0), (250, 0, 0), (128, 0, 0),
    ),
    "gray": (  # plotly.colors.sequential.gray
        (0, 0, 0), (16, 16, 16), (38, 38, 38), (59, 59, 59), (81, 80, 80), (102, 101, 101),
        (124, 123, 122), (146, 146, 145), (171, 171, 170), (197, 197, 195), (224, 224, 223),
        (254, 254, 253),
    ),
    "reds": (  # plotly.colors.sequential.Reds
        (255, 245, 240), (254, 224, 210), (252, 187, 161), (252, 146, 114), (251, 106, 74),
        (239, 59, 44), (203, 24, 29), (165, 15, 21), (103, 0, 13),
    ),
    "blues": (  # plotly.colors.sequential.Blues
        (247, 251, 255), (222, 235, 247), (198, 219, 239), (158, 202, 225), (107, 174, 214),
        (66, 146, 198), (33, 113, 181), (8, 81, 156), (8, 48, 107),
    ),
}

COLORMAPS: tuple[str, ...] = tuple(_ANCHORS)

# Signed relevance: blue below zero, white at zero, red above, on a scale symmetric about zero
# (plotly.colors.diverging.RdBu_r).
DIVERGING = "rdbu"
_ANCHORS[DIVERGING] = (
    (5, 48, 97), (33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240), (247, 247, 247),
    (253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43), (103, 0, 31),
)


def symmetric_range(values: np.ndarray) -> tuple[float, float]:
    """(-m, m) with m the largest magnitude of `values` (1 when all are zero): a signed scale centred at zero."""
    largest = float(np.max(np.abs(values))) if np.size(values) else 0.0
    largest = largest if largest > 0 else 1.0
    return -largest, largest


def colormap_anchors(name: str) -> np.ndarray:
    """Anchor colours of a named colour map.

    Args:
        name: one of :data:`COLORMAPS`.

    Returns:
        (K, 3) uint8 array of RGB anchors, evenly spaced over [0, 1].

    Raises:
        ValueError: if ``name`` is not a known colour map.
    """
    if name not in _ANCHORS:
        raise ValueError(
            f"Unknown colour map {name!r}; choose one of: {', '.join(COLORMAPS)}."
        )
    return np.array(_ANCHORS[name], dtype=np.uint8)


def plotly_colorscale(name: str) -> list[list[float | str]]:
    """Plotly ``colorscale`` for a named colour map, e.g. ``[[0.0, "rgb(68,1,84)"], ...]``.

    Raises:
        ValueError: if ``name`` is not a known colour map.
    """
    anchors = colormap_anchors(name)
    positions = np.linspace(0.0, 1.0, len(anchors))
    return [
        [float(p), f"rgb({r},{g},{b})"] for p, (r, g, b) in zip(positions, anchors.tolist())
    ]


def apply_colormap(values: np.ndarray, name: str) -> np.ndarray:
    """Map values in [0, 1] to RGB colours by linear interpolation between anchors.

    Values are clipped to [0, 1] (like matplotlib and plotly do beyond cmin/cmax).

    Args:
        values: array of any shape with values in [0, 1].
        name: one of :data:`COLORMAPS`.

    Returns:
        uint8 array of shape ``values.shape + (3,)``.

    Raises:
        ValueError: for an unknown colour map or non-finite values.
    """
    anchors = colormap_anchors(name).astype(np.float64)  # (K, 3)
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(
            "apply_colormap got NaN or infinite values; clean them (e.g. np.nan_to_num) "
            "before colouring."
        )
    flat = np.clip(values, 0.0, 1.0).ravel()
    positions = np.linspace(0.0, 1.0, len(anchors))
    rgb = np.stack([np.interp(flat, positions, anchors[:, c]) for c in range(3)], axis=-1)
    return np.rint(rgb).astype(np.uint8).reshape(values.shape + (3,))
