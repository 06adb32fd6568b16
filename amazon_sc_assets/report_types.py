"""The two SP-API order-tracking report types and the flat-file header Amazon writes for them."""

from datetime import timedelta
from enum import StrEnum


class ReportType(StrEnum):
    """Order-tracking report types of the Reports API 2021-06-30."""

    LAST_UPDATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
    ORDER_DATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"

    @property
    def date_column(self) -> str:
        """Flat-file column that Amazon filters on for dataStartTime and dataEndTime."""
        if self is ReportType.LAST_UPDATE:
            return "last-updated-date"
        return "purchase-date"


# Amazon rejects longer ranges for these report types: since 2023 the report ends FATAL with the
# document text "Date range exceeded. Report can be requested only upto 30 days".
MAX_REPORT_WINDOW = timedelta(days=30)

# The 32-column header seen in real files of both report types (Amazon's attribute page lists 31
# and omits `url`). The by-order-date type may add `cpf` after `promotion-ids` for Brazil.
ORDER_REPORT_HEADER: tuple[str, ...] = (
    "amazon-order-id",
    "merchant-order-id",
    "purchase-date",
    "last-updated-date",
    "order-status",
    "fulfillment-channel",
    "sales-channel",
    "order-channel",
    "url",
    "ship-service-level",
    "product-name",
    "sku",
    "asin",
    "item-status",
    "quantity",
    "currency",
    "item-price",
    "item-tax",
    "shipping-price",
    "shipping-tax",
    "gift-wrap-price",
    "gift-wrap-tax",
    "item-promotion-discount",
    "ship-promotion-discount",
    "ship-city",
    "ship-state",
    "ship-postal-code",
    "ship-country",
    "promotion-ids",
    "is-business-order",
    "purchase-order-number",
    "price-designation",
)
