"""Open user images safely: every common format, EXIF orientation, odd modes converted to RGB, size caps."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000
FORMATS = "PNG, JPEG, WebP, BMP or GIF"


class ImageInputError(ValueError):
    """The file is not an image this tool can read; the message says what to do."""


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any mode to 8-bit RGB: 16-bit and float greyscale rescaled, alpha composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = np.zeros_like(values) if high <= low else (values - low) / (high - low)
        image = Image.fromarray((scaled * 255).round().astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def open_image(source: str | Path | bytes, name: str | None = None) -> Image.Image:
    """Read an image file or bytes into an RGB PIL image.

    GIFs and other animations give their first frame; EXIF orientation is applied; CMYK, palette,
    greyscale, 16-bit and alpha images are converted to RGB.

    Raises:
        ImageInputError: missing, empty, corrupt or non-image file; more than 40 megapixels; a
            decompression bomb.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "the upload")
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageInputError(f"{label} does not exist: give the path of a {FORMATS} image.")
        data = path.read_bytes()
    if not data:
        raise ImageInputError(f"{label} is empty: choose a {FORMATS} image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageInputError(
                    f"{label} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), over the "
                    f"{MAX_PIXELS / 1e6:.0f}-megapixel limit: resize it and try again."
                )
            image.seek(0)
            image.load()
    except ImageInputError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ImageInputError(f"{label} was refused as a decompression bomb: use an ordinary image.") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageInputError(f"{label} is not a readable image (corrupt or another kind of file): choose a {FORMATS} file.") from error
    image = ImageOps.exif_transpose(image) or image
    return _to_rgb(image)


OVERLAY_MIN_SIDE = 512


def overlay_base(original: Image.Image, seen: np.ndarray, processor: object, min_side: int = OVERLAY_MIN_SIDE) -> np.ndarray:
    """The picture to draw a relevance overlay on, at least `min_side` pixels on its short side.

    The original image when the model saw all of it (its processor resizes without cropping), else what
    the model saw (`seen`, after resize and crop); either is scaled up (bicubic) when smaller than
    `min_side`, so a 64 x 64 model input becomes a 512 x 512 picture.

    Args:
        original: the RGB image as opened.
        seen: (H, W, 3) uint8, the model's input (Capture.image).
        processor: the model's image processor (its `do_center_crop` decides).

    Returns:
        (H', W', 3) uint8.
    """
    cropped = bool(getattr(processor, "do_center_crop", False))
    picture = Image.fromarray(seen) if cropped else original.convert("RGB")
    short = min(picture.size)
    if short < min_side:
        scale = min_side / short
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.Resampling.BICUBIC)
    return np.asarray(picture, dtype=np.uint8)
