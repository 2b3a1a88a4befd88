"""Connecting to Temporal: the one place clients are made (TLS, API key, the data
converter with its payload codec), the search attributes, a quiet runtime and one that
exports the SDK's metrics."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import LoggingConfig, PrometheusConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from processes.codec import codec_from
from processes.settings import ServiceSettings, SettingsError
from workflows.io import SEARCH_ATTRIBUTES


async def connect(settings: ServiceSettings, runtime: Runtime | None = None) -> Client:
    """A client as the settings say: address, namespace, TLS, API key, payload encryption.
    Workers made on it use its data converter, so they encrypt too, and its ``runtime``
    (default: the SDK's), so they report their metrics to it."""
    return await connect_to(settings.temporal_address, settings.temporal_namespace, tls=tls_config(settings),
                            api_key=settings.secret("temporal_api_key"), data_converter=data_converter(settings),
                            runtime=runtime)


async def connect_to(address: str, namespace: str = "default", *, tls: TLSConfig | bool = False,
                     api_key: str | None = None,
                     data_converter: DataConverter = pydantic_data_converter,
                     runtime: Runtime | None = None) -> Client:
    return await Client.connect(address, namespace=namespace, tls=tls, api_key=api_key,
                                data_converter=data_converter, runtime=runtime)


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


def metrics_runtime() -> tuple[Runtime, str]:
    """A runtime whose clients and workers export the SDK's metrics (Prometheus text, durations
    in seconds) on a port of its own on the loopback interface, and that exporter's URL: the
    worker's /metrics reads it there and serves it together with the engine's own series."""
    for attempt in range(3):
        with socket.socket() as probe:  # the SDK does not tell which port it bound: pick a free one
            probe.bind(("127.0.0.1", 0))
            address = f"127.0.0.1:{probe.getsockname()[1]}"
        try:
            runtime = Runtime(telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=address, durations_as_seconds=True)))
        except ValueError:  # another process took the port in between
            if attempt == 2:
                raise
            continue
        return runtime, f"http://{address}/metrics"
    raise AssertionError("unreachable")


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
