"""Tests of charset handling: strict decoding, the no-charset fallback and transcoding."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from amazon_sc_assets.flat_file import (
    CharsetError,
    DocumentText,
    Lineage,
    UndecodableBytesError,
    codecs_to_try,
    parse_report_document,
    resolve_codec,
)
from amazon_sc_assets.flat_file import decode as decode_module

FIXTURES = Path(__file__).parent / "fixtures"

LINEAGE = Lineage(
    report_id="50038018563",
    data_start_time=datetime(2024, 3, 29, tzinfo=UTC),
    data_end_time=datetime(2024, 4, 1, tzinfo=UTC),
    loaded_at=datetime(2026, 1, 5, tzinfo=UTC),
)


def parse_fixture(name: str, charset: str | None, tmp_path: Path):
    parsed = parse_report_document(
        FIXTURES / name, charset, lineage=LINEAGE, work_dir=tmp_path / "work"
    )
    return parsed, parsed.frame.collect()


def read_blocks(path: Path, codec: str) -> list[bytes]:
    return list(DocumentText(path, codec).utf8_blocks())


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8", None])
def test_decode_utf8_german_round_trips(tmp_path, charset):
    parsed, frame = parse_fixture("charset-utf8-german.tsv", charset, tmp_path)

    assert frame["product_name"].item() == "Größe Kissen"
    assert frame["ship_city"].item() == "München"
    assert parsed.charset == "utf-8"


def test_decode_cp1252_euro_and_curly_quotes(tmp_path):
    parsed, frame = parse_fixture("charset-cp1252-euro-curly-quotes.tsv", "cp1252", tmp_path)

    assert frame["product_name"].item() == "€5 “deluxe” Größe"
    assert parsed.charset == "cp1252"


def test_decode_cp1252_without_charset_falls_back(tmp_path):
    parsed, frame = parse_fixture("charset-cp1252-euro-curly-quotes.tsv", None, tmp_path)

    assert frame["product_name"].item() == "€5 “deluxe” Größe"
    assert parsed.charset == "cp1252"


def test_decode_latin1_bytes_without_charset(tmp_path):
    # An httpx response without a charset must not be read as UTF-8 and returned as bytes.
    parsed, frame = parse_fixture("latin1-no-charset.tsv", None, tmp_path)

    assert frame["product_name"].item() == "Café crème"
    assert parsed.charset == "cp1252"


def test_decode_fallback_leaves_one_output_directory(tmp_path):
    parse_fixture("latin1-no-charset.tsv", None, tmp_path)

    assert len(list((tmp_path / "work").iterdir())) == 1


def test_decode_question_mark_kept_as_data(tmp_path):
    # The producer wrote "?" for Polish letters that cp1252 lacks, so nothing can count them.
    parsed, frame = parse_fixture("charset-cp1252-question-mark-replaced.tsv", "cp1252", tmp_path)

    assert frame["product_name"].item() == "Poduszka ?ó?ta"
    assert parsed.replacement_characters == 0


def test_decode_counts_replacement_characters(tmp_path):
    parsed, frame = parse_fixture("charset-utf8-replacement-character.tsv", "utf-8", tmp_path)

    assert parsed.replacement_characters == 1
    assert frame["product_name"].item() == "Kissen \ufffd blau"


def test_decode_cp932_japanese(tmp_path):
    parsed, frame = parse_fixture("charset-cp932-japanese.tsv", "cp932", tmp_path)

    assert frame["product_name"].item() == "枕カバー 「和柄」 ①"
    assert frame["ship_city"].item() == "東京都"
    assert frame["item_price"].item() == Decimal("1980.00")
    assert parsed.charset == "cp932"


def test_decode_wrong_declared_charset_names_byte(tmp_path):
    with pytest.raises(UndecodableBytesError) as raised:
        parse_fixture("latin1-no-charset.tsv", "utf-8", tmp_path)

    header_length = (FIXTURES / "latin1-no-charset.tsv").read_bytes().index(b"\n") + 1
    row = (FIXTURES / "latin1-no-charset.tsv").read_bytes()[header_length:]
    assert raised.value.line_number == 2
    assert raised.value.byte_offset == header_length + row.index(b"\xe9")
    assert "0xE9" in str(raised.value)
    assert "utf-8" in str(raised.value)


def test_decode_failure_leaves_no_output(tmp_path):
    with pytest.raises(UndecodableBytesError):
        parse_fixture("charset-cp1252-euro-curly-quotes.tsv", "utf-8", tmp_path)

    assert list((tmp_path / "work").iterdir()) == []


def test_decode_no_fallback_charset_fits(tmp_path):
    path = tmp_path / "document.tsv"
    # 0x81 is invalid as a UTF-8 start byte and undefined in cp1252.
    path.write_bytes(b"amazon-order-id\tsku\n1\t\x81\n")

    with pytest.raises(CharsetError) as raised:
        parse_report_document(path, None, lineage=LINEAGE, work_dir=tmp_path / "work")

    assert "neither as UTF-8 nor as cp1252" in str(raised.value)
    assert "as utf-8, byte(s) 0x81 at byte offset 22 (line 2)" in str(raised.value)
    assert "as cp1252, byte(s) 0x81 at byte offset 22 (line 2)" in str(raised.value)


@pytest.mark.parametrize(
    ("charset", "expected"),
    [("utf8", "utf-8"), ("Cp1252", "cp1252"), ("windows-1252", "cp1252"), ("cp932", "cp932")],
)
def test_resolve_codec_canonical_name(charset, expected):
    assert resolve_codec(charset) == expected


@pytest.mark.parametrize("charset", ["no-such-charset", "utf-16", "utf-32"])
def test_resolve_codec_rejects_unusable_charset(charset):
    with pytest.raises(CharsetError, match=charset):
        resolve_codec(charset)


def test_codecs_to_try_without_charset():
    assert codecs_to_try(None) == ("utf-8", "cp1252")


def test_document_text_character_split_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(decode_module, "READ_BLOCK_BYTES", 3)
    path = tmp_path / "document.tsv"
    path.write_bytes("h\tß\nx\t日本\n".encode())

    blocks = read_blocks(path, "utf-8")

    assert b"".join(blocks).decode() == "h\tß\nx\t日本\n"
    assert all(block.endswith(b"\n") for block in blocks)


def test_document_text_transcodes_cp932_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(decode_module, "READ_BLOCK_BYTES", 3)
    path = tmp_path / "document.tsv"
    path.write_bytes("h\t枕\nx\t東京\n".encode("cp932"))

    blocks = read_blocks(path, "cp932")

    assert b"".join(blocks).decode() == "h\t枕\nx\t東京\n"


def test_document_text_error_offset_in_later_block(tmp_path, monkeypatch):
    monkeypatch.setattr(decode_module, "READ_BLOCK_BYTES", 4)
    path = tmp_path / "document.tsv"
    path.write_bytes(b"ab\ncd\nef\xffgh\n")

    with pytest.raises(UndecodableBytesError) as raised:
        read_blocks(path, "utf-8")

    assert raised.value.byte_offset == 8
    assert raised.value.line_number == 3


def test_document_text_truncated_character_at_end(tmp_path):
    path = tmp_path / "document.tsv"
    path.write_bytes("a\tb\nZ\u00fc".encode()[:-1])

    with pytest.raises(UndecodableBytesError) as raised:
        read_blocks(path, "utf-8")

    assert raised.value.byte_offset == 5
    assert "0xC3" in str(raised.value)


def test_document_text_drops_utf8_byte_order_mark(tmp_path):
    path = tmp_path / "document.tsv"
    path.write_bytes(b"\xef\xbb\xbfamazon-order-id\n1\n")

    assert read_blocks(path, "utf-8") == [b"amazon-order-id\n1\n"]


def test_document_text_last_line_without_newline(tmp_path):
    path = tmp_path / "document.tsv"
    path.write_bytes(b"a\nb")

    assert read_blocks(path, "utf-8") == [b"a\n", b"b"]
