"""The one settings object: what the environment says, validated, with clear errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from processes.dev import dev_settings
from processes.settings import ServiceSettings


def test_settings_come_from_the_environment_and_empty_means_unset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = ServiceSettings.from_mapping({"TEMPORAL_ADDRESS": "temporal:7233", "JOURNEYS_SMS_PER_SECOND": "1.5",
                                             "JOURNEYS_API_TOKEN": "", "TWILIO_AUTH_TOKEN": "s3cret"})
    assert settings.temporal_address == "temporal:7233" and settings.sms_per_second == 1.5
    assert settings.api_token is None and settings.secret("twilio_auth_token") == "s3cret"
    assert "s3cret" not in repr(settings)  # secrets never reach a log line


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(ValidationError, match="JOURNEYS_SMS_PER_SECOND"):
        ServiceSettings.from_mapping({"JOURNEYS_SMS_PER_SECOND": "fast"})
    with pytest.raises(ValidationError, match="JOURNEYS_SMS_SENDER"):
        ServiceSettings.from_mapping({"JOURNEYS_SMS_SENDER": "pigeon"})


def test_dev_fills_in_only_what_the_environment_left_unset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mine = dev_settings(ServiceSettings.from_mapping({"JOURNEYS_API_TOKEN": "mine"}), tmp_path)
    assert mine.secret("api_token") == "mine" and mine.sms_sender == "console"
    assert mine.database_url == f"sqlite:///{tmp_path / 'journeys.db'}"
    assert dev_settings(ServiceSettings.from_mapping({}), tmp_path).secret("api_token") == "dev-token"


def test_the_pseudonym_key_is_a_secret_and_the_wiring_hashes_with_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import hmac

    from core.customers import pseudonyms
    from processes.wiring import open_migrated_database
    from store.db import session_scope

    key = "k3y-from-the-environment"
    settings = ServiceSettings.from_mapping({"JOURNEYS_PSEUDONYM_KEY": key,
                                             "JOURNEYS_DATABASE_URL": f"sqlite:///{tmp_path}/j.db"})
    assert key not in repr(settings) and key in settings.server_secrets()  # never in a text either
    with pytest.raises(ValidationError, match="JOURNEYS_PSEUDONYM_KEY"):
        ServiceSettings.from_mapping({"JOURNEYS_PSEUDONYM_KEY": "short"})
    db = open_migrated_database(settings)
    try:
        with session_scope(db) as session:
            expected = hmac.new(key.encode(), b"+12015550123", hashlib.sha256).hexdigest()
            assert pseudonyms.hashed(session, "+12015550123") == f"hmac:{expected}"
    finally:
        pseudonyms.use_key(db, None)
        db.dispose()


def test_the_shop_webhook_secrets_are_server_secrets() -> None:
    settings = ServiceSettings.from_mapping({"JOURNEYS_SHOPIFY_WEBHOOK_SECRET": "shpss_0123456789",
                                             "JOURNEYS_WOOCOMMERCE_WEBHOOK_SECRET": "woo-secret-0123"})
    assert settings.secret("shopify_webhook_secret") == "shpss_0123456789"
    assert "shpss_0123456789" not in repr(settings) and "woo-secret-0123" not in repr(settings)
    assert {"shpss_0123456789", "woo-secret-0123"} <= set(settings.server_secrets())


def test_the_shop_admin_credentials_are_server_secrets_and_go_together() -> None:
    from processes.settings import SettingsError
    from processes.shops import build_shops

    settings = ServiceSettings.from_mapping({"JOURNEYS_SHOPIFY_SHOP_DOMAIN": "nordic.myshopify.com",
                                             "JOURNEYS_SHOPIFY_ADMIN_TOKEN": "shpat_0123456789",
                                             "JOURNEYS_WOOCOMMERCE_URL": "https://shop.example",
                                             "JOURNEYS_WOOCOMMERCE_KEY": "ck_0123456789",
                                             "JOURNEYS_WOOCOMMERCE_SECRET": "cs_0123456789"})
    assert {"shpat_0123456789", "ck_0123456789", "cs_0123456789"} <= set(settings.server_secrets())
    assert "shpat_0123456789" not in repr(settings)
    assert sorted(build_shops(settings)) == ["shopify", "woocommerce"]
    with pytest.raises(SettingsError, match="go together"):
        build_shops(ServiceSettings.from_mapping({"JOURNEYS_SHOPIFY_SHOP_DOMAIN": "nordic.myshopify.com"}))
    with pytest.raises(SettingsError, match="all three or none"):
        build_shops(ServiceSettings.from_mapping({"JOURNEYS_WOOCOMMERCE_URL": "https://shop.example"}))
