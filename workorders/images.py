"""Photos from the technician's phone: downscaled and stripped of their metadata before they are stored.

Phone cameras write EXIF into every picture, GPS position included. `prepare_photo` decodes the upload,
turns it upright (the EXIF orientation, which would otherwise be lost with the metadata), shrinks it to at
most MAX_SIDE pixels on its longer side and encodes it again from the pixels alone: no EXIF, no GPS, no
XMP, no comments. The colour profile is kept, so colours do not shift.
"""

import io
import os

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from maintenance_site.errors import InvalidInput
from workorders import uploads

MAX_SIDE = 1600
MAX_UPLOAD_BYTES = 40 * 1024 * 1024  # a raw phone photo; what is stored is far smaller
JPEG_QUALITY = 85
# What comes out for what goes in: PNG stays PNG (screenshots, transparency), WebP stays WebP, the rest JPEG.
_OUTPUT = {"PNG": ("PNG", "image/png", ".png"), "WEBP": ("WEBP", "image/webp", ".webp")}
_JPEG = ("JPEG", "image/jpeg", ".jpg")


def _refuse(message: str) -> InvalidInput:
    return InvalidInput(message, fields={"photo": [message]})


def prepare_photo(uploaded, *, max_side: int = MAX_SIDE) -> SimpleUploadedFile:
    """The photo to store: upright, at most `max_side` px on its longer side, without any metadata."""
    if uploaded is None or not uploaded.size:
        raise _refuse("Take or choose a photo first.")
    if uploaded.size > MAX_UPLOAD_BYTES:
        raise _refuse(f"The photo is {uploaded.size // 2**20} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB.")
    try:
        uploaded.seek(0)
        image = Image.open(uploaded)
        source_format = image.format or ""
        if source_format == "JPEG":
            image.draft("RGB", (max_side, max_side))  # decode at a reduced scale: far faster on big photos
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError):
        found = uploads.describe(uploads.detect(uploaded).content_type)
        message = _("This file is not a photo we can read: it is %(found)s. Send a JPEG, PNG or WebP picture.") % {
            "found": found
        }
        raise _refuse(message) from None

    icc_profile = image.info.get("icc_profile")
    image = ImageOps.exif_transpose(image)  # upright, before the orientation tag goes with the metadata
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)

    pil_format, content_type, extension = _OUTPUT.get(source_format, _JPEG)
    if pil_format == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    elif pil_format == "PNG" and image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    # A new image from the pixels only: nothing of the original's info (EXIF, XMP, text chunks) can follow.
    clean = Image.new(image.mode, image.size)
    if image.mode == "P":
        clean.putpalette(image.getpalette())
    clean.paste(image)

    options = {"icc_profile": icc_profile} if icc_profile and pil_format != "PNG" else {}
    if pil_format == "JPEG":
        options.update(quality=JPEG_QUALITY, optimize=True, progressive=True)
    elif pil_format == "WEBP":
        options.update(quality=JPEG_QUALITY)
    else:
        options.update(optimize=True)
    output = io.BytesIO()
    clean.save(output, format=pil_format, **options)

    stem = os.path.splitext(os.path.basename(uploaded.name or ""))[0][:100] or "photo"
    return SimpleUploadedFile(f"{stem}{extension}", output.getvalue(), content_type=content_type)
