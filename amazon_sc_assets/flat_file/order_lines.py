"""Order line numbers: the position of each row among the rows of its amazon_order_id."""

import polars as pl

from amazon_sc_assets.flat_file.columns import ORDER_ID_COLUMN

ORDER_LINE_NUMBER_COLUMN = "_order_line_number"

_ROWS_SEEN = "_rows_seen"
_KEY = "_key"
_NUMBER_KEY = "_order_id_number"
_TEXT_KEY = "_order_id_text"


class OrderLineNumbers:
    """Numbers each row among the rows of its amazon_order_id, continuing across batches.

    It keeps the row count of every order id seen so far, so its memory grows with the number
    of distinct orders. Ids in Amazon's 3-7-7 digit format are stored as integers, at about 16
    bytes each (an estimate from the column widths). Other ids cost their length plus about 24
    bytes.
    """

    def __init__(self) -> None:
        self._rows_by_number = pl.DataFrame(schema={_KEY: pl.UInt64(), _ROWS_SEEN: pl.Int64()})
        self._rows_by_text = pl.DataFrame(schema={_KEY: pl.String(), _ROWS_SEEN: pl.Int64()})

    def number(self, typed: pl.DataFrame) -> pl.DataFrame:
        """Return `typed` with the _order_line_number column added."""
        order_id = pl.col(ORDER_ID_COLUMN)
        is_amazon_format = order_id.str.contains(r"^[0-9]{3}-[0-9]{7}-[0-9]{7}$").fill_null(False)
        digits = order_id.str.replace_all("-", "", literal=True).cast(pl.UInt64(), strict=False)
        position_in_batch = pl.int_range(1, pl.len() + 1, dtype=pl.Int64()).over(ORDER_ID_COLUMN)
        typed = typed.with_columns(
            position_in_batch.alias(ORDER_LINE_NUMBER_COLUMN),
            pl.when(is_amazon_format).then(digits).alias(_NUMBER_KEY),
            # A blank order id is null, and "" stands for it because no field is "" after the
            # blank-to-null conversion.
            pl.when(~is_amazon_format).then(order_id.fill_null("")).alias(_TEXT_KEY),
        )

        typed = typed.join(
            self._stored_rows(self._rows_by_number, typed, _NUMBER_KEY, "_rows_seen_number"),
            on=_NUMBER_KEY,
            how="left",
            maintain_order="left",
        ).join(
            self._stored_rows(self._rows_by_text, typed, _TEXT_KEY, "_rows_seen_text"),
            on=_TEXT_KEY,
            how="left",
            maintain_order="left",
        )
        rows_seen = pl.coalesce("_rows_seen_number", "_rows_seen_text", pl.lit(0, pl.Int64()))
        typed = typed.with_columns(pl.col(ORDER_LINE_NUMBER_COLUMN) + rows_seen)

        # An order's highest line number in this batch is its row count so far. Replacing
        # those entries costs a hash probe per stored order, far less than regrouping.
        rows_so_far = typed.group_by(_NUMBER_KEY, _TEXT_KEY).agg(
            pl.col(ORDER_LINE_NUMBER_COLUMN).max().alias(_ROWS_SEEN)
        )
        self._rows_by_number = self._replace(self._rows_by_number, rows_so_far, _NUMBER_KEY)
        self._rows_by_text = self._replace(self._rows_by_text, rows_so_far, _TEXT_KEY)
        return typed.drop(_NUMBER_KEY, _TEXT_KEY, "_rows_seen_number", "_rows_seen_text")

    @staticmethod
    def _stored_rows(
        table: pl.DataFrame, typed: pl.DataFrame, key: str, rows_seen: str
    ) -> pl.DataFrame:
        """Return the stored counts of the batch's order ids, keyed by `key`.

        Filtering the store with a semi join first keeps the per-batch cost low. With Polars
        2.1, a left join of the batch against a store of 2.5M ids took about 4 times longer.
        """
        batch_keys = typed.select(pl.col(key).alias(_KEY)).drop_nulls().unique()
        stored = table.join(batch_keys, on=_KEY, how="semi")
        return stored.rename({_KEY: key, _ROWS_SEEN: rows_seen})

    @staticmethod
    def _replace(table: pl.DataFrame, rows_so_far: pl.DataFrame, key: str) -> pl.DataFrame:
        updates = rows_so_far.filter(pl.col(key).is_not_null()).select(
            pl.col(key).alias(_KEY), pl.col(_ROWS_SEEN)
        )
        unchanged = table.join(updates, on=_KEY, how="anti")
        return pl.concat([unchanged, updates])
