"""Connecting to Temporal: one data converter, the search attributes, the task queues."""

from __future__ import annotations

import os

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode

from workflows.io import SEARCH_ATTRIBUTES

DEFAULT_ADDRESS = "localhost:7233"
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")

JOURNEY_ID = SearchAttributeKey.for_keyword("JourneyId")
JOURNEY_VERSION = SearchAttributeKey.for_keyword("JourneyVersion")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")


async def connect(address: str | None = None) -> Client:
    return await Client.connect(
        address or os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS),
        namespace=NAMESPACE,
        data_converter=pydantic_data_converter,
    )


_quiet_runtime: Runtime | None = None


def quiet_runtime() -> Runtime:
    """A Temporal runtime that logs only errors: for one-shot commands like simulate."""
    global _quiet_runtime
    if _quiet_runtime is None:
        _quiet_runtime = Runtime(telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))
    return _quiet_runtime


def start_attributes(journey_id: str, version: str, customer_id: str) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(JOURNEY_ID, journey_id),
        SearchAttributePair(JOURNEY_VERSION, version),
        SearchAttributePair(CUSTOMER_ID, customer_id),
    ])


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
