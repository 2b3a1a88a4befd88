"""The one settings object: every process reads the environment here, once, and the
composition code passes what each part needs down to it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from store.db import DEFAULT_URL


class SettingsError(ValueError):
    """The settings cannot work as given (the message says which and why)."""


class ServiceSettings(BaseSettings):
    """The environment of the engine's processes (see the README's Configuration)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_ignore_empty=True)

    temporal_address: str = Field("localhost:7233", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field("default", min_length=1, validation_alias="TEMPORAL_NAMESPACE")
    journeys_dir: Path = Field(Path("journeys"), validation_alias="JOURNEYS_DIR")
    database_url: str = Field(DEFAULT_URL, min_length=1, validation_alias="JOURNEYS_DATABASE_URL")
    sms_sender: Literal["console", "twilio"] = Field("console", validation_alias="JOURNEYS_SMS_SENDER")
    sms_per_second: float | None = Field(None, gt=0, validation_alias="JOURNEYS_SMS_PER_SECOND")
    fanout_per_second: float = Field(50.0, ge=0, validation_alias="JOURNEYS_FANOUT_PER_SECOND")
    # After a send whose outcome is unknown, how long until the provider's records are
    # trusted to show the message if it has it (then: sent again).
    settle_after_seconds: float = Field(120.0, gt=0, validation_alias="JOURNEYS_SETTLE_AFTER_SECONDS")
    api_token: SecretStr | None = Field(None, validation_alias="JOURNEYS_API_TOKEN")
    public_url: str | None = Field(None, validation_alias="JOURNEYS_PUBLIC_URL")
    twilio_account_sid: str | None = Field(None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(None, validation_alias="TWILIO_AUTH_TOKEN")
    shopify_webhook_secret: SecretStr | None = Field(None, validation_alias="JOURNEYS_SHOPIFY_WEBHOOK_SECRET")
    woocommerce_webhook_secret: SecretStr | None = Field(None, validation_alias="JOURNEYS_WOOCOMMERCE_WEBHOOK_SECRET")
    # Bounce and complaint webhooks (api/routes/email_events.py): unset, that provider's are refused.
    mailgun_webhook_signing_key: SecretStr | None = Field(None, validation_alias="JOURNEYS_MAILGUN_WEBHOOK_SIGNING_KEY")
    postmark_webhook_password: SecretStr | None = Field(None, validation_alias="JOURNEYS_POSTMARK_WEBHOOK_PASSWORD")
    # The shops' admin APIs (shops/): platform-backed coupon codes and `journeys import shopify`.
    shopify_shop_domain: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$",
                                            validation_alias="JOURNEYS_SHOPIFY_SHOP_DOMAIN")
    shopify_admin_token: SecretStr | None = Field(None, validation_alias="JOURNEYS_SHOPIFY_ADMIN_TOKEN")
    shopify_admin_base_url: str | None = Field(None, validation_alias="JOURNEYS_SHOPIFY_ADMIN_BASE_URL")
    woocommerce_url: str | None = Field(None, pattern=r"^https?://", validation_alias="JOURNEYS_WOOCOMMERCE_URL")
    woocommerce_key: SecretStr | None = Field(None, validation_alias="JOURNEYS_WOOCOMMERCE_KEY")
    woocommerce_secret: SecretStr | None = Field(None, validation_alias="JOURNEYS_WOOCOMMERCE_SECRET")
    shop_http_timeout: float = Field(10.0, gt=0, validation_alias="JOURNEYS_SHOP_HTTP_TIMEOUT")
    twilio_api_base_url: str | None = Field(None, validation_alias="TWILIO_API_BASE_URL")
    twilio_http_timeout: float = Field(10.0, gt=0, validation_alias="TWILIO_HTTP_TIMEOUT")
    # Email (messaging/senders/email.py): the console (default) or an SMTP relay.
    email_sender: Literal["console", "smtp"] = Field("console", validation_alias="JOURNEYS_EMAIL_SENDER")
    email_from: str = Field("shop@journeys.invalid", min_length=3, validation_alias="JOURNEYS_EMAIL_FROM")
    smtp_host: str | None = Field(None, validation_alias="JOURNEYS_SMTP_HOST")
    smtp_port: int | None = Field(None, ge=1, le=65535, validation_alias="JOURNEYS_SMTP_PORT")
    smtp_username: str | None = Field(None, validation_alias="JOURNEYS_SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, validation_alias="JOURNEYS_SMTP_PASSWORD")
    smtp_security: Literal["starttls", "tls", "none"] = Field("starttls", validation_alias="JOURNEYS_SMTP_SECURITY")
    smtp_timeout: float = Field(30.0, gt=0, validation_alias="JOURNEYS_SMTP_TIMEOUT")
    smtp_tls_ca: Path | None = Field(None, validation_alias="JOURNEYS_SMTP_TLS_CA")  # else the system's CAs
    # Connecting to a secured Temporal (a self-hosted cluster with TLS/mTLS, Temporal Cloud):
    # unset TEMPORAL_TLS means "TLS if any TLS file, server name or API key is given".
    temporal_tls: bool | None = Field(None, validation_alias="TEMPORAL_TLS")
    temporal_tls_ca: Path | None = Field(None, validation_alias="TEMPORAL_TLS_CA")
    temporal_tls_cert: Path | None = Field(None, validation_alias="TEMPORAL_TLS_CERT")
    temporal_tls_key: Path | None = Field(None, validation_alias="TEMPORAL_TLS_KEY")
    temporal_tls_server_name: str | None = Field(None, validation_alias="TEMPORAL_TLS_SERVER_NAME")
    temporal_api_key: SecretStr | None = Field(None, validation_alias="TEMPORAL_API_KEY")
    # "id:base64 key,..." (processes/codec.py): the first encrypts, all decrypt. Unset: no encryption.
    payload_keys: SecretStr | None = Field(None, validation_alias="JOURNEYS_PAYLOAD_KEYS")
    codec_token: SecretStr | None = Field(None, validation_alias="JOURNEYS_CODEC_TOKEN")
    codec_cors_origins: str = Field("http://localhost:8233", validation_alias="JOURNEYS_CODEC_CORS_ORIGINS")
    # The worker's HTTP endpoint (/metrics, /healthz, /readyz): unset, none is served.
    worker_metrics_port: int | None = Field(None, ge=1, le=65535, validation_alias="JOURNEYS_WORKER_METRICS_PORT")
    worker_metrics_host: str = Field("0.0.0.0", min_length=1, validation_alias="JOURNEYS_WORKER_METRICS_HOST")
    # On SIGTERM, how long activities in flight get to finish before they are cancelled.
    worker_shutdown_seconds: float = Field(30.0, gt=0, validation_alias="JOURNEYS_WORKER_SHUTDOWN_SECONDS")
    # The sticky cache: journey runs a worker process keeps in memory between their workflow
    # tasks. Each costs memory (docs/operations.md, Memory); one not cached is replayed from
    # its history when its next task comes. 0 turns the cache off.
    worker_max_cached_workflows: int = Field(2000, ge=0, validation_alias="JOURNEYS_WORKER_MAX_CACHED_WORKFLOWS")
    log_format: Literal["text", "json"] = Field("text", validation_alias="JOURNEYS_LOG_FORMAT")
    # The key of erased numbers' keyed hashes (unset: one generated and kept in the database).
    pseudonym_key: SecretStr | None = Field(None, min_length=16, validation_alias="JOURNEYS_PSEUDONYM_KEY")
    # Worker Deployments (processes/versioning.py): journey runs stay on the build they started on.
    worker_versioning: bool = Field(False, validation_alias="JOURNEYS_WORKER_VERSIONING")
    deployment_name: str = Field("journeys", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                                 validation_alias="JOURNEYS_DEPLOYMENT_NAME")
    build_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_+.-]{1,64}$", validation_alias="JOURNEYS_BUILD_ID")

    @classmethod
    def from_mapping(cls, environ: Mapping[str, str]) -> ServiceSettings:
        """Settings from ``environ`` alone (not the process environment): for tests and
        for processes that hand a child its own environment."""
        return cls.model_validate({k: v for k, v in environ.items() if v != ""})

    def with_defaults(self, **defaults: object) -> ServiceSettings:
        """A copy where each field the environment left unset takes ``defaults``' value
        (``journeys dev`` fills in its local choices this way)."""
        unset = {name: value for name, value in defaults.items() if name not in self.model_fields_set}
        return type(self).model_validate({**dict(self), **unset})  # validated: "token" becomes a SecretStr

    def secret(self, name: Literal["api_token", "twilio_auth_token", "temporal_api_key", "payload_keys",
                                   "codec_token", "pseudonym_key", "shopify_webhook_secret",
                                   "woocommerce_webhook_secret", "smtp_password", "mailgun_webhook_signing_key",
                                   "postmark_webhook_password", "shopify_admin_token", "woocommerce_key",
                                   "woocommerce_secret"]) -> str | None:
        value: SecretStr | None = getattr(self, name)
        return value.get_secret_value() if value is not None else None

    def server_secrets(self) -> tuple[str, ...]:
        """What no text may ever hold: the tokens, the pseudonym key and the database password. Values under
        8 characters are left out (too likely to occur in an ordinary text)."""
        try:
            password = make_url(self.database_url).password
        except ArgumentError:  # not a URL: then there is no password in it either
            password = None
        values = [self.secret("api_token"), self.secret("twilio_auth_token"), password,
                  self.secret("temporal_api_key"), self.secret("codec_token"), self.secret("pseudonym_key"),
                  self.secret("shopify_webhook_secret"), self.secret("woocommerce_webhook_secret"),
                  self.secret("smtp_password"), self.secret("mailgun_webhook_signing_key"),
                  self.secret("postmark_webhook_password"), self.secret("shopify_admin_token"),
                  self.secret("woocommerce_key"), self.secret("woocommerce_secret")]
        keys = self.secret("payload_keys") or ""
        values += [part.partition(":")[2].strip() for part in keys.split(",")]  # each key, without its id
        return tuple(value for value in values if value and len(value) >= 8)

    def uses_tls(self) -> bool:
        """TLS to Temporal: as TEMPORAL_TLS says, else implied by any TLS setting or an API key
        (Temporal Cloud takes API keys over TLS only)."""
        implied = any((self.temporal_tls_ca, self.temporal_tls_cert, self.temporal_tls_key,
                       self.temporal_tls_server_name, self.temporal_api_key))
        if self.temporal_tls is False and any((self.temporal_tls_ca, self.temporal_tls_cert, self.temporal_tls_key)):
            raise SettingsError("TEMPORAL_TLS is false but TEMPORAL_TLS_CA, TEMPORAL_TLS_CERT or TEMPORAL_TLS_KEY "
                                "is set: unset the files, or TEMPORAL_TLS")
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            raise SettingsError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (the client certificate "
                                "for mTLS and its private key): set both or neither")
        return self.temporal_tls if self.temporal_tls is not None else implied
