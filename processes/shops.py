"""Which shop platforms' admin APIs a process can reach: Shopify with a shop domain and
an Admin API token, WooCommerce with its URL and a REST key and secret."""

from __future__ import annotations

from processes.settings import ServiceSettings, SettingsError
from shops.base import DiscountPlatform
from shops.shopify import ShopifyAdmin
from shops.woocommerce import WooCommerceAdmin


def build_shopify(settings: ServiceSettings) -> ShopifyAdmin | None:
    domain, token = settings.shopify_shop_domain, settings.secret("shopify_admin_token")
    if bool(domain) != bool(token):
        raise SettingsError("JOURNEYS_SHOPIFY_SHOP_DOMAIN and JOURNEYS_SHOPIFY_ADMIN_TOKEN go together: set both "
                            "or neither")
    if not domain or not token:
        return None
    return ShopifyAdmin(domain, token, base_url=settings.shopify_admin_base_url, timeout=settings.shop_http_timeout)


def build_woocommerce(settings: ServiceSettings) -> WooCommerceAdmin | None:
    given = (settings.woocommerce_url, settings.secret("woocommerce_key"), settings.secret("woocommerce_secret"))
    if any(given) and not all(given):
        raise SettingsError("JOURNEYS_WOOCOMMERCE_URL, JOURNEYS_WOOCOMMERCE_KEY and JOURNEYS_WOOCOMMERCE_SECRET "
                            "go together: set all three or none")
    url, key, secret = given
    if not url or not key or not secret:
        return None
    return WooCommerceAdmin(url, key, secret, timeout=settings.shop_http_timeout)


def build_shops(settings: ServiceSettings) -> dict[str, DiscountPlatform]:
    """The configured platforms by name; a half-configured one stops the process."""
    found: dict[str, DiscountPlatform] = {}
    if (shopify := build_shopify(settings)) is not None:
        found["shopify"] = shopify
    if (woo := build_woocommerce(settings)) is not None:
        found["woocommerce"] = woo
    return found
