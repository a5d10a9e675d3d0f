"""Normalisation on read and the per-file facts, each checked on a case with a known answer."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from datatrees import blurred, jpeg_bytes, near_copy, photo
from gir.data.facts import hamming, image_facts, phash, sharpness
from gir.data.imageio import decode_image
from gir.errors import BadImageError


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


@pytest.mark.parametrize("data, message", [
    (b"", "empty file"),
    (b"hello, not a picture\n", "not an image"),
    (jpeg_bytes(photo("coffee"))[:400], "truncated"),
    (_png(Image.new("1", (10_000, 8_000))), "decompression bomb"),  # 80 MP > data.max_pixels
])
def test_unusable_files_are_refused_with_a_reason(data, message):
    with pytest.raises(BadImageError, match=message):
        decode_image(data, "x")
    facts = image_facts(data, "x")
    assert facts["decodable"] is False and message in facts["error"]


def test_pixel_limit_is_a_parameter():
    data = _png(Image.new("RGB", (100, 100)))
    decode_image(data, "x", max_pixels=10_000)
    with pytest.raises(BadImageError, match="exceeds the limit of 9,999"):
        decode_image(data, "x", max_pixels=9_999)


def test_sixteen_bit_grey_scaled_to_eight_bit():
    grey16 = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    rgb, info = decode_image(_png(Image.fromarray(grey16)), "x")
    assert info.bit_depth == 16 and "8-bit" in info.notes[0]
    assert rgb.dtype == np.uint8 and rgb[0, :, 0].tolist() == [0, 128, 255]
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_cmyk_grey_rgba_become_rgb_with_notes():
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    rgb, info = decode_image(_png(cmyk, format="JPEG", quality=100), "x")
    assert info.mode == "CMYK" and "CMYK converted to RGB" in info.notes
    assert rgb[0, 0, 0] > 240 and rgb[0, 0, 1] < 15
    rgb, info = decode_image(_png(Image.new("L", (3, 3), 77)), "x")
    assert (rgb == 77).all() and info.mode == "L"
    rgba = Image.new("RGBA", (2, 2), (0, 0, 0, 0))  # fully transparent black
    rgb, info = decode_image(_png(rgba), "x")
    assert info.has_alpha and (rgb == 255).all() and "composited on white" in info.notes[0]


def test_exif_rotation_applied():
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = 255  # a white band on the left of a landscape image
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    data = _png(Image.fromarray(arr), format="JPEG", quality=100, exif=exif.tobytes())
    rgb, info = decode_image(data, "x")
    assert info.exif_orientation == 6 and rgb.shape == (40, 20, 3)
    assert rgb[:10].mean() > 200 and rgb[-10:].mean() < 50  # the band is now on top


def test_sharpness_known_answer_and_ordering():
    img = np.zeros((9, 9, 3), np.uint8)
    img[4, 4] = 100  # one bright pixel: Laplacian -400 there, +100 at 4 neighbours
    assert sharpness(img) == pytest.approx(20 * 100**2 / 81)
    assert sharpness(np.full((8, 8, 3), 50, np.uint8)) == 0
    sharp = photo("astronaut")
    assert sharpness(blurred(sharp, 1.0)) < sharpness(sharp) / 2
    assert sharpness(blurred(sharp, 3.0)) < sharpness(blurred(sharp, 1.0))


def test_perceptual_hash_tells_near_duplicates_from_other_photos():
    a = photo("astronaut")
    assert hamming(phash(a), phash(a)) == 0
    assert hamming(phash(a), phash(near_copy(a))) <= 4
    recoded, _ = decode_image(jpeg_bytes(a), "x")
    assert hamming(phash(a), phash(recoded)) <= 4
    others = [hamming(phash(a), phash(photo(n))) for n in ("coffee", "chelsea", "rocket")]
    assert min(others) > 16
    assert hamming("", phash(a)) == 64


def test_facts_of_a_good_file():
    facts = image_facts(jpeg_bytes(photo("coffee")), "x")
    assert facts["decodable"] and facts["format"] == "JPEG" and facts["mode"] == "RGB"
    assert (facts["width"], facts["height"], facts["bit_depth"]) == (96, 96, 8)
    assert len(facts["phash"]) == 16 and facts["sharpness"] > 0 and len(facts["sha256"]) == 64
