"""Decoding image and mask files and resizing them to the model's input size.

Images become RGB uint8 (grey is repeated to three channels, transparency is composed on black,
16-bit grey is scaled to 8 bits) and are resized with antialiased bilinear interpolation; masks are
binarised, resized with nearest-neighbour sampling at pixel centres and binarised again, so a mask
stays aligned with its image and keeps values in {0, 1}.

Files are untrusted input: any failure of the decoder (Pillow raises many exception types on
malformed data) becomes one :class:`~piade.errors.DataError` naming the file, and images above
Pillow's decompression-bomb limit are refused before their pixels are allocated.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from piade.errors import DataError

if TYPE_CHECKING:
    import torch

RESIZE_METHOD = "torch-bilinear-antialias/nearest-exact"  # part of the disk cache key
_FIX = (
    "replace or delete the file, or leave such files out with --on-error skip "
    "(on_error='skip' in Python)"
)


def read_rgb(path: str) -> np.ndarray:
    """Decode an image file to RGB uint8 (H, W, 3); DataError naming the file if it cannot.

    Images beyond Pillow's decompression-bomb limit (about 89 megapixels) are refused too.
    """
    try:
        with _open(path) as image:
            image.load()
            return _to_rgb(image)
    except Exception as error:  # any decoder failure on untrusted bytes (see the module doc)
        raise DataError(f"cannot read image {path}: {_reason(error, path)}; {_FIX}") from error


def decode_rgb(
    data: bytes,
    name: str,
    *,
    max_pixels: int | None = None,
    formats: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Decode image bytes (an upload, say) to RGB uint8 (H, W, 3), as :func:`read_rgb` does a file.

    Raises DataError naming ``name`` and the reason (empty, not an image, truncated, above
    ``max_pixels`` or Pillow's decompression-bomb limit, whichever is lower, or not one of
    Pillow's ``formats`` when given) without the advice about files; nothing is written anywhere.
    """
    if not data:
        raise DataError(f"{name}: empty (0 bytes); send the image file's bytes")
    try:
        with _open(io.BytesIO(data), max_pixels, formats) as image:
            image.load()
            return _to_rgb(image)
    except Exception as error:  # any decoder failure on untrusted bytes (see the module doc)
        raise DataError(f"{name}: {_reason(error, '')}") from error


def _open(
    path: str | io.BytesIO, max_pixels: int | None = None, formats: tuple[str, ...] | None = None
) -> Image.Image:
    """``Image.open`` that refuses images above Pillow's pixel limit (about 89 megapixels).

    Pillow itself only warns between one and two times its limit; the check is done here rather
    than by turning that warning into an error, because warning filters are process-wide and
    files are decoded in several threads at once.
    """
    image = Image.open(path, formats=formats)
    limits = [n for n in (Image.MAX_IMAGE_PIXELS, max_pixels) if n is not None]
    limit, pixels = min(limits, default=None), image.width * image.height
    if limit is not None and pixels > limit:
        image.close()
        raise Image.DecompressionBombError(
            f"Image size ({image.width}x{image.height} = {pixels} pixels) exceeds the limit of "
            f"{limit} pixels, could be a decompression bomb"
        )
    return image


def _reason(error: Exception, path: str) -> str:
    """What went wrong, in words: the error's message, or its type when it has none."""
    if isinstance(error, UnidentifiedImageError):
        empty = bool(path) and os.path.isfile(path) and os.path.getsize(path) == 0
        return "the file is empty (0 bytes)" if empty else "not an image file Pillow can identify"
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        text = str(error).strip().rstrip(".")
        return f"{text}; images this large are refused (resize or tile it first)"
    if isinstance(error, MemoryError):
        return "not enough memory to decode it"
    if isinstance(error, OSError) and (error.strerror or str(error).strip()):
        return error.strerror or str(error).strip()  # e.g. "image file is truncated"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else f"malformed file ({type(error).__name__})"


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: scale to 8 bits
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = (values / top * 255).round().clip(0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", image.size, (0, 0, 0, 255)), image)
    return np.array(image.convert("RGB"), dtype=np.uint8)


def read_mask(path: str) -> np.ndarray:
    """Decode a mask file to bool (H, W): values > 0 for 0/1 masks, >= 128 for 0/255 masks."""
    try:
        with _open(path) as image:
            image.load()
            grey = np.array(image if image.mode in ("1", "L") else image.convert("L"))
    except Exception as error:
        raise DataError(f"cannot read mask {path}: {_reason(error, path)}; {_FIX}") from error
    if grey.dtype == np.bool_ or grey.max(initial=0) <= 1:
        return grey > 0
    return grey >= 128


def stored_size(path: str, what: str = "image") -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    try:
        with _open(path) as image:
            return image.size
    except Exception as error:
        raise DataError(f"cannot read {what} {path}: {_reason(error, path)}; {_FIX}") from error


def check_mask_size(image_path: str, mask_path: str) -> None:
    """DataError when the mask and its image differ in size (they would not stay aligned)."""
    image_size, mask_size = stored_size(image_path), stored_size(mask_path, "mask")
    if image_size != mask_size:
        raise DataError(
            f"mask {mask_path} is {mask_size[0]}x{mask_size[1]} px but its image {image_path} is "
            f"{image_size[0]}x{image_size[1]} px; a mask must have its image's size. Replace the "
            "mask (or resize it with nearest-neighbour sampling), or leave the image out with "
            "--on-error skip"
        )


def center_box(height: int, width: int, crop: float) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the central ``crop`` share of each side of an image.

    The margins are rounded to whole pixels and equal on opposite sides; at least one pixel is kept.
    """
    top = min(round(height * (1 - crop) / 2), (height - 1) // 2)
    left = min(round(width * (1 - crop) / 2), (width - 1) // 2)
    return top, left, height - top, width - left


def place_in_box(
    inner: np.ndarray, height: int, width: int, box: tuple[int, int, int, int]
) -> np.ndarray:
    """A (height, width) map holding ``inner`` at ``box`` (from :func:`center_box`) and zeros
    around it: an anomaly map of a centrally cropped image, laid on the whole image."""
    top, left, bottom, right = box
    if (top, left, bottom, right) == (0, 0, height, width):
        return inner
    full = np.zeros((height, width), dtype=inner.dtype)
    full[top:bottom, left:right] = inner
    return full


def resize_image(rgb: np.ndarray, size: int, crop: float = 1.0) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> uint8 (3, size, size), antialiased bilinear, rounded.

    ``crop`` < 1 first keeps the central share of each side (:func:`center_box`).
    """
    import torch  # here: reading files needs no torch (piade.inference.portable)
    import torch.nn.functional as F

    if crop < 1:
        top, left, bottom, right = center_box(rgb.shape[0], rgb.shape[1], crop)
        rgb = rgb[top:bottom, left:right]
    chw = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)  # (3, H, W)
    if chw.shape[-2:] == (size, size):
        return chw.contiguous()
    out = F.interpolate(
        chw[None].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )  # (1, 3, size, size)
    return out[0].round_().clamp_(0, 255).to(torch.uint8)


def resize_mask(mask: np.ndarray, size: int, crop: float = 1.0) -> torch.Tensor:
    """bool (H, W) -> uint8 (1, size, size) in {0, 1}, nearest sampling at pixel centres, after
    the same central crop as :func:`resize_image`'s."""
    import torch
    import torch.nn.functional as F

    if crop < 1:
        top, left, bottom, right = center_box(mask.shape[0], mask.shape[1], crop)
        mask = mask[top:bottom, left:right]
    binary = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8))[None]  # (1, H, W)
    if binary.shape[-2:] == (size, size):
        return binary
    out = F.interpolate(binary[None].float(), size=(size, size), mode="nearest-exact")
    return (out[0] > 0.5).to(torch.uint8)  # (1, size, size)
