"""/metrics: Prometheus text with requests and what the database knows; never public."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.pki.conftest import pki_software, software_key_dir  # noqa: F401


def _families(client: Client, **extra: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = client.get("/metrics", **extra)  # type: ignore[arg-type]
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    return {
        family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        for family in text_string_to_metric_families(response.content.decode())
    }


@pytest.mark.django_db
def test_metrics_report_requests_crl_age_and_issuance(pki_software) -> None:  # noqa: F811
    call_command("pki_publish", stdout=io.StringIO())
    client = Client()
    client.get("/api/v1/me")  # a 401, counted by view and status
    families = _families(client)
    requests = families["cms_http_requests"]
    assert requests[(("method", "GET"), ("status", "401"), ("view", "me"))] >= 1
    ages = families["cms_crl_age_seconds"]
    assert {dict(labels)["kind"] for labels in ages} == {"full", "delta"}
    assert all(value >= 0 for value in ages.values())
    assert all(v > 0 for v in families["cms_crl_next_update_seconds"].values())
    assert families["cms_cards_issued"] == {(): 0.0}
    assert "cms_personalization_jobs" in families
    assert "cms_station_last_seen_timestamp_seconds" in families


@pytest.mark.django_db
@pytest.mark.parametrize(
    "address,header,allowed",
    [
        ("127.0.0.1", "", True),
        ("192.0.2.7", "", False),
        ("192.0.2.7", "Bearer scrape-token-for-tests", True),
        ("192.0.2.7", "Bearer wrong-token-of-same-length", False),
        ("127.0.0.1", "Bearer wrong-token-of-same-length", False),
    ],
)
def test_metrics_only_for_allowed_networks_or_the_token(
    settings, address: str, header: str, allowed: bool
) -> None:
    settings.METRICS_TOKEN = "scrape-token-for-tests"
    extra = {"REMOTE_ADDR": address}
    if header:
        extra["HTTP_AUTHORIZATION"] = header
    response = Client().get("/metrics", **extra)  # type: ignore[arg-type]
    assert response.status_code == (200 if allowed else 404)
