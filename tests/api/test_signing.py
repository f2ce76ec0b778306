from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.signing import generate_secret, sign, signature_headers


def test_secret_is_whsec_and_24_random_bytes():
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    assert generate_secret() != secret


def test_signature_matches_the_standard_webhooks_test_vector():
    # The example from the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    got = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_reference_library_verifies_our_headers():
    secret = generate_secret()
    body = '{"specversion":"1.0","data":{"élan":"ü"}}'.encode()
    headers = signature_headers(secret, "d-1", int(time.time()), body)
    assert Webhook(secret).verify(body, headers)["data"] == {"élan": "ü"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, headers)


def test_bad_secrets_are_rejected():
    with pytest.raises(ValueError):
        sign("not-a-secret", "id", 1, b"")
    with pytest.raises(ValueError):
        sign("whsec_!!!", "id", 1, b"")
