"""Connecting to Temporal: one data converter, the search attributes, a quiet runtime."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode

from processes.settings import ServiceSettings
from workflows.io import SEARCH_ATTRIBUTES


async def connect(settings: ServiceSettings) -> Client:
    return await connect_to(settings.temporal_address, settings.temporal_namespace)


async def connect_to(address: str, namespace: str = "default") -> Client:
    return await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter)


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
