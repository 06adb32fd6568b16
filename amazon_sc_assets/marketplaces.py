"""SP-API regions, their endpoints, and the marketplace ids each region serves."""

from dataclasses import dataclass
from enum import StrEnum

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"


class Region(StrEnum):
    """SP-API selling regions; each has its own host."""

    NA = "na"
    EU = "eu"
    FE = "fe"

    @property
    def endpoint(self) -> str:
        return f"https://sellingpartnerapi-{self.value}.amazon.com"

    @property
    def sandbox_endpoint(self) -> str:
        return f"https://sandbox.sellingpartnerapi-{self.value}.amazon.com"


@dataclass(frozen=True)
class Marketplace:
    """An Amazon marketplace and the sales-channel value its rows carry in the flat files."""

    marketplace_id: str
    country_code: str
    region: Region
    sales_channel: str
    currency: str


# Source: Amazon's marketplace id table (developer-docs.amazon.com/sp-api/docs/marketplace-ids).
MARKETPLACES: dict[str, Marketplace] = {
    m.marketplace_id: m
    for m in (
        Marketplace("A2EUQ1WTGCTBG2", "CA", Region.NA, "Amazon.ca", "CAD"),
        Marketplace("ATVPDKIKX0DER", "US", Region.NA, "Amazon.com", "USD"),
        Marketplace("A1AM78C64UM0Y8", "MX", Region.NA, "Amazon.com.mx", "MXN"),
        Marketplace("A2Q3Y263D00KWC", "BR", Region.NA, "Amazon.com.br", "BRL"),
        Marketplace("A28R8C7NBKEWEA", "IE", Region.EU, "Amazon.ie", "EUR"),
        Marketplace("A1RKKUPIHCS9HS", "ES", Region.EU, "Amazon.es", "EUR"),
        Marketplace("A1F83G8C2ARO7P", "UK", Region.EU, "Amazon.co.uk", "GBP"),
        Marketplace("A13V1IB3VIYZZH", "FR", Region.EU, "Amazon.fr", "EUR"),
        Marketplace("AMEN7PMS3EDWL", "BE", Region.EU, "Amazon.com.be", "EUR"),
        Marketplace("A1805IZSGTT6HS", "NL", Region.EU, "Amazon.nl", "EUR"),
        Marketplace("A1PA6795UKMFR9", "DE", Region.EU, "Amazon.de", "EUR"),
        Marketplace("APJ6JRA9NG5V4", "IT", Region.EU, "Amazon.it", "EUR"),
        Marketplace("A2NODRKZP88ZB9", "SE", Region.EU, "Amazon.se", "SEK"),
        Marketplace("AE08WJ6YKNBMC", "ZA", Region.EU, "Amazon.co.za", "ZAR"),
        Marketplace("A1C3SOZRARQ6R3", "PL", Region.EU, "Amazon.pl", "PLN"),
        Marketplace("ARBP9OOSHTCHU", "EG", Region.EU, "Amazon.eg", "EGP"),
        Marketplace("A33AVAJ2PDY3EV", "TR", Region.EU, "Amazon.com.tr", "TRY"),
        Marketplace("A17E79C6D8DWNP", "SA", Region.EU, "Amazon.sa", "SAR"),
        Marketplace("A2VIGQ35RCS4UG", "AE", Region.EU, "Amazon.ae", "AED"),
        Marketplace("A21TJRUUN4KGV", "IN", Region.EU, "Amazon.in", "INR"),
        Marketplace("A19VAU5U5O7RUS", "SG", Region.FE, "Amazon.sg", "SGD"),
        Marketplace("A39IBJ37TRP1C6", "AU", Region.FE, "Amazon.com.au", "AUD"),
        Marketplace("A1VC38T7YXB528", "JP", Region.FE, "Amazon.co.jp", "JPY"),
    )
}


def marketplaces_in_region(region: Region) -> list[Marketplace]:
    """Return the marketplaces served by a region's host, in the table's order."""
    return [m for m in MARKETPLACES.values() if m.region is region]
