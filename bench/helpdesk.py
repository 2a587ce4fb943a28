"""Offline unblock responses: server time per response through the API with the PKCS#11 card key
store on SoftHSM2, next to the raw derivation in the token (the admin key CMAC inside SoftHSM2 and
the response CMAC), measured interleaved in one run; p50, p99 and the ratio of the medians.

The API path is the whole request in process (DRF's test client, no socket): token
authentication, input checks, the agent's and the card's row locks, the rate-limit counts, the
key store call, the event row and its audit event, the JSON answer.

    python bench/helpdesk.py [--requests N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support.database import bench_database


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    from pki.keys.softhsm import softhsm_token

    hsm = softhsm_token(Path(tempfile.mkdtemp(prefix="helpdesk-bench-")))
    with bench_database("helpdesk"):
        from django.conf import settings
        from rest_framework.test import APIClient

        from cards import crypto
        from cards.products import PIN_REFERENCE, serial_of_card_number
        from cms.choices import CardStatus, ProductStatus
        from cms.models import Card, Holder, Product
        from cms.personalization.keys import card_key_store
        from core.actors import Actor
        from core.roles import Role
        from core.tokens import api_token_create
        from core.users import user_create, user_grant_role
        from pki.keys.symmetric import admin_key

        settings.CARD_KEY_STORE = {
            "BACKEND": "pkcs11",
            "OPTIONS": {
                "module": hsm.module,
                "token_label": hsm.token_label,
                "pin_env": hsm.pin_env,
                "pool_size": 2,
            },
        }
        settings.HELPDESK_UNBLOCK_CARD_LIMIT = 10**9
        settings.HELPDESK_UNBLOCK_AGENT_LIMIT = 10**9
        settings.HELPDESK_UNBLOCK_DUAL_CONTROL_AFTER = 0
        store = card_key_store()
        store.generate("admin.v1", length=32)

        product = Product.objects.create(
            name="CPS4",
            version="1",
            status=ProductStatus.ISSUED,
            validity_years=6,
            definition={"name": "CPS4"},
            definition_sha256="0" * 64,
        )
        holder = Holder.objects.create(
            national_id="810002813839",
            last_name="MARTIN",
            first_name="Claire",
            profession="10",
            card_type="CPS",
            postal_code="75011",
            departement="75",
        )
        number = "80250000012600301701"
        card = Card.objects.create(
            chip_serial=number,
            card_number=number,
            product=product,
            status=CardStatus.ACTIVE,
            holder=holder,
            card_type="CPS",
            admin_key_version=1,
        )
        actor = Actor.system("bench")
        user, _ = user_create(username="bench-agent", actor=actor)
        user_grant_role(user=user, role=Role.HELPDESK_AGENT, actor=actor)
        _, token = api_token_create(user=user, actor=actor, label="bench")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        url = f"/api/v1/helpdesk/cards/{card.pk}/offline-unblock"
        serial = serial_of_card_number(number)
        body = {"identity_method": "callback", "identity_reference": "+33 1 23 45 67 89"}

        def api(challenge: bytes) -> bytes:
            answer = client.post(url, {**body, "challenge": challenge.hex()}, format="json")
            assert answer.status_code == 200, answer.content
            return bytes.fromhex(answer.json()["response"])

        def raw(challenge: bytes) -> bytes:
            key = admin_key(store, "admin.v1", serial, 1)
            return crypto.unblock_response(key, serial, 1, PIN_REFERENCE, challenge)

        for _ in range(10):  # warm up: sessions, login, connection, caches
            assert api(bytes(8)) == raw(bytes(8))
        times: dict[str, list[float]] = {"api": [], "raw": []}
        for i in range(args.requests):
            challenge = i.to_bytes(8, "big")
            for name, run in (("api", api), ("raw", raw)):
                start = time.perf_counter()
                run(challenge)
                times[name].append(time.perf_counter() - start)
        print(f"offline unblock responses, {args.requests} each, interleaved (PKCS#11 on SoftHSM2)")
        for name, label in (("raw", "raw CMAC in the token"), ("api", "through the API")):
            values = times[name]
            p50, p99, mean = _pct(values, 0.5), _pct(values, 0.99), statistics.mean(values)
            print(
                f"  {label:24s} p50 {p50 * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms   "
                f"mean {mean * 1e3:7.3f} ms"
            )
        ratio50 = _pct(times["api"], 0.5) / _pct(times["raw"], 0.5)
        ratio99 = _pct(times["api"], 0.99) / _pct(times["raw"], 0.99)
        print(f"  ratio API / raw: p50 {ratio50:.1f}x, p99 {ratio99:.1f}x")


if __name__ == "__main__":
    main()
