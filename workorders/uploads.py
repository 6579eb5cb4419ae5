"""What an uploaded file really is, from its content: the type a client declares is only a claim.

`detect` reads the file (Pillow decodes images; PDF, MP4, HEIC, executables and archives are recognised by
their magic numbers; text is UTF-8 without control characters) and `accepted_type` compares that with the
declared type and the allowed ones. A file whose content does not match what it claims to be (an .exe sent as
`photo.png`) is refused with the detected type named; what is stored, and later served, is the detected type.
"""

from dataclasses import dataclass

from django.utils.translation import gettext, gettext_lazy
from PIL import Image, UnidentifiedImageError

from maintenance_site.errors import InvalidInput

HEAD_BYTES = 4096  # what the magic-number checks read
TEXT_SAMPLE_BYTES = 64 * 1024  # how much of a text file is checked for binary content
UNKNOWN = "application/octet-stream"

# Pillow's format name → MIME type, for the images Pillow decodes.
_PILLOW_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # a JPEG with extra frames (some phone cameras)
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "ICO": "image/vnd.microsoft.icon",
}
# ISO base media files (`ftyp` box): the major brand says which kind.
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_MIF_BRANDS = {b"mif1", b"msf1"}  # the HEIF container: HEIC when a compatible brand says so, else AVIF or other
_MP4_BRANDS = {
    b"isom",
    b"iso2",
    b"iso3",
    b"iso4",
    b"iso5",
    b"iso6",
    b"iso7",
    b"iso8",
    b"iso9",
    b"mp41",
    b"mp42",
    b"mp71",
    b"avc1",
    b"M4V ",
    b"M4VH",
    b"M4VP",
    b"dash",
    b"msnv",
    b"f4v ",
}
# Recognised by their first bytes, so that a refusal can say what the file is.
_SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-executable"),
    (b"\xca\xfe\xba\xbe", "application/x-mach-binary"),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    (b"PK\x03\x04", "application/zip"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\x1f\x8b", "application/gzip"),
)
DESCRIPTIONS = {
    "image/jpeg": gettext_lazy("a JPEG image"),
    "image/png": gettext_lazy("a PNG image"),
    "image/webp": gettext_lazy("a WebP image"),
    "image/heic": gettext_lazy("a HEIC image"),
    "image/avif": gettext_lazy("an AVIF image"),
    "image/gif": gettext_lazy("a GIF image"),
    "image/bmp": gettext_lazy("a BMP image"),
    "image/tiff": gettext_lazy("a TIFF image"),
    "application/pdf": gettext_lazy("a PDF document"),
    "video/mp4": gettext_lazy("an MP4 video"),
    "video/quicktime": gettext_lazy("a QuickTime video"),
    "text/plain": gettext_lazy("a text file"),
    "text/csv": gettext_lazy("a CSV file"),
    "application/x-msdownload": gettext_lazy("a Windows program"),
    "application/x-executable": gettext_lazy("a Linux program"),
    "application/x-mach-binary": gettext_lazy("a macOS program"),
    "application/zip": gettext_lazy("a ZIP archive (or an Office document)"),
    "application/vnd.rar": gettext_lazy("a RAR archive"),
    "application/x-7z-compressed": gettext_lazy("a 7-Zip archive"),
    "application/gzip": gettext_lazy("a gzip archive"),
    UNKNOWN: gettext_lazy("of a type we do not recognise"),
}
# Other names clients use for the same types.
ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/heif": "image/heic",
    "image/x-png": "image/png",
    "text/x-csv": "text/csv",
    "text/comma-separated-values": "text/csv",
    "application/csv": "text/csv",
    "application/vnd.ms-excel": "text/csv",  # what Windows browsers send for a .csv file
}
# Declared types that say nothing about the content: the detected type is taken as it is.
GENERIC = {"", UNKNOWN, "binary/octet-stream", "application/x-download"}
# Text content may be sent as any of these (a CSV file is text; a text file may be comma-separated).
TEXT_TYPES = {"text/plain", "text/csv"}


@dataclass(frozen=True)
class Detected:
    """The type found in the content, and whether it is text (text/plain or text/csv, the content cannot tell)."""

    content_type: str
    is_text: bool = False


def describe(content_type: str) -> str:
    """'a Windows program (application/x-msdownload)'."""
    return f"{DESCRIPTIONS.get(content_type) or gettext('a file')} ({content_type})"


def normalised(declared: str) -> str:
    """The declared type without parameters (`; charset=…`), lower-case, aliases resolved."""
    base = (declared or "").split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


def _read_head(uploaded, size: int) -> bytes:
    uploaded.seek(0)
    head = uploaded.read(size)
    uploaded.seek(0)
    return head or b""


def _iso_media_type(head: bytes) -> str | None:
    """video/mp4, image/heic, image/avif or video/quicktime for an ISO base media file (`ftyp` first)."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(max(box_size, 16), len(head)) - 3, 4)}
    if major in _HEIC_BRANDS or (major in _MIF_BRANDS and compatible & _HEIC_BRANDS):
        return "image/heic"
    if major in (b"avif", b"avis") or (major in _MIF_BRANDS and compatible & {b"avif", b"avis"}):
        return "image/avif"
    if major == b"qt  ":
        return "video/quicktime"
    if major in _MP4_BRANDS or compatible & _MP4_BRANDS:
        return "video/mp4"
    return None


def _pillow_type(uploaded) -> str | None:
    """The image type when Pillow can decode the file's structure, else None."""
    try:
        uploaded.seek(0)
        with Image.open(uploaded) as image:
            image_format = image.format
            image.verify()  # walks the file's structure (PNG checksums, JPEG markers) without decoding pixels
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    finally:
        uploaded.seek(0)
    return _PILLOW_TYPES.get(image_format or "", f"image/{(image_format or 'unknown').lower()}")


def _decoded(sample: bytes) -> str | None:
    """The sample as text: UTF-8 (with or without a byte-order mark), else Windows-1252 (spreadsheets and logs
    saved on Windows); None when it is neither."""
    try:
        return sample.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3:  # the sample ends inside a multi-byte character
            return sample[: exc.start].decode("utf-8-sig")
    try:
        return sample.decode("cp1252")
    except UnicodeDecodeError:
        return None


def _is_text(uploaded) -> bool:
    """Readable text: no NUL and no control characters other than tab, CR, LF and FF (programs, archives and
    pictures are full of them)."""
    text = _decoded(_read_head(uploaded, TEXT_SAMPLE_BYTES))
    if not text:
        return False
    return not any(ord(char) < 32 and char not in "\t\n\r\f" or char == "\x7f" for char in text)


def detect(uploaded) -> Detected:
    """What the file is, from its content; `application/octet-stream` when nothing matches."""
    head = _read_head(uploaded, HEAD_BYTES)
    iso_type = _iso_media_type(head)
    if iso_type:
        return Detected(iso_type)
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return Detected(content_type)
    image_type = _pillow_type(uploaded)
    if image_type:
        return Detected(image_type)
    if _is_text(uploaded):
        return Detected("text/plain", is_text=True)
    return Detected(UNKNOWN)


def accepted_type(uploaded, *, allowed: set[str], offer: str) -> str:
    """The type to store for `uploaded`: detected from its content, one of `allowed`, and matching the declared
    type (an alias or a generic type such as application/octet-stream counts as matching). Raises InvalidInput
    naming the detected type otherwise; `offer` says which kinds of files are accepted."""
    declared = normalised(getattr(uploaded, "content_type", "") or "")
    detected = detect(uploaded)
    if detected.is_text:
        # Content cannot tell a CSV file from other text: the declared text type is kept.
        content_type = declared if declared in TEXT_TYPES else "text/plain"
        matches = declared in TEXT_TYPES or declared in GENERIC
    else:
        content_type = detected.content_type
        matches = declared == content_type or declared in GENERIC
    if content_type not in allowed:
        raise InvalidInput(
            gettext("This file is %(found)s, which is not accepted; send %(offer)s.")
            % {"found": describe(content_type), "offer": offer},
            fields={"file": [gettext("Detected type %(type)s not accepted.") % {"type": content_type}]},
        )
    if not matches:
        raise InvalidInput(
            gettext(
                "This file was sent as %(declared)s but its content is %(found)s: send it as %(type)s, or send "
                "%(offer)s."
            )
            % {"declared": declared, "found": describe(content_type), "type": content_type, "offer": offer},
            fields={
                "file": [
                    gettext("Content is %(type)s, not %(declared)s.") % {"type": content_type, "declared": declared}
                ]
            },
        )
    return content_type
