"""Connecting like production: TLS and mTLS through a real TLS endpoint in front of the
dev server, set up only through the settings (TEMPORAL_TLS_*), as every process does."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from cli.main import explain
from language.validate import load_catalog
from processes.settings import ServiceSettings, SettingsError
from processes.temporal import connect, tls_config
from processes.workers import build_workers
from store.db import open_database
from store.migrate import upgrade
from tests.e2e.conftest import journeys_copy
from tests.e2e.test_cli_on_dev_server import cli, eventually
from tests.e2e.tls_proxy import SERVER_NAME, Authority, tls_proxy
from tests.runtime.support import CountingSender


def settings_for(address: str, **tls: Path | str) -> ServiceSettings:
    names = {"ca": "TEMPORAL_TLS_CA", "cert": "TEMPORAL_TLS_CERT", "key": "TEMPORAL_TLS_KEY",
             "server_name": "TEMPORAL_TLS_SERVER_NAME"}
    return ServiceSettings.from_mapping({"TEMPORAL_ADDRESS": address, **{names[k]: str(v) for k, v in tls.items()}})


async def test_tls_with_the_servers_ca_connects_and_a_wrong_ca_is_refused(tmp_path: Path, dev_address: str) -> None:
    ca = Authority.create(tmp_path, "journeys-test-ca")
    stranger = Authority.create(tmp_path, "some-other-ca")
    async with tls_proxy(dev_address, ca.issue(tmp_path, SERVER_NAME, server=True)) as address:
        client = await connect(settings_for(address, ca=ca.cert, server_name=SERVER_NAME))
        described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))
        assert described.namespace_info.name == "default"
        assert await client.count_workflows() is not None  # an ordinary call, through TLS

        with pytest.raises(RuntimeError, match="UnknownIssuer") as refused:
            await connect(settings_for(address, ca=stranger.cert, server_name=SERVER_NAME))
        assert (explain(refused.value) or "").startswith("the Temporal server's TLS certificate was refused")
        with pytest.raises(RuntimeError, match="NotValidForName"):  # the right CA, the wrong name
            await connect(settings_for(address, ca=ca.cert, server_name="elsewhere.test"))
        with pytest.raises(RuntimeError, match="Failed client connect"):  # plain gRPC to a TLS port
            await connect(settings_for(address))


async def test_mtls_refuses_a_client_without_a_certificate_and_accepts_one_with(tmp_path: Path,
                                                                               dev_address: str) -> None:
    ca = Authority.create(tmp_path, "journeys-test-ca")
    clients = Authority.create(tmp_path, "client-ca")
    worker = clients.issue(tmp_path, "journeys-worker", server=False)
    intruder = Authority.create(tmp_path, "intruder-ca").issue(tmp_path, "intruder", server=False)
    async with tls_proxy(dev_address, ca.issue(tmp_path, SERVER_NAME, server=True), client_ca=clients.cert) as address:
        # The handshake ends with the proxy's alert: the first call finds the connection closed.
        with pytest.raises(RuntimeError, match="Failed client connect"):
            await connect(settings_for(address, ca=ca.cert, server_name=SERVER_NAME))
        with pytest.raises(RuntimeError, match="Failed client connect"):  # a certificate from another CA
            await connect(settings_for(address, ca=ca.cert, server_name=SERVER_NAME, cert=intruder.cert,
                                       key=intruder.key))
        settings = settings_for(address, ca=ca.cert, server_name=SERVER_NAME, cert=worker.cert, key=worker.key)
        client = await connect(settings)
        assert await client.count_workflows() is not None
        await a_command_and_the_worker_run_a_workflow_through(tmp_path, settings, client)


async def a_command_and_the_worker_run_a_workflow_through(tmp_path: Path, settings: ServiceSettings,
                                                          client: Client) -> None:
    """`journeys customer` (its own process, its settings from the environment) opts a
    customer in; the double opt-in text is a workflow the worker here runs: both over mTLS."""
    journeys = journeys_copy(tmp_path)
    database = f"sqlite:///{tmp_path / 'journeys.db'}"
    db = open_database(database)
    upgrade(db)
    sender = CountingSender()
    workers = build_workers(client, load_catalog(journeys), db, sender)
    running = [asyncio.create_task(worker.run()) for worker in workers]
    env = {name: str(value) for name, value in {
        "TEMPORAL_ADDRESS": settings.temporal_address, "TEMPORAL_TLS_CA": settings.temporal_tls_ca,
        "TEMPORAL_TLS_CERT": settings.temporal_tls_cert, "TEMPORAL_TLS_KEY": settings.temporal_tls_key,
        "TEMPORAL_TLS_SERVER_NAME": settings.temporal_tls_server_name,
        "JOURNEYS_DATABASE_URL": database, "JOURNEYS_DIR": journeys}.items()}
    try:
        done = await cli("customer", "c-tls-1", "--phone", "(201) 555-0123", "--consent", "opted_in",
                         "--consent-text", "Reply YES", env=env)
        assert done.returncode == 0, done.stderr
        assert await eventually(lambda: any("reply YES" in sms.body for sms in sender.sent))
        refused = await cli("customer", "c-tls-2", "--phone", "(201) 555-0124", "--consent", "opted_in",
                            env={**env, "TEMPORAL_TLS_CERT": "", "TEMPORAL_TLS_KEY": str(tmp_path / "nope.key")})
        assert refused.returncode == 1 and "error: TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together" in refused.stderr
    finally:
        for worker in workers:
            await worker.shutdown()
        for task in running:
            await task
        db.dispose()


def test_tls_settings_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together"):
        tls_config(settings_for("x:1", cert=tmp_path / "client.crt"))
    with pytest.raises(SettingsError, match=re.escape(f"TEMPORAL_TLS_CA={tmp_path / 'missing.pem'}: cannot read")):
        tls_config(settings_for("x:1", ca=tmp_path / "missing.pem"))
    (tmp_path / "notes.txt").write_text("not a certificate")
    with pytest.raises(SettingsError, match=r"TEMPORAL_TLS_CA=.*notes\.txt: not a PEM file"):
        tls_config(settings_for("x:1", ca=tmp_path / "notes.txt"))
    with pytest.raises(SettingsError, match="TEMPORAL_TLS is false"):
        tls_config(ServiceSettings.from_mapping({"TEMPORAL_TLS": "false", "TEMPORAL_TLS_CA": str(tmp_path)}))
    assert tls_config(ServiceSettings.from_mapping({})) is False
    assert tls_config(ServiceSettings.from_mapping({"TEMPORAL_TLS": "true"})) is True  # the system's roots
    # Temporal Cloud with an API key: TLS with the system's roots, the key a secret.
    cloud = ServiceSettings.from_mapping({"TEMPORAL_API_KEY": "cloud-api-key-123456"})
    assert tls_config(cloud) is True and "cloud-api-key-123456" not in repr(cloud)
    assert "cloud-api-key-123456" in cloud.server_secrets()
    ca = Authority.create(tmp_path, "ca")
    config = tls_config(settings_for("x:1", ca=ca.cert, server_name="temporal.internal"))
    assert not isinstance(config, bool)
    assert config.server_root_ca_cert == ca.cert.read_bytes() and config.domain == "temporal.internal"
