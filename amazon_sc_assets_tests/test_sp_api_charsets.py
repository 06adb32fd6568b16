"""Charset names from a report download's Content-Type mapped to Python codecs."""

import httpx
import pytest

from amazon_sc_assets.sp_api.charsets import charset_from_response, resolve_charset
from amazon_sc_assets.sp_api.errors import UnknownCharsetError


@pytest.mark.parametrize(
    ("declared", "codec"),
    [
        ("Cp1252", "cp1252"),  # EU listings documents
        ("Windows-31J", "cp932"),  # Japan
        ("Shift_JIS", "cp932"),  # Microsoft's superset decodes every Shift_JIS document
        ("utf8", "utf-8"),  # US documents, Java spelling
        ("UTF-8", "utf-8"),
        ("ISO-8859-1", "latin-1"),
        ('"UTF-8"', "utf-8"),  # quoted parameter value
        ("ISO-8859-15", "iso8859-15"),  # a Python codec outside the Java table
    ],
)
def test_resolve_charset_maps_names(declared: str, codec: str) -> None:
    assert resolve_charset(declared) == codec


def test_resolve_charset_none_stays_none() -> None:
    assert resolve_charset(None) is None


def test_resolve_charset_unknown_raises() -> None:
    with pytest.raises(UnknownCharsetError, match="x-klingon"):
        resolve_charset("x-klingon")


def test_charset_from_response_reads_header() -> None:
    response = httpx.Response(200, headers={"Content-Type": "text/plain;charset=Cp1252"})
    assert charset_from_response(response) == "cp1252"


def test_charset_from_response_without_charset() -> None:
    # httpx's response.encoding would claim utf-8 here; the client must not.
    response = httpx.Response(200, headers={"Content-Type": "text/plain"}, content=b"caf\xe9")
    assert charset_from_response(response) is None
