"""The payload codec (AES-GCM, a key id per payload, rotation) and the codec server the
Temporal Web UI calls to show decoded payloads."""

from __future__ import annotations

import base64

import httpx
import pytest
from google.protobuf.json_format import MessageToDict
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes
from temporalio.exceptions import ApplicationError

from processes.codec import ENCODING, KEY_ID, EncryptionCodec, PayloadDecryptionError, PayloadKeys, codec_from
from processes.codec_server import codec_app_from
from processes.settings import ServiceSettings, SettingsError
from processes.temporal import data_converter

K1 = base64.b64encode(b"1" * 32).decode()
K2 = base64.b64encode(b"2" * 32).decode()
SECRET_TEXT = b'{"customer_id":"c-42","step":"welcome"}'


def plain(data: bytes = SECRET_TEXT) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


def codec(keys: str) -> EncryptionCodec:
    made = codec_from(keys)
    assert made is not None
    return made


async def test_a_sealed_payload_holds_no_plaintext_and_opens_again() -> None:
    sealing = codec(f"k1:{K1}")
    [sealed] = await sealing.encode([plain()])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"k1"
    assert b"c-42" not in sealed.SerializeToString() and b"json/plain" not in sealed.SerializeToString()
    [again] = await sealing.encode([plain()])
    assert again.data != sealed.data  # a fresh nonce each time: equal inputs do not look equal
    assert await sealing.decode([sealed, again]) == [plain(), plain()]


async def test_rotation_new_payloads_use_the_first_key_old_ones_still_open() -> None:
    [old] = await codec(f"k1:{K1}").encode([plain(b'"old"')])
    rotated = codec(f"k2:{K2}, k1:{K1}")
    [new] = await rotated.encode([plain(b'"new"')])
    assert new.metadata[KEY_ID] == b"k2"
    assert await rotated.decode([old, new]) == [plain(b'"old"'), plain(b'"new"')]
    with pytest.raises(PayloadDecryptionError, match="key id 'k1', which JOURNEYS_PAYLOAD_KEYS does not list"):
        await codec(f"k2:{K2}").decode([old])  # k1 dropped too early: a clear error, not garbage


async def test_a_payload_does_not_open_with_another_key_or_relabelled_or_damaged() -> None:
    [sealed] = await codec(f"k1:{K1}").encode([plain()])
    with pytest.raises(PayloadDecryptionError, match="does not open with that key"):
        await codec(f"k1:{K2}").decode([sealed])
    relabelled = Payload(metadata={"encoding": ENCODING, KEY_ID: b"k2"}, data=sealed.data)
    with pytest.raises(PayloadDecryptionError, match="does not open"):  # the key id is authenticated
        await codec(f"k1:{K1},k2:{K1}").decode([relabelled])
    damaged = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(PayloadDecryptionError):
        await codec(f"k1:{K1}").decode([damaged])


async def test_payloads_written_before_encryption_was_turned_on_still_read() -> None:
    assert await codec(f"k1:{K1}").decode([plain()]) == [plain()]


@pytest.mark.parametrize(("keys", "problem"), [
    ("   ", "holds no key"),
    (K1, "entry 1: not id:base64key"),
    (f"k1:{K1},k1:{K2}", "entry 2 ('k1'): the key id is listed twice"),
    ("k1:not*base64", "entry 1 ('k1'): the key is not valid base64"),
    (f"k1:{K1},k2:{base64.b64encode(b'short').decode()}", "entry 2 ('k2'): the key is 5 bytes, AES-256 needs 32"),
])
def test_bad_keys_say_which_entry_and_why_without_showing_a_key(keys: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=r"JOURNEYS_PAYLOAD_KEYS") as raised:
        PayloadKeys.parse(keys)
    assert problem in str(raised.value) and K1 not in str(raised.value) and K2 not in str(raised.value)


def test_every_client_gets_the_codec_from_the_settings_and_none_without_keys() -> None:
    assert data_converter(ServiceSettings.from_mapping({})) is pydantic_data_converter
    settings = ServiceSettings.from_mapping({"JOURNEYS_PAYLOAD_KEYS": f"k2:{K2},k1:{K1}"})
    converter = data_converter(settings)
    assert isinstance(converter.payload_codec, EncryptionCodec)
    # Failure messages and stack traces (which may quote inputs) are sealed too.
    assert converter.failure_converter_class is DefaultFailureConverterWithEncodedAttributes
    assert converter.payload_converter_class is pydantic_data_converter.payload_converter_class  # still pydantic
    assert K1 not in repr(settings) and {K1, K2} <= set(settings.server_secrets())


async def test_failure_messages_and_stack_traces_are_sealed_and_read_back() -> None:
    converter = data_converter(ServiceSettings.from_mapping({"JOURNEYS_PAYLOAD_KEYS": f"k1:{K1}"}))
    failure = Failure()
    await converter.encode_failure(ApplicationError("customer c-42 has no phone", type="NoPhone"), failure)
    assert b"c-42" not in failure.SerializeToString()
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    back = await converter.decode_failure(failure)
    assert isinstance(back, ApplicationError) and back.message == "customer c-42 has no phone" and back.type == "NoPhone"


def codec_http(settings: ServiceSettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=codec_app_from(settings)), base_url="http://codec")


def as_json(payloads: list[Payload]) -> dict[str, object]:
    return {"payloads": [MessageToDict(payload) for payload in payloads]}


async def test_the_codec_server_decodes_what_the_codec_sealed_and_refuses_garbage() -> None:
    settings = ServiceSettings.from_mapping({"JOURNEYS_PAYLOAD_KEYS": f"k2:{K2},k1:{K1}"})
    [sealed] = await codec(f"k1:{K1}").encode([plain()])
    async with codec_http(settings) as http:
        decoded = await http.post("/decode", json=as_json([sealed]), headers={"X-Namespace": "default"})
        assert decoded.status_code == 200
        [payload] = decoded.json()["payloads"]
        assert base64.b64decode(payload["data"]) == SECRET_TEXT
        assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
        encoded = await http.post("/encode", json=as_json([plain()]))
        [resealed] = encoded.json()["payloads"]
        assert base64.b64decode(resealed["metadata"]["encryption-key-id"]) == b"k2"
        assert (await http.post("/decode", json=encoded.json())).json() == decoded.json()

        for garbage in ({"nothing": []}, {"payloads": "x"}, {"payloads": [{"data": "not base64!"}]}):
            refused = await http.post("/decode", json=garbage)
            assert refused.status_code == 400, garbage
        assert (await http.post("/decode", content=b"{not json")).status_code == 400
        foreign = Payload(metadata={"encoding": ENCODING, KEY_ID: b"k9"}, data=b"\0" * 40)
        unknown = await http.post("/decode", json=as_json([foreign]))
        assert unknown.status_code == 400 and "'k9'" in unknown.json()["detail"]
        assert (await http.get("/decode")).status_code == 405


async def test_the_web_ui_origin_may_call_it_and_a_token_can_be_required() -> None:
    settings = ServiceSettings.from_mapping({"JOURNEYS_PAYLOAD_KEYS": f"k1:{K1}", "JOURNEYS_CODEC_TOKEN": "codec-secret-1"})
    preflight = {"Origin": "http://localhost:8233", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-namespace,authorization"}
    async with codec_http(settings) as http:
        allowed = await http.options("/decode", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://localhost:8233"
        assert (await http.options("/decode", headers={**preflight, "Origin": "https://evil.example"})).status_code == 400
        body = as_json(await codec(f"k1:{K1}").encode([plain()]))
        assert (await http.post("/decode", json=body)).status_code == 401
        assert (await http.post("/decode", json=body, headers={"Authorization": "Bearer wrong"})).status_code == 401
        ok = await http.post("/decode", json=body, headers={"Authorization": "Bearer codec-secret-1"})
        assert ok.status_code == 200


def test_the_codec_server_needs_the_keys() -> None:
    with pytest.raises(SettingsError, match="JOURNEYS_PAYLOAD_KEYS is not set"):
        codec_app_from(ServiceSettings.from_mapping({}))
