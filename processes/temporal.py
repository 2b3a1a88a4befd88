"""Connecting to Temporal: the one place clients are made (TLS, API key, the data
converter with its payload codec), the search attributes, a quiet runtime."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from processes.codec import codec_from
from processes.settings import ServiceSettings, SettingsError
from workflows.io import SEARCH_ATTRIBUTES


async def connect(settings: ServiceSettings) -> Client:
    """A client as the settings say: address, namespace, TLS, API key, payload encryption.
    Workers made on it use its data converter, so they encrypt too."""
    return await connect_to(settings.temporal_address, settings.temporal_namespace, tls=tls_config(settings),
                            api_key=settings.secret("temporal_api_key"), data_converter=data_converter(settings))


async def connect_to(address: str, namespace: str = "default", *, tls: TLSConfig | bool = False,
                     api_key: str | None = None,
                     data_converter: DataConverter = pydantic_data_converter) -> Client:
    return await Client.connect(address, namespace=namespace, tls=tls, api_key=api_key,
                                data_converter=data_converter)


def data_converter(settings: ServiceSettings) -> DataConverter:
    """Pydantic payloads; with JOURNEYS_PAYLOAD_KEYS, sealed by the codec, and failure
    messages and stack traces moved into (sealed) payloads too."""
    codec = codec_from(settings.secret("payload_keys"))
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec,
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


def tls_config(settings: ServiceSettings) -> TLSConfig | bool:
    """False for plain TCP; True for TLS with the system's roots; a TLSConfig for a private
    CA, a client certificate (mTLS) or another server name. The files are read here."""
    if not settings.uses_tls():
        return False
    if not any((settings.temporal_tls_ca, settings.temporal_tls_cert, settings.temporal_tls_server_name)):
        return True
    return TLSConfig(
        server_root_ca_cert=_read_pem("TEMPORAL_TLS_CA", settings.temporal_tls_ca),
        client_cert=_read_pem("TEMPORAL_TLS_CERT", settings.temporal_tls_cert),
        client_private_key=_read_pem("TEMPORAL_TLS_KEY", settings.temporal_tls_key),
        domain=settings.temporal_tls_server_name,
    )


def _read_pem(variable: str, path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        content = path.read_bytes()
    except OSError as err:
        raise SettingsError(f"{variable}={path}: cannot read the file ({err.strerror or err})") from None
    if b"-----BEGIN " not in content:
        raise SettingsError(f"{variable}={path}: not a PEM file (no -----BEGIN line)")
    return content


_quiet_runtime: Runtime | None = None


def quiet_runtime() -> Runtime:
    """A Temporal runtime that logs only errors: for one-shot commands like simulate."""
    global _quiet_runtime
    if _quiet_runtime is None:
        _quiet_runtime = Runtime(telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))
    return _quiet_runtime


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` flags that register the search attributes."""
    flags: list[str] = []
    for name, kind in SEARCH_ATTRIBUTES.items():
        flags += ["--search-attribute", f"{name}={kind}"]
    return flags


async def register_search_attributes(client: Client) -> None:
    """For servers started without the flags (the time-skipping test server)."""
    try:
        await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in SEARCH_ATTRIBUTES},
        ))
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise
