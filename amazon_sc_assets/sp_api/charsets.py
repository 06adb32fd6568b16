"""Map the charset of a report document's Content-Type to a Python codec name.

Amazon writes Java charset names (`Cp1252`, `Windows-31J`, `utf8`) in the download's
Content-Type. Only that header counts: httpx's `response.encoding` and `response.text` fall back
to UTF-8 when no charset is declared, which silently mis-decodes Latin-1 and cp1252 documents.
The client never decodes report data. The flat-file parser decodes with the codec returned here,
and when no charset is declared it tries strict UTF-8 and then cp1252.
"""

from __future__ import annotations

import codecs

import httpx

from amazon_sc_assets.sp_api.errors import UnknownCharsetError

# Java names Amazon is known to send, lower-cased, mapped to Python codec names. Windows-31J is
# Microsoft's Shift_JIS variant; Python's `shift_jis` lacks its extra characters, so both names
# map to cp932.
JAVA_CHARSET_NAMES: dict[str, str] = {
    "cp1252": "cp1252",
    "windows-1252": "cp1252",
    "windows-31j": "cp932",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "ms932": "cp932",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "iso-8859-1": "latin-1",
    "iso8859_1": "latin-1",
    "latin1": "latin-1",
}


def resolve_charset(name: str | None) -> str | None:
    """Convert a declared charset name to a Python codec name.

    Args:
        name: The charset parameter of a Content-Type header, or None when none was declared.

    Returns:
        A name that `codecs.lookup` accepts, or None when `name` is None or empty.

    Raises:
        UnknownCharsetError: If neither the Java name table nor Python's codecs know `name`.
    """
    if name is None or not name.strip():
        return None
    cleaned = name.strip().strip('"').lower()
    if cleaned in JAVA_CHARSET_NAMES:
        return JAVA_CHARSET_NAMES[cleaned]
    try:
        return codecs.lookup(cleaned).name
    except LookupError:
        raise UnknownCharsetError(
            f"Unknown charset {name!r} in the report document's Content-Type: it is neither a "
            f"known Java charset name ({', '.join(sorted(JAVA_CHARSET_NAMES))}) nor a Python "
            "codec. Add a mapping for it to JAVA_CHARSET_NAMES in "
            "amazon_sc_assets/sp_api/charsets.py."
        ) from None


def charset_from_response(response: httpx.Response) -> str | None:
    """Return the Python codec name declared by a response's Content-Type, or None.

    Reads `response.charset_encoding`, which is None when the header declares no charset.
    """
    return resolve_charset(response.charset_encoding)
