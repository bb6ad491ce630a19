"""Reading what a client sends: the body under a size limit, multipart parts, image bytes.

Everything stays in memory: the body is read chunk by chunk and refused as soon as it passes the
limit (a ``Content-Length`` above it is refused before a byte is read), multipart bodies are split
in memory (Starlette's form parser would spool large files to a temporary file), and images are
decoded by Pillow restricted to PNG, JPEG, BMP and TIFF, with a pixel limit against decompression
bombs. Each problem is an :class:`UploadError` with an HTTP status and one sentence.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from starlette.requests import Request

from piade.data.decode import decode_rgb
from piade.errors import DataError

FORMATS = ("PNG", "JPEG", "BMP", "TIFF")
MAX_PIXELS = 50_000_000  # 50 megapixels: about 150 MB decoded; more is refused before decoding


class UploadError(Exception):
    """A request the server refuses: ``status`` (4xx) and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Upload:
    """One image sent by a client: its name (the part's file name, or "body") and its bytes."""

    name: str
    data: bytes


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is longer than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadError(413, _too_large(int(declared), limit))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadError(413, _too_large(size, limit, at_least=True))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    got = f"{'more than ' if at_least else ''}{size / 2**20:.3g} MB"
    return f"the upload is {got}; the limit is {limit / 2**20:.3g} MB (piade serve --max-image-mb)"


async def read_uploads(request: Request, limit: int, *, many: bool) -> list[Upload]:
    """The images of a request: the parts of a multipart/form-data body that carry a file (or, for
    a single image, any part), else the raw body as one image."""
    body = await read_body(request, limit)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/"):
        if many:
            raise UploadError(
                415, "send the images as the file parts of a multipart/form-data body"
            )
        if not body:
            raise UploadError(400, "the request has no body; send an image file's bytes")
        return [Upload("body", body)]
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.message_from_bytes(header + body, policy=email.policy.HTTP)
    if not message.is_multipart():
        raise UploadError(400, "a malformed multipart body (no boundary); send the image as a file")
    uploads = []
    for index, part in enumerate(message.iter_parts()):
        filename = part.get_filename()
        if filename is None and many:
            continue  # a plain form field, not an image
        payload = part.get_payload(decode=True)
        name = filename or str(part.get_param("name", header="content-disposition") or index)
        uploads.append(Upload(name, payload if isinstance(payload, bytes) else b""))
    if not uploads:
        raise UploadError(400, "the multipart body holds no file; add the image as a file part")
    return uploads


def decode_upload(upload: Upload) -> np.ndarray:
    """RGB uint8 (H, W, 3), or UploadError 413 (too many pixels) / 422 (not a readable image)."""
    try:
        return decode_rgb(upload.data, upload.name, max_pixels=MAX_PIXELS, formats=FORMATS)
    except DataError as error:
        cause, text = error.__cause__, str(error)  # decode_rgb raises from Pillow's own error
        if isinstance(cause, Image.DecompressionBombError):
            raise UploadError(413, text) from error
        if isinstance(cause, UnidentifiedImageError):
            text = f"{upload.name}: not a PNG, JPEG, BMP or TIFF image"
        raise UploadError(400 if not upload.data else 422, text) from error
