"""A seeded, deterministic order history that the emulator serves as order-tracking reports.

Each UTC day of the history is generated on its own from (seed, day), so a report over any
window contains the same orders, with the same versions and values, in every call and every
process. An order is a purchase time plus a short sequence of versions (Pending first, then
Unshipped or Shipping, then Shipped or Cancelled), each with its own last-updated-date, spread
over at most `MAX_ORDER_LIFETIME` after the purchase. `OrderHistory.iter_rows` writes one row per
order item, as lists of strings in the header order of the report type.

Speed comes from two choices. All random bits of a block of `_BLOCK_SIZE` orders come from one
`random.Random.randbytes` call, and each order reads its own fixed 40-byte slice of them. Every
string that does not depend on the order (product names, prices per quantity, tax amounts,
cities, times of day) is built once per `OrderHistory` instance.
"""

import functools
import logging
import math
import random
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from amazon_sc_assets.emulator.documents import CHARSET_CODECS
from amazon_sc_assets.marketplaces import Marketplace, Region, marketplaces_in_region
from amazon_sc_assets.report_types import ORDER_REPORT_HEADER, ReportType

logger = logging.getLogger(__name__)

# Latest last-updated-date of an order, counted from its purchase-date. A LAST_UPDATE report
# therefore scans the orders purchased up to this long before its start.
MAX_ORDER_LIFETIME = timedelta(days=4)

# The 14 digits after an order id's 3-digit prefix encode (day, order number), with room for
# 10**7 orders a day. The cap keeps a day with 15 % more orders than the mean below that.
MAX_ORDERS_PER_DAY = 8_000_000
_ORDER_ID_MULTIPLIER = 36_028_797_018_963_971

_SECONDS_PER_DAY = 86_400
_BLOCK_SIZE = 4096
# Random bytes per order: 12 for the purchase time and versions, 28 for everything else.
_TIMING_BYTES = 12
_BYTES_PER_ORDER = 40
_CATALOGUE_SIZE = 256
_CITIES_PER_MARKETPLACE = 64
_MAX_QUANTITY = 5

_CPF_POSITION = ORDER_REPORT_HEADER.index("promotion-ids") + 1
# The undocumented column goes between `promotion-ids` (or `cpf`) and `is-business-order`, the
# spot where Amazon put `cpf`. A loader that maps columns by position reads it as the wrong field.
_EXTRA_COLUMN_BEFORE = "is-business-order"

_FULFILLMENT_AFN = "Amazon"
_FULFILLMENT_MFN = "Merchant"

# Rounded rates from the catalogue's USD prices, because only the size of the amounts matters.
_USD_RATES: dict[str, float] = {
    "USD": 1.0,
    "CAD": 1.36,
    "MXN": 17.0,
    "BRL": 5.0,
    "EUR": 0.92,
    "GBP": 0.79,
    "SEK": 10.5,
    "ZAR": 18.5,
    "PLN": 4.0,
    "EGP": 48.0,
    "TRY": 32.0,
    "SAR": 3.75,
    "AED": 3.67,
    "INR": 83.0,
    "SGD": 1.35,
    "AUD": 1.52,
    "JPY": 150.0,
}
_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY"})

# Relative share of a region's orders per marketplace country. Unlisted countries get weight 1.
_COUNTRY_WEIGHTS: dict[str, int] = {
    "US": 70,
    "CA": 14,
    "MX": 9,
    "BR": 7,
    "UK": 30,
    "DE": 30,
    "FR": 12,
    "IT": 10,
    "ES": 8,
    "NL": 3,
    "SE": 2,
    "PL": 2,
    "JP": 60,
    "AU": 30,
    "SG": 10,
}

# Sales-tax or VAT rates a row may carry, per country. A rate of 0.0 gives a blank item-tax.
_TAX_RATES: dict[str, tuple[float, float, float, float]] = {
    "US": (0.0, 0.06, 0.0725, 0.0825),
    "CA": (0.05, 0.13, 0.15, 0.0),
    "JP": (0.10, 0.10, 0.08, 0.10),
}
_DEFAULT_TAX_RATES = (0.0, 0.0, 0.0, 0.0)

# Cities with state or region and a postal code pattern ("9" = digit, "A" = letter).
_CITIES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "US": (
        ("Memphis", "TN", "99999-9999"),
        ("Grand Prairie", "TX", "99999"),
        ("Mequon", "WI", "99999"),
        ("New York", "NY", "99999-9999"),
        ("Owens Cross Roads", "AL", "99999"),
        ("Seattle", "WA", "99999"),
        ("San José", "CA", "99999"),
        ("Coeur d'Alene", "ID", "99999"),
    ),
    "CA": (
        ("Montréal", "QC", "A9A 9A9"),
        ("Toronto", "ON", "A9A 9A9"),
        ("Trois-Rivières", "QC", "A9A 9A9"),
        ("Calgary", "AB", "A9A 9A9"),
    ),
    "MX": (
        ("Ciudad de México", "CDMX", "99999"),
        ("Mérida", "YUC", "99999"),
        ("Monterrey", "NL", "99999"),
    ),
    "BR": (
        ("São Paulo", "SP", "99999-999"),
        ("Florianópolis", "SC", "99999-999"),
        ("Belém", "PA", "99999-999"),
    ),
    "UK": (
        ("London", "", "AA9 9AA"),
        ("Manchester", "Greater Manchester", "A9 9AA"),
        ("Leeds", "West Yorkshire", "AA9 9AA"),
    ),
    "DE": (
        ("Düsseldorf", "NRW", "99999"),
        ("München", "Bayern", "99999"),
        ("Weißenfels", "Sachsen-Anhalt", "99999"),
    ),
    "FR": (
        ("Besançon", "", "99999"),
        ("Orléans", "", "99999"),
        ("Paris", "", "99999"),
    ),
    "IT": (("Forlì", "FC", "99999"), ("Milano", "MI", "99999"), ("Cantù", "CO", "99999")),
    "ES": (("Málaga", "Málaga", "99999"), ("A Coruña", "A Coruña", "99999")),
    "SE": (("Malmö", "Skåne", "999 99"), ("Göteborg", "", "999 99")),
    "PL": (("Łódź", "łódzkie", "99-999"), ("Kraków", "małopolskie", "99-999")),
    "JP": (
        ("渋谷区", "東京都", "999-9999"),
        ("大阪市", "大阪府", "999-9999"),
        ("Sapporo", "Hokkaido", "999-9999"),
    ),
    "AU": (("Sydney", "NSW", "9999"), ("Melbourne", "VIC", "9999")),
    "SG": (("Singapore", "", "999999"),),
}
_DEFAULT_CITIES = (("Capital City", "", "99999"),)

# Product names as sellers type them: literal double quotes, accents, euro signs, curly quotes
# and Japanese. Names the configured charset cannot encode are left out of the catalogue.
_PRODUCT_NAMES: tuple[str, ...] = (
    'Trendy Home 12" x 18" Premium Hypoallergenic Throw Pillow Insert, Standard/White (12x18)',
    'Trendy Home 20" x 20" Premium Hypoallergenic Throw Pillow Insert (20x20(4pack))',
    '12" ruler',
    '"Best" Widget 10',
    '"Open quote never closed',
    'Stainless Steel 6" Chef Knife',
    "Bamboo Cutting Board, Large",
    "USB-C Charging Cable 2 m, 3-Pack",
    "LED Desk Lamp with Clamp",
    "Café Crème Espresso Cups – Set of 4",
    "Laufshirt für Herren, Größe M",
    "Geschenkgutschein 25 € – Blumenmotiv",
    "Señorita’s Garden Gloves",
    "Jouet éducatif “Petit Génie”",
    "Crème brûlée Torch “Pro” Edition",
    "Kubek ceramiczny Łódź 300 ml",
    "ステンレス 真空断熱 水筒 500ml",
    "抹茶 “Premium” 宇治 100g",
    "木製 まな板 30cm",
)
_PRODUCT_VARIANTS: tuple[str, ...] = ("", ", Black", ", White", ", Grey", ", Blue", " (2-Pack)")

_SHIP_SERVICE_LEVELS_AFN = ("Expedited", "Standard", "SecondDay", "NextDay")
_SHIP_SERVICE_LEVELS_MFN = ("Standard", "Standard", "Expedited", "FreeEconomy")

# Order status of a version, the item-status of its lines, and whether prices are shown. Lines not
# yet shipped get item-status Unshipped. Real files contain that value, but its use on Pending
# orders is assumed.
_PENDING = ("Pending", "Unshipped", False)
_UNSHIPPED = ("Unshipped", "Unshipped", True)
_SHIPPING = ("Shipping", "Unshipped", True)
_SHIPPED = ("Shipped", "Shipped", True)
_CANCELLED_UNPAID = ("Cancelled", "Cancelled", False)
_CANCELLED_PAID = ("Cancelled", "Cancelled", True)


@dataclass(frozen=True)
class _Lifecycle:
    """Statuses an order goes through, with the delay range (seconds) before each later one."""

    versions: tuple[tuple[str, str, bool], ...]
    delays: tuple[tuple[int, int], ...]
    fulfillment_channel: str | None  # None: either channel


_HOUR = 3600
# Share of orders per lifecycle, out of 256. Delays keep the last version within
# MAX_ORDER_LIFETIME: at most 30 minutes to Pending plus at most 78 hours of later delays.
_LIFECYCLE_SHARES: tuple[tuple[int, _Lifecycle], ...] = (
    (
        100,
        _Lifecycle(
            (_PENDING, _SHIPPING, _SHIPPED),
            ((1 * _HOUR, 12 * _HOUR), (6 * _HOUR, 60 * _HOUR)),
            _FULFILLMENT_AFN,
        ),
    ),
    (
        90,
        _Lifecycle(
            (_PENDING, _UNSHIPPED, _SHIPPED),
            ((_HOUR // 2, 6 * _HOUR), (4 * _HOUR, 72 * _HOUR)),
            _FULFILLMENT_MFN,
        ),
    ),
    (40, _Lifecycle((_PENDING, _SHIPPED), ((2 * _HOUR, 36 * _HOUR),), None)),
    (15, _Lifecycle((_PENDING, _CANCELLED_UNPAID), ((_HOUR // 2, 24 * _HOUR),), None)),
    (
        11,
        _Lifecycle(
            (_PENDING, _UNSHIPPED, _CANCELLED_PAID),
            ((_HOUR, 8 * _HOUR), (6 * _HOUR, 48 * _HOUR)),
            _FULFILLMENT_MFN,
        ),
    ),
)

# Lines per order out of 128: one line mostly, up to five.
_LINE_COUNT_TABLE: tuple[int, ...] = (1,) * 96 + (2,) * 20 + (3,) * 8 + (4,) * 3 + (5,)
# Quantity of a line out of 16.
_QUANTITY_TABLE: tuple[int, ...] = (1,) * 11 + (2,) * 3 + (3, 4)


@dataclass(frozen=True)
class OrderHistoryConfig:
    """Settings of a generated order history. Equal settings give equal reports.

    Attributes:
        seed: Seed of every random choice.
        start: First purchase time. None means `end` minus 60 days, or 60 days before today
            00:00 UTC when `end` is None too.
        end: Last purchase time. None means purchases continue up to the `as_of` of each report.
        orders_per_day: Mean number of orders per UTC day; each day varies by up to 15 %.
        region: Selling region whose marketplaces appear in sales-channel.
        charset: Charset that documents are encoded in, spelled as Amazon spells it in the
            download's Content-Type: "UTF-8", "Cp1252" or "Windows-31J". Generated text is
            always encodable in it.
        include_cpf: Add the `cpf` column after `promotion-ids` to ORDER_DATE reports, as in
            files of Brazil sellers. It is filled on Amazon.com.br rows only.
        extra_column: Name of an undocumented column, such as "amazon-programs", that every
            report gets before `is-business-order`. None adds no column.
    """

    seed: int = 0
    start: datetime | None = None
    end: datetime | None = None
    orders_per_day: float = 40.0
    region: Region = Region.NA
    charset: str = "UTF-8"
    include_cpf: bool = False
    extra_column: str | None = None

    def __post_init__(self) -> None:
        if self.charset not in CHARSET_CODECS:
            raise ValueError(
                f"Invalid charset {self.charset!r}: expected one of {sorted(CHARSET_CODECS)}, "
                "spelled as in Amazon's Content-Type header."
            )
        if not 0 <= self.orders_per_day <= MAX_ORDERS_PER_DAY:
            raise ValueError(
                f"Invalid orders_per_day {self.orders_per_day}: expected a number from 0 to "
                f"{MAX_ORDERS_PER_DAY}, because order ids number the orders of a day in 7 digits."
            )
        if self.extra_column is not None and (
            self.extra_column in ORDER_REPORT_HEADER or self.extra_column in ("", "cpf")
        ):
            raise ValueError(
                f"Invalid extra_column {self.extra_column!r}: expected a non-empty name that is "
                "not already a column of the report."
            )
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(
                f"Invalid history range: start {self.start.isoformat()} is after end "
                f"{self.end.isoformat()}. Pass a start at or before the end."
            )


@dataclass(frozen=True)
class _Product:
    name: str
    sku: str
    asin: str
    usd_cents: int


@dataclass
class _ChannelCatalogue:
    """Strings of one marketplace that rows reuse, indexed by product and quantity."""

    sales_channel: str
    currency: str
    country_code: str
    ship_country: str
    # [product][quantity] -> item-price
    line_prices: list[list[str]] = field(default_factory=list)
    # [product][quantity][tax class] -> item-tax
    line_taxes: list[list[list[str]]] = field(default_factory=list)
    # [product][quantity] -> item-promotion-discount
    line_discounts: list[list[str]] = field(default_factory=list)
    # (shipping-price, shipping-tax, ship-promotion-discount) per shipping option
    shipping: list[tuple[str, str, str]] = field(default_factory=list)
    gift_wrap: tuple[str, str] = ("", "")
    # (ship-city, ship-state, ship-postal-code)
    cities: list[tuple[str, str, str]] = field(default_factory=list)
    cpf_numbers: list[str] = field(default_factory=list)


def _format_amount(minor_units: int) -> str:
    """Format hundredths of a currency unit as Amazon's files do: `7.49`, `1.2`, blank for zero.

    Real files drop a trailing zero after the first decimal ("1.2"), as Java's Double.toString
    does. Python's float repr gives the same text for amounts of this size, and "12.0" for whole
    amounts. NOTE: how whole amounts and zero-decimal currencies (JPY) look in real files is not
    confirmed.
    """
    if minor_units == 0:
        return ""
    return repr(minor_units / 100)


def _encode_or_fold(text: str, codec: str) -> str:
    """Return text unchanged if the codec can encode it, else its ASCII transliteration.

    The transliteration drops accents ("Łódź" becomes "Lodz") and is empty for text without
    Latin letters, such as Japanese.
    """
    if _can_encode(text, codec):
        return text
    latin = text.replace("Ł", "L").replace("ł", "l")
    return unicodedata.normalize("NFKD", latin).encode("ascii", "ignore").decode("ascii")


def _can_encode(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _fill_pattern(pattern: str, rng: random.Random) -> str:
    characters = []
    for symbol in pattern:
        if symbol == "9":
            characters.append(str(rng.randrange(10)))
        elif symbol == "A":
            characters.append(chr(ord("A") + rng.randrange(26)))
        else:
            characters.append(symbol)
    return "".join(characters)


def _typed_case(city: str, rng: random.Random) -> str:
    """Return the city as a buyer typed it: upper case, as written, or lower case."""
    roll = rng.randrange(10)
    if roll < 4:
        return city.upper()
    if roll == 9:
        return city.lower()
    return city


def _cpf_number(rng: random.Random) -> str:
    """Return an 11-digit Brazilian CPF number with valid check digits (not a real person's)."""
    digits = [rng.randrange(10) for _ in range(9)]
    for length in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(length + 1, 1, -1), strict=True))
        check = (total * 10) % 11
        digits.append(0 if check == 10 else check)
    return "".join(map(str, digits))


def _build_products(seed: int, codec: str) -> list[_Product]:
    rng = random.Random(f"{seed}:products")
    names = [name for name in _PRODUCT_NAMES if _can_encode(name, codec)]
    products = []
    for index in range(_CATALOGUE_SIZE):
        base = names[index % len(names)]
        variant = _PRODUCT_VARIANTS[(index // len(names)) % len(_PRODUCT_VARIANTS)]
        sku = f"{''.join(rng.choices('ABCDEFGHJKLMNPQRSTUVWXYZ', k=2))}-{index:04d}"
        asin = "B0" + "".join(rng.choices("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=8))
        usd_cents = rng.choice((499, 749, 999, 1299, 1499, 1999, 2599, 3499, 4999, 8995, 12900))
        products.append(_Product(base + variant, sku, asin, usd_cents))
    return products


def _to_minor_units(usd_cents: int, currency: str) -> int:
    amount = usd_cents * _USD_RATES.get(currency, 1.0)
    if currency in _ZERO_DECIMAL_CURRENCIES:
        return int(round(amount / 100)) * 100
    # Keep the ".99" endings that sellers use after conversion.
    return max(int(amount // 100) * 100 + usd_cents % 100, 1)


def _build_channel(
    marketplace: Marketplace, products: list[_Product], seed: int, codec: str
) -> _ChannelCatalogue:
    rng = random.Random(f"{seed}:{marketplace.marketplace_id}")
    currency = marketplace.currency
    # The marketplace table uses UK, but ship-country contains ISO 3166 codes, so UK becomes GB.
    ship_country = "GB" if marketplace.country_code == "UK" else marketplace.country_code
    catalogue = _ChannelCatalogue(
        marketplace.sales_channel, currency, marketplace.country_code, ship_country
    )
    tax_rates = _TAX_RATES.get(marketplace.country_code, _DEFAULT_TAX_RATES)

    for product in products:
        unit = _to_minor_units(product.usd_cents, currency)
        prices, taxes, discounts = [""], [["", "", "", ""]], [""]
        for quantity in range(1, _MAX_QUANTITY + 1):
            line_total = unit * quantity
            prices.append(_format_amount(line_total))
            taxes.append([_format_amount(round(line_total * rate)) for rate in tax_rates])
            # NOTE: Amazon documents no sign for the discount columns, and the real rows this
            # project has seen leave them blank. Discounts are written as negative amounts here.
            discounts.append(_format_amount(-round(line_total * 0.1)))
        catalogue.line_prices.append(prices)
        catalogue.line_taxes.append(taxes)
        catalogue.line_discounts.append(discounts)

    for usd_cents in (399, 499, 599, 799, 999, 1299, 1499, 2499):
        amount = _to_minor_units(usd_cents, currency)
        shipping_tax = round(amount * tax_rates[1])
        catalogue.shipping.append(
            (
                _format_amount(amount),
                _format_amount(shipping_tax),
                _format_amount(-amount),
            )
        )
    gift_wrap = _to_minor_units(399, currency)
    catalogue.gift_wrap = (
        _format_amount(gift_wrap),
        _format_amount(round(gift_wrap * tax_rates[1])),
    )

    # Cities the charset cannot write even without accents (Japanese ones in Cp1252) are left out.
    templates = [
        template
        for template in _CITIES.get(marketplace.country_code, _DEFAULT_CITIES)
        if _encode_or_fold(template[0], codec)
    ] or list(_DEFAULT_CITIES)
    for index in range(_CITIES_PER_MARKETPLACE):
        city, state, postal_pattern = templates[index % len(templates)]
        catalogue.cities.append(
            (
                _encode_or_fold(_typed_case(city, rng), codec),
                _encode_or_fold(state, codec),
                _fill_pattern(postal_pattern, rng),
            )
        )

    if marketplace.country_code == "BR":
        catalogue.cpf_numbers = [_cpf_number(rng) for _ in range(256)]
    return catalogue


def _build_channel_table(
    channels: list[_ChannelCatalogue],
) -> tuple[int, ...]:
    """Return 1024 channel indices in proportion to the countries' order shares."""
    weights = [_COUNTRY_WEIGHTS.get(channel.country_code, 1) for channel in channels]
    total = sum(weights)
    table: list[int] = []
    for index, weight in enumerate(weights):
        table.extend([index] * (weight * 1024 // total))
    table.extend([0] * (1024 - len(table)))
    return tuple(table)


def _build_lifecycle_table() -> tuple[_Lifecycle, ...]:
    table: list[_Lifecycle] = []
    for share, lifecycle in _LIFECYCLE_SHARES:
        table.extend([lifecycle] * share)
    assert len(table) == 256, "lifecycle shares must add up to 256"
    return tuple(table)


def _as_utc(moment: datetime) -> datetime:
    """Return an aware UTC datetime; a naive one is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@functools.cache
def _time_of_day_strings() -> tuple[str, ...]:
    """Return "HH:MM:SS+00:00" for every second of a day, built once per process."""
    return tuple(
        f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}+00:00"
        for second in range(_SECONDS_PER_DAY)
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OrderHistory:
    """A deterministic order history that yields order-tracking report rows.

    Example::

        history = OrderHistory(OrderHistoryConfig(seed=7, orders_per_day=100))
        header = history.header(ReportType.LAST_UPDATE)
        for row in history.iter_rows(
            ReportType.LAST_UPDATE, start, end, marketplace_ids=None, as_of=now
        ):
            ...
    """

    def __init__(self, config: OrderHistoryConfig) -> None:
        self.config = config
        self._codec = CHARSET_CODECS[config.charset]

        end = _as_utc(config.end) if config.end is not None else None
        if config.start is not None:
            start = _as_utc(config.start)
        elif end is not None:
            start = end - timedelta(days=60)
        else:
            today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            start = today - timedelta(days=60)
        self._first_purchase = math.ceil(start.timestamp())
        self._last_purchase = math.floor(end.timestamp()) if end is not None else None

        marketplaces = marketplaces_in_region(config.region)
        products = _build_products(config.seed, self._codec)
        self._products = products
        self._channels = [
            _build_channel(marketplace, products, config.seed, self._codec)
            for marketplace in marketplaces
        ]
        self._channel_index_by_id = {
            marketplace.marketplace_id: index for index, marketplace in enumerate(marketplaces)
        }
        self._channel_table = _build_channel_table(self._channels)
        self._lifecycle_table = _build_lifecycle_table()
        self._time_of_day = _time_of_day_strings()
        self._date_prefixes: dict[int, str] = {}

    def header(self, report_type: ReportType) -> list[str]:
        """Return the columns of a report of this type, in file order.

        The base is the 32-column header of real files. With `include_cpf`, ORDER_DATE reports
        get `cpf` after `promotion-ids`. With `extra_column`, both types get that column just
        before `is-business-order`.
        """
        columns = list(ORDER_REPORT_HEADER)
        if self.config.include_cpf and report_type is ReportType.ORDER_DATE:
            columns.insert(_CPF_POSITION, "cpf")
        if self.config.extra_column is not None:
            columns.insert(columns.index(_EXTRA_COLUMN_BEFORE), self.config.extra_column)
        return columns

    def iter_rows(
        self,
        report_type: ReportType,
        start: datetime,
        end: datetime,
        *,
        marketplace_ids: Collection[str] | None,
        as_of: datetime,
    ) -> Iterator[list[str]]:
        """Validate a report request and return its rows lazily, one per order item.

        LAST_UPDATE yields, for each order, its newest version whose last-updated-date is at or
        before min(end, as_of), when that last-updated-date is at or after start. It ignores
        `marketplace_ids` because Amazon returns the whole region for this report type.
        ORDER_DATE yields the orders purchased in [start, end] in their newest version as of
        `as_of`, from the given marketplaces only (None means all of the region). All lines of
        an order share one version. Orders come in purchase order. Naive datetimes are UTC.

        Args:
            report_type: Report type, which decides the date column filtered on.
            start: Data start time, inclusive.
            end: Data end time, inclusive.
            marketplace_ids: Marketplace ids of the request; None means all in the region.
            as_of: Time the report is generated; versions after it do not exist yet.

        Returns:
            A lazy iterator of rows. Each row is a list of as many strings as
            `header(report_type)` has columns, with "" for blank values.

        Raises:
            ValueError: At call time, if start is after end or a marketplace id is not in the
                region.
        """
        start_s = math.ceil(_as_utc(start).timestamp())
        end_s = math.floor(_as_utc(end).timestamp())
        as_of_s = math.floor(_as_utc(as_of).timestamp())
        if start_s > end_s:
            raise ValueError(
                f"Invalid report window: start {start.isoformat()} is after end "
                f"{end.isoformat()}. Pass a start at or before the end."
            )

        if report_type is ReportType.LAST_UPDATE:
            version_cutoff = min(end_s, as_of_s)
            version_floor = start_s
            first_purchase = start_s - int(MAX_ORDER_LIFETIME.total_seconds())
            last_purchase = version_cutoff
            channel_filter = None
        else:
            version_cutoff = as_of_s
            version_floor = None
            first_purchase = start_s
            last_purchase = min(end_s, as_of_s)
            channel_filter = self._channel_filter(marketplace_ids)

        first_purchase = max(first_purchase, self._first_purchase)
        if self._last_purchase is not None:
            last_purchase = min(last_purchase, self._last_purchase)
        if first_purchase > last_purchase:
            return iter(())

        with_cpf = self.config.include_cpf and report_type is ReportType.ORDER_DATE
        logger.debug(
            "Generating %s rows for purchases from %s to %s (seed %d)",
            report_type.name,
            datetime.fromtimestamp(first_purchase, UTC).isoformat(),
            datetime.fromtimestamp(last_purchase, UTC).isoformat(),
            self.config.seed,
        )
        return self._iter_window_rows(
            first_purchase, last_purchase, version_cutoff, version_floor, channel_filter, with_cpf
        )

    def _iter_window_rows(
        self,
        first_purchase: int,
        last_purchase: int,
        version_cutoff: int,
        version_floor: int | None,
        channel_filter: frozenset[int] | None,
        with_cpf: bool,
    ) -> Iterator[list[str]]:
        first_day = first_purchase // _SECONDS_PER_DAY
        last_day = last_purchase // _SECONDS_PER_DAY
        for day in range(first_day, last_day + 1):
            yield from self._iter_day_rows(
                day,
                first_purchase,
                last_purchase,
                version_cutoff,
                version_floor,
                channel_filter,
                with_cpf,
            )

    def _channel_filter(self, marketplace_ids: Collection[str] | None) -> frozenset[int] | None:
        if marketplace_ids is None:
            return None
        unknown = [mid for mid in marketplace_ids if mid not in self._channel_index_by_id]
        if unknown:
            region = self.config.region
            valid = [m.marketplace_id for m in marketplaces_in_region(region)]
            raise ValueError(
                f"Invalid marketplace ids {unknown} for region {region.name}: expected ids from "
                f"{valid}. A marketplace of another region needs a history of that region."
            )
        return frozenset(self._channel_index_by_id[mid] for mid in marketplace_ids)

    def _orders_on_day(self, day: int) -> int:
        rng = random.Random(f"{self.config.seed}:{day}:count")
        return round(self.config.orders_per_day * (0.85 + 0.3 * rng.random()))

    def _date_prefix(self, day: int) -> str:
        prefix = self._date_prefixes.get(day)
        if prefix is None:
            prefix = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
            self._date_prefixes[day] = prefix
        return prefix

    def _iter_day_rows(
        self,
        day: int,
        first_purchase: int,
        last_purchase: int,
        version_cutoff: int,
        version_floor: int | None,
        channel_filter: frozenset[int] | None,
        with_cpf: bool,
    ) -> Iterator[list[str]]:
        """Yield the rows of the orders purchased on one day that the report selects.

        Order `i` of the `n` orders of a day is purchased within
        [i * 86400 / n, (i + 1) * 86400 / n) seconds after midnight. A time range therefore maps
        to a range of order numbers, and the orders outside it are never generated.
        """
        order_count = self._orders_on_day(day)
        if order_count == 0:
            return
        day_start = day * _SECONDS_PER_DAY
        low = max(first_purchase - day_start, 0)
        high = min(last_purchase - day_start, _SECONDS_PER_DAY - 1)
        if low > high:
            return
        first_order = max(low * order_count // _SECONDS_PER_DAY - 1, 0)
        last_order = min((high + 1) * order_count // _SECONDS_PER_DAY + 1, order_count - 1)

        seed = self.config.seed
        extra = self.config.extra_column is not None
        # Positions in a full row (with cpf and the extra column) of the optional values.
        cpf_position = _CPF_POSITION
        extra_position = ORDER_REPORT_HEADER.index(_EXTRA_COLUMN_BEFORE) + (1 if with_cpf else 0)

        date_prefix = self._date_prefix(day)
        time_of_day = self._time_of_day
        lifecycle_table = self._lifecycle_table
        channel_table = self._channel_table
        channels = self._channels
        product_fields = [(product.name, product.sku, product.asin) for product in self._products]
        date_prefixes = self._date_prefixes
        quantity_texts = [str(quantity) for quantity in range(_MAX_QUANTITY + 1)]
        line_counts = _LINE_COUNT_TABLE
        quantities = _QUANTITY_TABLE
        # The 14 digits after the order id's prefix are an affine map of (day, order) modulo
        # 10**14 with a multiplier coprime with 10, so distinct orders get distinct ids.
        order_number_base = day * 10_000_000 * _ORDER_ID_MULTIPLIER + seed * 1_000_003

        first_block = first_order // _BLOCK_SIZE
        last_block = last_order // _BLOCK_SIZE
        for block in range(first_block, last_block + 1):
            block_start = block * _BLOCK_SIZE
            block_size = min(_BLOCK_SIZE, order_count - block_start)
            rng = random.Random(f"{seed}:{day}:{block}")
            bits = rng.randbytes(block_size * _BYTES_PER_ORDER)

            for order in range(
                max(first_order, block_start), min(last_order, block_start + block_size - 1) + 1
            ):
                offset = (order - block_start) * _BYTES_PER_ORDER
                timing = int.from_bytes(bits[offset : offset + _TIMING_BYTES], "little")

                # Purchase time and versions
                second = (
                    order * _SECONDS_PER_DAY + ((timing & 0xFFFF) * _SECONDS_PER_DAY >> 16)
                ) // order_count
                purchase = day_start + second
                if purchase < first_purchase or purchase > last_purchase:
                    continue
                lifecycle = lifecycle_table[(timing >> 16) & 0xFF]
                version_time = purchase + ((timing >> 24) & 0x7FF) % 1800
                if version_time > version_cutoff:
                    continue
                version = 0
                delay_bits = timing >> 35
                for low_delay, high_delay in lifecycle.delays:
                    next_time = (
                        version_time + low_delay + (delay_bits & 0x3FFFF) % (high_delay - low_delay)
                    )
                    delay_bits >>= 18
                    if next_time > version_cutoff:
                        break
                    version_time = next_time
                    version += 1
                if version_floor is not None and version_time < version_floor:
                    continue
                order_status, item_status, priced = lifecycle.versions[version]

                # Order-level values
                content = int.from_bytes(
                    bits[offset + _TIMING_BYTES : offset + _BYTES_PER_ORDER], "little"
                )
                channel_index = channel_table[content & 0x3FF]
                if channel_filter is not None and channel_index not in channel_filter:
                    continue
                channel = channels[channel_index]
                fulfillment = lifecycle.fulfillment_channel
                if fulfillment is None:
                    fulfillment = _FULFILLMENT_AFN if content & 0x400 else _FULFILLMENT_MFN
                afn = fulfillment == _FULFILLMENT_AFN
                service_levels = _SHIP_SERVICE_LEVELS_AFN if afn else _SHIP_SERVICE_LEVELS_MFN
                ship_service_level = service_levels[(content >> 11) & 0x3]
                city, state, postal_code = channel.cities[(content >> 13) & 0x3F]
                line_count = line_counts[(content >> 19) & 0x7F]
                duplicate_line = line_count > 1 and (content >> 26) & 0x7 == 0
                business = (content >> 29) & 0x1F < 2
                purchase_order_number = ""
                price_designation = ""
                if business:
                    if (content >> 34) & 0x1:
                        purchase_order_number = f"PO-{(content >> 35) & 0xFFFFF:07d}"
                    # NOTE: "BusinessPrice" is the value seen in Amazon's order APIs; its use in
                    # this column of the flat file is assumed.
                    if (content >> 55) & 0x1:
                        price_designation = "BusinessPrice"
                promoted = priced and (content >> 56) & 0xF < 2
                shipping_option = (content >> 60) & 0x7
                shipped_charged = priced and (content >> 63) & 0x7 < (5 if not afn else 1)
                gift_wrapped = priced and (content >> 66) & 0x3F == 0
                tax_class = (content >> 72) & 0x3
                partial_cancel = (
                    order_status == "Shipped" and line_count > 1 and (content >> 74) & 0xF == 0
                )
                cpf = ""
                if with_cpf and channel.cpf_numbers:
                    cpf = channel.cpf_numbers[(content >> 78) & 0xFF]
                extra_value = "" if (content >> 86) & 0x7 else "true"
                item_bits = content >> 89

                order_number = (order_number_base + order * _ORDER_ID_MULTIPLIER) % 10**14
                amazon_order_id = (
                    f"{111 + (order & 3)}-{order_number // 10_000_000:07d}-"
                    f"{order_number % 10_000_000:07d}"
                )
                merchant_order_id = amazon_order_id if afn or (content >> 149) & 0x1 else ""
                purchase_date = date_prefix + time_of_day[second]
                updated_day = version_time // _SECONDS_PER_DAY
                updated_prefix = date_prefixes.get(updated_day) or self._date_prefix(updated_day)
                last_updated_date = (
                    updated_prefix + time_of_day[version_time - updated_day * _SECONDS_PER_DAY]
                )
                promotion_ids = ""
                if promoted:
                    # NOTE: real promotion-id values and the separator between several ids are
                    # not documented; one made-up id per order is written here.
                    promotion_ids = f"PLM-{(content >> 150) & 0xFFFF:05d}"
                sales_channel = channel.sales_channel
                currency = channel.currency
                country = channel.ship_country

                # One row per line
                first_line = None
                for line in range(line_count):
                    if line == 1 and duplicate_line:
                        product_index, quantity = first_line
                    else:
                        product_index = item_bits & 0xFF
                        quantity = quantities[(item_bits >> 8) & 0xF]
                        item_bits >>= 12
                    if line == 0:
                        first_line = (product_index, quantity)
                    product_name, sku, asin = product_fields[product_index]
                    line_status = item_status
                    if partial_cancel and line == line_count - 1:
                        line_status = "Cancelled"
                    if priced:
                        item_price = channel.line_prices[product_index][quantity]
                        item_tax = channel.line_taxes[product_index][quantity][tax_class]
                        item_discount = (
                            channel.line_discounts[product_index][quantity] if promoted else ""
                        )
                    else:
                        item_price = item_tax = item_discount = ""
                    shipping_price = shipping_tax = ship_discount = ""
                    gift_wrap_price = gift_wrap_tax = ""
                    if line == 0:
                        if shipped_charged:
                            shipping_price, shipping_tax, ship_discount = channel.shipping[
                                shipping_option
                            ]
                            if not promoted:
                                ship_discount = ""
                        if gift_wrapped:
                            gift_wrap_price, gift_wrap_tax = channel.gift_wrap

                    row = [
                        amazon_order_id,
                        merchant_order_id,
                        purchase_date,
                        last_updated_date,
                        order_status,
                        fulfillment,
                        sales_channel,
                        "",
                        "",
                        ship_service_level,
                        product_name,
                        sku,
                        asin,
                        line_status,
                        quantity_texts[quantity],
                        currency,
                        item_price,
                        item_tax,
                        shipping_price,
                        shipping_tax,
                        gift_wrap_price,
                        gift_wrap_tax,
                        item_discount,
                        ship_discount,
                        city,
                        state,
                        postal_code,
                        country,
                        promotion_ids,
                        "true" if business else "false",
                        purchase_order_number,
                        price_designation,
                    ]
                    if with_cpf:
                        row.insert(cpf_position, cpf)
                    if extra:
                        row.insert(extra_position, extra_value)
                    yield row
