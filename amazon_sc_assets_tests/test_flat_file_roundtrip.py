"""Property tests: any printable product name loads exactly as written."""

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amazon_sc_assets.flat_file import Lineage, parse_report_document
from amazon_sc_assets.report_types import ORDER_REPORT_HEADER

LINEAGE = Lineage(
    report_id="50038018563",
    data_start_time=datetime(2024, 3, 29, tzinfo=UTC),
    data_end_time=datetime(2024, 4, 1, tzinfo=UTC),
    loaded_at=datetime(2026, 1, 5, tzinfo=UTC),
)

PRODUCT_NAME_COLUMN = ORDER_REPORT_HEADER.index("product-name")


def is_cp1252_encodable(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


# Printable text: letters, marks, numbers, punctuation, symbols and spaces of every script,
# which includes quotes, "?" and U+FFFD. Tabs and line breaks are separators in the format.
printable_text = st.text(
    alphabet=st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1, max_size=40
)
product_names = st.lists(printable_text, min_size=1, max_size=5)
cp1252_product_names = st.lists(printable_text.filter(is_cp1252_encodable), min_size=1, max_size=5)


def load_product_names(names: list[str], encoding: str, line_ending: str) -> list[str]:
    lines = ["\t".join(ORDER_REPORT_HEADER)]
    for index, name in enumerate(names):
        fields = [""] * len(ORDER_REPORT_HEADER)
        fields[0] = f"028-{index:07d}-0000001"
        fields[PRODUCT_NAME_COLUMN] = name
        lines.append("\t".join(fields))

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "document.tsv"
        path.write_bytes(line_ending.join(lines).encode(encoding))
        parsed = parse_report_document(
            path, encoding, lineage=LINEAGE, work_dir=Path(directory) / "work", batch_rows=2
        )
        return parsed.frame.collect()["product_name"].to_list()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=product_names, line_ending=st.sampled_from(["\n", "\r\n"]))
def test_roundtrip_utf8_product_names(names, line_ending):
    assert load_product_names(names, "utf-8", line_ending) == names


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=cp1252_product_names, line_ending=st.sampled_from(["\n", "\r\n"]))
def test_roundtrip_cp1252_product_names(names, line_ending):
    assert load_product_names(names, "cp1252", line_ending) == names
