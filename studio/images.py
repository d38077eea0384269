"""Turn an uploaded file into a clean RGB photo, or refuse it with a sentence a creator understands."""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageFile

from studio.errors import ImageError

MAX_PIXELS = 50_000_000  # decompression-bomb cap, checked from the header before decoding
MIN_SIDE = 64  # shorter than this on the short side: refused
SMALL_SIDE = 256  # shorter than this (but >= MIN_SIDE): accepted with a warning
# A 21:9 video frame is 2.3:1, so past 4:1 most of a panorama falls outside any clip; that is
# still a fine photo for a pan, so we only warn. Past 16:1 a frame would show under a seventh of
# the picture (or a thin letterboxed strip): such files are banners and dividers, so we refuse.
WIDE_ASPECT = 4.0
MAX_ASPECT = 16.0
# Reading the bytes happens before any header check, so cap the file itself: a 50 MP photo,
# even as an uncompressed 16-bit TIFF, fits well under this.
MAX_FILE_BYTES = 512 * 1024 * 1024
# Transparent pixels are shown over a light neutral grey, not black, so a cut-out product keeps
# its dark edges readable and the clip looks like a studio backdrop rather than a hole.
BACKDROP = (236, 236, 236)

SUPPORTED = "JPEG, PNG, WebP, BMP, TIFF, GIF"
NOT_A_PHOTO = f"This file is not a photo we can read (supported: {SUPPORTED})."
DAMAGED = (
    "This {kind} file looks damaged or incomplete (perhaps the upload was cut off); "
    "please export it again and re-upload it."
)

# Only these Pillow plugins may open an upload: Pillow also reads EPS (runs Ghostscript), PSD,
# ICO, FITS and more, which are not photos a creator means to animate. MPO (the multi-picture
# JPEG that many cameras write) is opened by the JPEG plugin.
_PILLOW_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
_FORMAT_NAMES = {"MPO": "JPEG", "DIB": "BMP"}

_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}

# What Pillow raises from inside a plugin on a damaged or hostile file. Kept to the calls into
# Pillow so that a bug in our own code still surfaces as a traceback.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
)


@dataclass(frozen=True, eq=False)  # eq=False: comparing ndarrays with == has no single truth
class Photo:
    """A decoded upload: pixels only (no metadata is kept, for privacy) plus what we noticed."""

    rgb: np.ndarray  # HxWx3 uint8, C-contiguous, EXIF orientation applied
    sha256: str  # hash of the original file bytes (for manifests and reproducibility)
    source_format: str  # "JPEG", "PNG", "WEBP", "BMP", "TIFF" or "GIF"
    original_size: tuple[int, int]  # (width, height) after orientation, before any max_side
    warnings: tuple[str, ...]  # human sentences, e.g. "This photo is small (120x90); ..."


def load_photo(
    source: str | os.PathLike[str] | bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    max_side: int | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> Photo:
    """Read a path or raw bytes into a Photo, or raise ImageError with a sentence to show.

    max_pixels is checked from the header before any pixel is decoded; it cannot go above
    Pillow's process-wide bomb limit (Image.MAX_IMAGE_PIXELS). At most max_bytes of the file
    are read. max_side, when given, shrinks
    the photo so its long side is at most that many pixels, decoding JPEGs at reduced size.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
    data = _read_source(source, max_bytes)
    sha256 = hashlib.sha256(data).hexdigest()
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    with _open(data, limit) as im:
        source_format = _FORMAT_NAMES.get(im.format or "", im.format or "")
        width, height = im.size
        _check_size(width, height, limit)
        orientation = _orientation(im)
        target = _target_size(im.size, max_side)
        if target is not None:
            # Lets libjpeg decode at 1/2, 1/4 or 1/8 scale: most of the win for big JPEGs.
            im.draft("RGB", target)
        _decode(im, limit)
        working, transparent = _to_rgb(im, target)
        # Copy the pixels out while the file is open: _to_rgb may hand back the opened image.
        rgb = np.array(_apply_orientation(working, orientation), dtype=np.uint8, order="C")
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return Photo(
        rgb=rgb,
        sha256=sha256,
        source_format=source_format,
        original_size=(width, height),
        warnings=_warnings(width, height, transparent),
    )


def _read_source(source: str | os.PathLike[str] | bytes, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Return the file's bytes, refusing missing, unreadable, empty and oversized files.

    Only regular files are read, and never more than max_bytes + 1 bytes, whatever the file
    system claims: a device such as /dev/zero reports a size of 0 and never ends.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        path = Path(source)
        name = path.name or str(path)
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore it.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise ImageError(f"We can't find the file “{name}”.") from None
        except IsADirectoryError:
            raise ImageError(
                f"“{name}” is a folder, not a photo; please choose an image file."
            ) from None
        except PermissionError:
            raise ImageError(
                f"We aren't allowed to read “{name}”; check its permissions."
            ) from None
        except OSError as error:
            raise ImageError(f"We couldn't read “{name}” ({error.strerror or error}).") from None
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise ImageError(f"“{name}” is a folder, not a photo; please choose an image file.")
            if not stat.S_ISREG(info.st_mode):
                raise ImageError(f"“{name}” is not a regular file; please choose an image file.")
            if info.st_size > max_bytes:
                raise ImageError(_too_heavy(info.st_size, max_bytes))
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(max_bytes + 1)
        except OSError as error:
            raise ImageError(f"We couldn't read “{name}” ({error.strerror or error}).") from None
        finally:
            os.close(fd)
    if not data:
        raise ImageError("This file is empty (0 bytes); please choose the photo again.")
    if len(data) > max_bytes:
        raise ImageError(_too_heavy(len(data), max_bytes))
    return data


def _open(data: bytes, limit: int) -> Image.Image:
    """Open lazily (header only), turning every refusal of Pillow's into an ImageError."""
    try:
        return Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
    except Image.DecompressionBombError as error:
        raise ImageError(_too_big(_header_size(data), _bomb_pixels(error), limit)) from None
    except Image.UnidentifiedImageError:
        kind = _sniff_kind(data)
        if kind is None:
            raise ImageError(NOT_A_PHOTO) from None
        size = _header_size(data)
        if size is not None and 0 in size:
            raise ImageError(_no_pixels(*size)) from None
        raise ImageError(DAMAGED.format(kind=kind)) from None
    except _DECODE_ERRORS:
        raise ImageError(DAMAGED.format(kind=_sniff_kind(data) or "image")) from None


def _check_size(width: int, height: int, limit: int) -> None:
    """Refuse from the header alone: nothing to show, a bomb, a thumbnail or a sliver."""
    if width <= 0 or height <= 0:
        raise ImageError(_no_pixels(width, height))
    if width * height > limit:
        raise ImageError(_too_big((width, height), width * height, limit))
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"This photo is too small ({width}x{height}); please use one at least "
            f"{MIN_SIDE} pixels on its short side."
        )
    ratio = max(width, height) / min(width, height)
    if ratio > MAX_ASPECT:
        raise ImageError(
            f"This image is too long and thin ({width}x{height}, about {ratio:.0f}:1) to frame "
            f"as a video; please crop it to at most {MAX_ASPECT:.0f}:1."
        )


def _decode(im: ImageFile.ImageFile, limit: int) -> None:
    """Decode the pixels, refusing truncated or corrupt data instead of keeping a partial image."""
    # ImageFile.LOAD_TRUNCATED_IMAGES is left at False on purpose: with it on, a cut-off
    # upload would decode to a half-grey photo and be animated without complaint.
    try:
        im.seek(0)  # the first frame of an animated GIF, PNG or WebP
        im.load()
    except Image.DecompressionBombError as error:
        raise ImageError(_too_big(None, _bomb_pixels(error), limit)) from None
    except MemoryError:
        raise ImageError("This photo is too large to open here; please resize it.") from None
    except _DECODE_ERRORS:
        raise ImageError(DAMAGED.format(kind=_FORMAT_NAMES.get(im.format, im.format))) from None


def _orientation(im: Image.Image) -> int:
    """The EXIF (or XMP) orientation, 1..8; a broken EXIF block just means 'as stored'."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _apply_orientation(im: Image.Image, orientation: int) -> Image.Image:
    """Rotate/flip as ImageOps.exif_transpose would, on pixels that no longer carry EXIF."""
    for method in _TRANSPOSE.get(orientation, ()):
        im = im.transpose(method)
    return im


def _target_size(size: tuple[int, int], max_side: int | None) -> tuple[int, int] | None:
    """The size that fits max_side on the long side, or None when no shrinking is needed."""
    if max_side is None:
        return None
    width, height = size
    scale = max_side / max(width, height)
    if scale >= 1:
        return None
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_rgb(im: Image.Image, target: tuple[int, int] | None) -> tuple[Image.Image, bool]:
    """Bring any decoded mode to 8-bit sRGB over the backdrop; also say if it had transparency."""
    icc = im.info.get("icc_profile")
    im = _to_eight_bit(im)
    if target is not None and im.size != target:
        # reducing_gap lets Pillow box-reduce first, then finish with LANCZOS: fast and sharp.
        im = im.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    im = _to_srgb(im, icc)
    if im.mode != "RGBA":
        return im, False
    alpha = im.getchannel("A")
    if alpha.getextrema()[0] == 255:
        return im.convert("RGB"), False
    backdrop = Image.new("RGB", im.size, BACKDROP)
    backdrop.paste(im.convert("RGB"), mask=alpha)
    return backdrop, True


def _to_eight_bit(im: Image.Image) -> Image.Image:
    """Reduce Pillow's many modes to one of L, RGB, RGBA or CMYK (colour still as stored)."""
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        return _scale_to_l(im)
    if "transparency" in im.info and mode in ("L", "P", "RGB"):
        return im.convert("RGBA")  # a palette or colour-key transparency becomes real alpha
    if mode == "P" and im.palette is not None and im.palette.mode == "RGBA":
        return im.convert("RGBA")
    if mode in ("L", "RGB", "RGBA", "CMYK"):
        return im
    if mode in ("LA", "La", "PA", "RGBa"):
        return im.convert("RGBA")  # also un-premultiplies La/RGBa
    try:
        if mode == "LAB":  # Pillow's convert would read L, a, b as if they were R, G, B
            return ImageCms.profileToProfile(
                im, ImageCms.createProfile("LAB"), _srgb_profile(), outputMode="RGB"
            )
        return im.convert("RGB")  # YCbCr, RGBX, HSV...
    except (ValueError, ImageCms.PyCMSError):
        raise ImageError(
            f"This photo uses a colour format we can't convert ({mode}); please save it as an "
            "ordinary RGB JPEG or PNG."
        ) from None


def _scale_to_l(im: Image.Image) -> Image.Image:
    """Map 16/32-bit and float greyscale to 8 bits by the range the data really uses."""
    values = np.asarray(im)
    if values.dtype.kind == "f":
        values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = float(values.min()), float(values.max())
        if low >= 0.0 and high <= 1.0:
            low, high = 0.0, 1.0  # already normalised: keep its tones as they are
    else:
        low, high = int(values.min()), int(values.max())
        low = min(low, 0)
        # A 12-bit scan stored in 16 bits tops out at 4095; scaling by 65535 would make it near
        # black, while stretching to the brightest pixel would brighten a dark photo. Scaling by
        # the smallest usual sensor/container depth that holds the data keeps both right.
        if low == 0:
            high = next((2**bits - 1 for bits in (8, 10, 12, 14, 16) if high < 2**bits), high)
    span = max(high - low, 1e-12)
    scaled = (values.astype(np.float32) - low) * (255.0 / span)
    return Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8), mode="L")


@lru_cache(maxsize=1)
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert through the embedded ICC profile when there is one; else Pillow's plain convert."""
    out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if im.mode in ("RGB", "RGBA") and "sRGB" in ImageCms.getProfileDescription(source):
                return im  # already sRGB: a transform would be a slow no-op
            return ImageCms.profileToProfile(im, source, _srgb_profile(), outputMode=out_mode)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken or mismatched profile: the stored values are the best guess
    return im if im.mode == out_mode else im.convert(out_mode)


def _warnings(width: int, height: int, transparent: bool) -> tuple[str, ...]:
    notes = []
    if min(width, height) < SMALL_SIDE:
        notes.append(f"This photo is small ({width}x{height}); clips will look soft.")
    if max(width, height) / min(width, height) > WIDE_ASPECT:
        notes.append(
            f"This photo is very wide ({width}x{height}); each clip will show only part of it."
        )
    if transparent:
        notes.append("This photo has a transparent background; we placed it on light grey.")
    return tuple(notes)


def _sniff_kind(data: bytes) -> str | None:
    """Name a supported format from its magic bytes, to tell 'damaged' from 'not a photo'."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height declared by a PNG, GIF or BMP header, whose layouts are fixed."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data.startswith(b"BM"):
            width, height = struct.unpack("<ii", data[18:26])
            return width, abs(height)  # a negative height means rows are stored top-down
    except struct.error:
        return None
    return None


def _bomb_pixels(error: Exception) -> int | None:
    match = re.search(r"\((\d+) pixels\)", str(error))
    return int(match.group(1)) if match else None


def _megapixels(pixels: int) -> str:
    mp = pixels / 1_000_000
    return f"{mp:.0f}" if mp >= 10 else f"{mp:.1f}"


def _too_big(size: tuple[int, int] | None, pixels: int | None, limit: int) -> str:
    if size is not None:
        shown = f"{size[0]}x{size[1]} ({_megapixels(size[0] * size[1])} MP)"
    elif pixels is not None:
        shown = f"{_megapixels(pixels)} MP"
    else:
        shown = "too large"
    return f"This photo is {shown}, over the {_megapixels(limit)} MP limit; please resize it."


def _too_heavy(size: int, limit: int = MAX_FILE_BYTES) -> str:
    over = "over" if size > limit + 1 else "more than"  # a capped read only knows "more"
    return (
        f"This file is {over} the {limit // 2**20} MB limit"
        + (f" ({size // 2**20} MB)" if size > limit + 1 else "")
        + "; please choose a smaller photo."
    )


def _no_pixels(width: int, height: int) -> str:
    return f"This image is {width}x{height} pixels, so there is nothing to animate; please export it again."
