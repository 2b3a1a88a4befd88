"""Stopping a customer's runs for good (erasure): Temporal's terminate, with a reason
that names nothing personal. The erasure use case takes it as a ``RunStopper``."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode


@dataclass
class TemporalRunStopper:
    client: Client

    async def stop(self, workflow_id: str, reason: str) -> bool:
        """Terminate the workflow's current run; False if none is running."""
        try:
            await self.client.get_workflow_handle(workflow_id).terminate(reason=reason)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:  # never started, or already closed
                return False
            raise
        return True
