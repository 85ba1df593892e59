"""open_image: every common format and mode to RGB, EXIF orientation, and clear refusals."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from explain.images import ImageInputError, open_image


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_formats_give_rgb(fmt):
    image = open_image(encoded(Image.new("RGB", (20, 10), (255, 0, 0)), fmt))
    assert image.mode == "RGB" and image.size == (20, 10)
    red, green, blue = image.getpixel((5, 5))
    assert red > 200 and green < 60 and blue < 60


def test_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert open_image(data).getpixel((0, 0)) == (255, 0, 0)


def test_greyscale_rgba_and_cmyk():
    grey = open_image(encoded(Image.new("L", (4, 4), 100), "PNG"))
    assert grey.mode == "RGB" and grey.getpixel((0, 0)) == (100, 100, 100)
    rgba = Image.new("RGBA", (2, 1), (0, 0, 0, 255))
    rgba.putpixel((1, 0), (0, 0, 0, 0))  # fully transparent black
    out = open_image(encoded(rgba, "PNG"))
    assert out.getpixel((0, 0)) == (0, 0, 0) and out.getpixel((1, 0)) == (255, 255, 255)
    cmyk = open_image(encoded(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG"))
    assert cmyk.mode == "RGB" and min(cmyk.getpixel((4, 4))) > 240  # no ink is white


def test_sixteen_bit_greyscale_is_rescaled(tmp_path):
    values = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    out = np.asarray(open_image(path))
    assert out.shape == (2, 2, 3)
    assert out[..., 0].tolist() == [[0, 64], [128, 255]]  # value / 4000 * 255, rounded


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = open_image(encoded(Image.new("RGB", (40, 20)), "JPEG", exif=exif))
    assert out.size == (20, 40)


def test_refusals(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    cases = [
        (tmp_path / "missing.png", "does not exist"),
        (b"", "is empty"),
        (np.random.default_rng(0).bytes(2048), "not a readable image"),
        (text, "not a readable image"),
    ]
    for source, message in cases:
        with pytest.raises(ImageInputError, match=message) as error:
            open_image(source)
        assert isinstance(error.value, ValueError)
        assert str(error.value).endswith(".")


def test_over_forty_megapixels_is_refused():
    data = encoded(Image.new("1", (8000, 6000)), "PNG")
    assert len(data) < 1_000_000
    with pytest.raises(ImageInputError, match="48 megapixels"):
        open_image(data)


@pytest.mark.parametrize("limit", [300, 150])  # warning (pixels > limit) and error (pixels > 2 * limit)
def test_decompression_bomb_is_refused(monkeypatch, limit):
    data = encoded(Image.new("RGB", (20, 20)), "PNG")  # 400 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(ImageInputError, match="decompression bomb"):
        open_image(data)
