"""Tests for studio.images: every upload either becomes a clean RGB photo or a clear refusal."""

from __future__ import annotations

import hashlib
import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile

from studio.errors import ImageError
from studio.images import BACKDROP, MAX_PIXELS, NOT_A_PHOTO, Photo, load_photo

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
RED, GREEN, BLUE = (220, 30, 30), (30, 200, 40), (20, 40, 210)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height but carries almost no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def noisy_photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Noise compresses badly, so cutting the file in half really removes pixel data."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def assert_refused(source, *phrases: str, **kwargs) -> str:
    with pytest.raises(ImageError) as caught:
        load_photo(source, **kwargs)
    sentence = str(caught.value)
    for phrase in phrases:
        assert phrase in sentence, sentence
    return sentence


def close(pixel, expected, tolerance: int = 12) -> bool:
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel, expected, strict=True))


# --- every supported format ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("JPEG", "JPEG"),
        ("PNG", "PNG"),
        ("WEBP", "WEBP"),
        ("BMP", "BMP"),
        ("TIFF", "TIFF"),
        ("GIF", "GIF"),
    ],
)
def test_each_supported_format_loads_as_clean_rgb(fmt, name):
    data = encode(Image.new("RGB", (96, 80), BLUE), fmt)
    photo = load_photo(data)
    assert isinstance(photo, Photo)
    assert photo.source_format == name
    assert photo.rgb.shape == (80, 96, 3)
    assert photo.rgb.dtype == np.uint8
    assert photo.rgb.flags["C_CONTIGUOUS"]
    assert close(photo.rgb[40, 48], BLUE, tolerance=24)  # GIF quantises, JPEG/WebP are lossy
    assert photo.original_size == (96, 80)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.*g")), ids=lambda p: p.name)
def test_example_photos_load_without_warnings(path):
    photo = load_photo(path)
    with Image.open(path) as reference:
        assert photo.original_size == reference.size
    assert photo.rgb.shape == (reference.size[1], reference.size[0], 3)
    assert photo.warnings == ()


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animation_gives_its_first_frame(fmt):
    frames = [Image.new("RGB", (80, 80), color) for color in (RED, GREEN, BLUE)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(io.BytesIO(data)) as check:
        assert getattr(check, "n_frames", 1) == 3  # the file really is animated
    photo = load_photo(data)
    assert close(photo.rgb[40, 40], RED, tolerance=24)


# --- EXIF orientation ---------------------------------------------------------------------

# Where the stored top-left (red) and top-right (green) corners must be seen, by EXIF rule.
ORIENTATIONS = {
    1: ("top-left", "top-right", False),
    2: ("top-right", "top-left", False),
    3: ("bottom-right", "bottom-left", False),
    4: ("bottom-left", "bottom-right", False),
    5: ("top-left", "bottom-left", True),
    6: ("top-right", "bottom-right", True),
    7: ("bottom-right", "top-right", True),
    8: ("bottom-left", "top-left", True),
}


def corner(rgb: np.ndarray, where: str) -> np.ndarray:
    height, width = rgb.shape[:2]
    row = 8 if where.startswith("top") else height - 9
    col = 8 if where.endswith("left") else width - 9
    return rgb[row, col]


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation_puts_corners_where_the_camera_saw_them(orientation):
    stored = Image.new("RGB", (150, 100), (128, 128, 128))
    stored.paste(RED, (0, 0, 30, 30))
    stored.paste(GREEN, (120, 0, 150, 30))
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = load_photo(encode(stored, "JPEG", quality=95, exif=exif))

    red_at, green_at, swapped = ORIENTATIONS[orientation]
    expected = (100, 150) if swapped else (150, 100)
    assert photo.original_size == expected
    assert photo.rgb.shape[:2] == (expected[1], expected[0])
    assert close(corner(photo.rgb, red_at), RED)
    assert close(corner(photo.rgb, green_at), GREEN)


def test_orientation_and_max_side_combine(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(noisy_photo(1200, 900), "JPEG", exif=exif)
    photo = load_photo(data, max_side=400)
    assert photo.original_size == (900, 1200)
    assert photo.rgb.shape == (400, 300, 3)


# --- colour modes ------------------------------------------------------------------------


def test_cmyk_jpeg_becomes_the_right_rgb_colour():
    photo = load_photo(encode(Image.new("CMYK", (80, 80), (255, 0, 0, 0)), "JPEG"))
    assert close(photo.rgb[40, 40], (0, 255, 255))


def test_twelve_bit_greyscale_in_sixteen_bit_png_uses_full_range():
    ramp = np.tile(np.linspace(0, 4095, 256).astype(np.uint16), (64, 1))
    data = encode(Image.fromarray(ramp), "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode.startswith("I")  # really a 16-bit file
    photo = load_photo(data)
    assert photo.rgb.min() <= 2
    assert photo.rgb.max() >= 253  # not near-black (/65535) and not clipped to white
    assert 100 < photo.rgb.mean() < 155
    assert (photo.rgb[..., 0] == photo.rgb[..., 2]).all()


def test_dark_sixteen_bit_photo_stays_dark():
    # Brightest pixel 20000 of 65535: a dim exposure, which must not be stretched to white.
    ramp = np.tile(np.linspace(0, 20000, 256).astype(np.uint16), (64, 1))
    photo = load_photo(encode(Image.fromarray(ramp), "PNG"))
    assert 70 <= photo.rgb.max() <= 85


def test_big_endian_sixteen_bit_tiff_uses_full_range():
    ramp = np.tile(np.linspace(0, 65535, 256).astype(">u2"), (64, 1))
    image = Image.frombytes("I;16B", (256, 64), ramp.tobytes())
    photo = load_photo(encode(image, "TIFF"))
    assert photo.rgb.min() == 0
    assert photo.rgb.max() == 255


def test_cmyk_tiff_becomes_the_right_rgb_colour():
    photo = load_photo(encode(Image.new("CMYK", (80, 80), (0, 255, 0, 0)), "TIFF"))
    assert close(photo.rgb[40, 40], (255, 0, 255))


def test_lab_tiff_is_converted_colorimetrically():
    # Pillow stores a and b offset by 128, so (128, 128, 128) is a neutral mid grey.
    photo = load_photo(encode(Image.new("LAB", (80, 80), (128, 128, 128)), "TIFF"))
    red, green, blue = (int(v) for v in photo.rgb[40, 40])
    assert max(red, green, blue) - min(red, green, blue) <= 2
    assert 100 <= red <= 140


def test_float_tiff_is_stretched_to_visible_range():
    values = np.tile(np.linspace(-3.0, 1000.0, 128, dtype=np.float32), (64, 1))
    photo = load_photo(encode(Image.fromarray(values, mode="F"), "TIFF"))
    assert photo.rgb.min() == 0
    assert photo.rgb.max() == 255


def test_palette_png_with_transparency_keeps_subject_on_backdrop():
    image = Image.new("P", (80, 80), 0)
    image.putpalette([0, 0, 0, *RED] + [0, 0, 0] * 254)
    image.paste(1, (20, 20, 60, 60))
    photo = load_photo(encode(image, "PNG", transparency=0))
    assert tuple(photo.rgb[2, 2]) == BACKDROP
    assert tuple(photo.rgb[40, 40]) == RED
    assert any("transparent" in note for note in photo.warnings)


def test_transparent_product_shot_sits_on_light_grey_not_black():
    product = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    product.paste((*BLUE, 255), (30, 30, 90, 90))
    product.paste((*RED, 128), (0, 100, 20, 120))  # a soft shadow: half-transparent
    photo = load_photo(encode(product, "PNG"))
    assert tuple(photo.rgb[5, 5]) == BACKDROP
    assert tuple(photo.rgb[60, 60]) == BLUE
    half = [round((c + b) / 2) for c, b in zip(RED, BACKDROP, strict=True)]
    assert close(photo.rgb[110, 10], half, tolerance=2)
    assert "This photo has a transparent background; we placed it on light grey." in photo.warnings


def test_opaque_alpha_channel_gives_no_transparency_warning():
    photo = load_photo(encode(Image.new("RGBA", (300, 300), (*GREEN, 255)), "PNG"))
    assert tuple(photo.rgb[0, 0]) == GREEN
    assert photo.warnings == ()


@pytest.mark.parametrize("mode", ["L", "LA", "1"])
def test_greyscale_modes_become_grey_rgb(mode):
    image = Image.new("L", (80, 80), 0)
    image.paste(255, (0, 0, 40, 80))
    photo = load_photo(encode(image.convert(mode), "PNG"))
    assert (photo.rgb[..., 0] == photo.rgb[..., 1]).all()
    assert tuple(photo.rgb[40, 10]) == (255, 255, 255)
    assert tuple(photo.rgb[40, 70]) == (0, 0, 0)


def test_embedded_srgb_profile_and_broken_profile_both_load():
    image = Image.new("RGB", (80, 80), RED)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    good = load_photo(encode(image, "PNG", icc_profile=srgb))
    broken = load_photo(encode(image, "PNG", icc_profile=b"not a profile at all"))
    assert tuple(good.rgb[40, 40]) == RED
    assert tuple(broken.rgb[40, 40]) == RED


def test_srgb_profile_on_greyscale_falls_back_to_plain_grey():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = load_photo(encode(Image.new("L", (80, 80), 100), "PNG", icc_profile=srgb))
    assert tuple(photo.rgb[40, 40]) == (100, 100, 100)


# --- identity and reproducibility ---------------------------------------------------------


def test_bytes_and_path_give_the_same_photo_and_the_file_hash(tmp_path):
    data = encode(noisy_photo(320, 240), "JPEG")
    path = write(tmp_path, "photo.jpg", data)
    from_path = load_photo(path)
    from_str = load_photo(str(path))
    from_bytes = load_photo(data)
    assert np.array_equal(from_path.rgb, from_bytes.rgb)
    assert np.array_equal(from_str.rgb, from_bytes.rgb)
    assert from_path.sha256 == from_bytes.sha256 == hashlib.sha256(data).hexdigest()


def test_bytearray_and_memoryview_are_read_like_bytes():
    data = encode(noisy_photo(100, 80), "PNG")
    expected = load_photo(data).rgb
    assert np.array_equal(load_photo(bytearray(data)).rgb, expected)
    assert np.array_equal(load_photo(memoryview(data)).rgb, expected)


def test_out_of_range_orientation_is_ignored():
    exif = Image.Exif()
    exif[0x0112] = 9
    photo = load_photo(encode(Image.new("RGB", (300, 100), RED), "JPEG", exif=exif))
    assert photo.original_size == (300, 100)


def test_max_side_shrinks_long_side_but_reports_original_size():
    photo = load_photo(encode(noisy_photo(1200, 900), "JPEG"), max_side=400)
    assert photo.rgb.shape == (300, 400, 3)
    assert photo.original_size == (1200, 900)
    assert photo.rgb.flags["C_CONTIGUOUS"]


def test_max_side_larger_than_photo_leaves_it_alone():
    photo = load_photo(encode(noisy_photo(300, 200), "PNG"), max_side=4000)
    assert photo.rgb.shape == (200, 300, 3)


# --- size checks ----------------------------------------------------------------------------


def test_tiny_photo_is_refused_as_too_small():
    assert_refused(encode(Image.new("RGB", (10, 10), RED), "PNG"), "too small", "10x10")


def test_small_photo_is_accepted_with_a_warning():
    photo = load_photo(encode(Image.new("RGB", (120, 90), RED), "PNG"))
    assert photo.rgb.shape == (90, 120, 3)
    assert photo.warnings == ("This photo is small (120x90); clips will look soft.",)


def test_sliver_is_refused_as_too_long_and_thin():
    assert_refused(encode(Image.new("RGB", (2000, 100), RED), "PNG"), "too long and thin")


def test_panorama_is_accepted_with_a_warning():
    photo = load_photo(encode(Image.new("RGB", (1800, 300), RED), "PNG"))
    assert any("very wide" in note for note in photo.warnings)


def test_zero_size_png_is_refused_as_having_no_pixels():
    assert_refused(png_with_header(0, 0), "0x0", "nothing to animate")


def test_zero_width_bmp_is_refused_as_having_no_pixels():
    data = bytearray(encode(Image.new("RGB", (4, 4)), "BMP"))
    struct.pack_into("<ii", data, 18, 0, 4)
    assert_refused(bytes(data), "0x4", "nothing to animate")


# --- decompression bombs --------------------------------------------------------------------


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any pixel data is decoded."""

    def forbidden(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", forbidden)


def test_bomb_header_is_refused_before_decoding(no_decoding):
    started = time.perf_counter()
    assert_refused(png_with_header(30000, 30000), "30000x30000", "900 MP", "50 MP limit")
    assert time.perf_counter() - started < 0.5


def test_photo_over_our_limit_but_under_pillows_is_refused_from_header(no_decoding):
    assert_refused(png_with_header(8000, 8000), "8000x8000 (64 MP)", "50 MP limit", "resize")


def test_max_pixels_cannot_lift_the_cap_past_pillows_bomb_limit(no_decoding):
    with pytest.warns(Image.DecompressionBombWarning):
        assert_refused(png_with_header(10000, 10000), "100 MP", "limit", max_pixels=10**9)


def test_custom_max_pixels_refuses_a_real_photo():
    data = encode(Image.new("RGB", (400, 300), RED), "PNG")
    assert_refused(data, "400x300 (0.1 MP)", "limit", max_pixels=100_000)
    assert MAX_PIXELS == 50_000_000


# --- files that are not usable photos -------------------------------------------------------


def test_zero_byte_file_is_refused_as_empty(tmp_path):
    assert_refused(write(tmp_path, "empty.jpg", b""), "empty")


def test_truncated_jpeg_is_refused_with_clear_error():
    data = encode(noisy_photo(256, 256), "JPEG")
    assert_refused(data[: len(data) // 2], "JPEG", "damaged or incomplete")


def test_truncated_png_is_refused_with_clear_error():
    data = encode(noisy_photo(256, 256), "PNG")
    assert_refused(data[: len(data) // 2], "PNG", "damaged or incomplete")


def test_png_cut_inside_its_header_is_refused_as_damaged():
    assert_refused(encode(noisy_photo(256, 256), "PNG")[:20], "PNG", "damaged")


def test_truncated_files_stay_refused_after_loading_the_module():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        b"Dear diary, today I uploaded a text file.\n" * 20,
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n",
        b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 200,
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"></svg>',
    ],
    ids=["random-bytes", "text", "pdf", "mp4", "svg"],
)
def test_non_image_bytes_are_refused_as_not_a_photo(data):
    assert assert_refused(data) == NOT_A_PHOTO


def test_format_pillow_reads_but_we_do_not_support_is_refused():
    data = encode(Image.new("RGB", (80, 80), RED), "ICO")
    assert assert_refused(data) == NOT_A_PHOTO


def test_text_file_on_disk_is_refused_as_not_a_photo(tmp_path):
    path = write(tmp_path, "notes.jpg", b"just some notes, renamed to .jpg\n")
    assert_refused(path, "not a photo", "JPEG, PNG, WebP, BMP, TIFF, GIF")


def test_missing_path_is_refused_naming_the_file(tmp_path):
    assert_refused(tmp_path / "holiday.jpg", "can't find", "holiday.jpg")


def test_directory_path_is_refused_as_a_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    assert_refused(folder, "folder", "photos")
