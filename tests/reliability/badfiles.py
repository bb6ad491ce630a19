"""Writers of messy image files: broken, unusual and hostile inputs, each made from scratch."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from tests.fakes import FAST_FIT

FAST = FAST_FIT


def pixels(size: int = 16, seed: int = 0, *, height: int | None = None) -> np.ndarray:
    """Random RGB (height, size, 3) uint8."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height or size, size, 3), dtype=np.uint8)


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png(size: int = 16, seed: int = 0) -> bytes:
    return encode(Image.fromarray(pixels(size, seed)))


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def good_folder(folder: Path, n: int = 4, size: int = 16) -> Path:
    """``n`` readable PNGs in ``folder``."""
    for i in range(n):
        write(folder / f"good{i}.png", png(size, seed=i))
    return folder


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming ``width`` x ``height`` RGB, an empty IDAT and IEND."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def unusual_images() -> dict[str, tuple[str, bytes]]:
    """Readable images in unusual modes: name -> (file name, bytes)."""
    rgb = pixels(16)
    grey = rgb[..., 0]
    palette = Image.fromarray(rgb).quantize(16)
    transparent = palette.copy()
    transparent.info["transparency"] = 0
    cmyk = Image.fromarray(rgb).convert("CMYK")
    return {
        "png16": ("deep.png", encode(Image.fromarray(grey.astype(np.uint16) * 257))),
        "palette": ("palette.png", encode(palette)),
        "palette_transparent": ("palette_t.png", encode(transparent, transparency=0)),
        "rgba": ("rgba.png", encode(Image.fromarray(np.dstack([rgb, grey])))),
        "grey_alpha": ("la.png", encode(Image.fromarray(np.dstack([grey, grey])).convert("LA"))),
        "grey": ("grey.png", encode(Image.fromarray(grey))),
        "one_bit": ("bits.png", encode(Image.fromarray(grey > 128))),
        "cmyk_jpeg": ("cmyk.jpg", encode(cmyk, "JPEG")),
        "one_pixel": ("dot.png", encode(Image.fromarray(pixels(1)))),
        "jpeg_named_png": ("really_a_jpeg.png", encode(Image.fromarray(rgb), "JPEG")),
        "upper_case_suffix": ("SHOUT.PNG", encode(Image.fromarray(rgb))),
        "tiff_float": ("float.tif", encode(Image.fromarray(grey.astype(np.float32) / 255), "TIFF")),
    }


def non_utf8_name(folder: Path, data: bytes) -> Path:
    """A file whose name is not valid UTF-8 (byte 0xff), holding ``data``."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = os.path.join(os.fsencode(folder), b"caf\xe9-\xff.png")
    with open(raw, "wb") as handle:
        handle.write(data)
    return Path(os.fsdecode(raw))
