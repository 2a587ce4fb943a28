"""Prometheus metrics: requests (counted in process), and what the database knows, read at
scrape time so that every web process reports the same figures (issuance, the personalization
job queue, station last-seen, CRL age). OCSP cache hits are the front's (nginx) to report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from cms.models import Card, PersonalizationJob, Station
from pki.models import Certificate, CrlPublication

REQUESTS = Counter(
    "cms_http_requests",
    "HTTP requests answered by Django, by view and status code",
    ["method", "view", "status"],
)
LATENCY = Histogram(
    "cms_http_request_duration_seconds",
    "Time Django took to answer, by view",
    ["method", "view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

STATION_FRONT = Counter(
    "cms_station_front_exchanges",
    "Station exchanges answered by the lean front (api.station_front) rather than Django's"
    " handler, by status code",
    ["status"],
)


def station_front_counted(view: str, status: int, seconds: float) -> None:
    """A station exchange answered by api.station_front before Django's handler: counted as
    MetricsMiddleware counts Django's answers, and apart (config/wsgi.py hands it to the front)."""
    LATENCY.labels("POST", view).observe(seconds)
    REQUESTS.labels("POST", view, str(status)).inc()
    STATION_FRONT.labels(str(status)).inc()


class MetricsMiddleware:
    """Counts every request by its URL pattern's name (bounded), never by its path."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match is not None else "") or "unresolved"
        method = request.method if request.method in _METHODS else "other"
        LATENCY.labels(method, view).observe(time.perf_counter() - started)
        REQUESTS.labels(method, view, str(response.status_code)).inc()
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class DatabaseCollector(Collector):
    """Figures read from PostgreSQL at each scrape (a few aggregate queries on indexed tables)."""

    def describe(self) -> list[Metric]:
        # Nothing: the registry would otherwise call collect(), i.e. query, when registering.
        return []

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        cards = GaugeMetricFamily("cms_cards", "Cards by lifecycle status", labels=["status"])
        for row in Card.objects.values("status").annotate(n=Count("id")).order_by():
            cards.add_metric([row["status"]], row["n"])
        yield cards
        issued = CounterMetricFamily(
            "cms_cards_issued", "Cards personalized and issued since the start"
        )
        issued.add_metric([], Card.objects.filter(issued_at__isnull=False).count())
        yield issued
        certificates = GaugeMetricFamily(
            "cms_certificates", "Certificates by status and profile", labels=["status", "profile"]
        )
        for cert in (
            Certificate.objects.values("status", "profile").annotate(n=Count("id")).order_by()
        ):
            certificates.add_metric([cert["status"], cert["profile"]], cert["n"])
        yield certificates
        jobs = GaugeMetricFamily(
            "cms_personalization_jobs",
            "Personalization jobs by status (queued: the queue depth stations draw from)",
            labels=["status"],
        )
        for job in PersonalizationJob.objects.values("status").annotate(n=Count("id")).order_by():
            jobs.add_metric([job["status"]], job["n"])
        yield jobs
        seen = GaugeMetricFamily(
            "cms_station_last_seen_timestamp_seconds",
            "When each enrolled station last called the server (Unix time)",
            labels=["station", "site"],
        )
        for name, site, last_seen in Station.objects.filter(last_seen_at__isnull=False).values_list(
            "name", "site__code", "last_seen_at"
        ):
            if last_seen is not None:
                seen.add_metric([name, site], last_seen.timestamp())
        yield seen
        age = GaugeMetricFamily(
            "cms_crl_age_seconds",
            "Seconds since the thisUpdate of the newest CRL, by CA and kind",
            labels=["ca", "kind"],
        )
        remaining = GaugeMetricFamily(
            "cms_crl_next_update_seconds",
            "Seconds left before the newest CRL's nextUpdate (negative: overdue)",
            labels=["ca", "kind"],
        )
        newest = (
            CrlPublication.objects.values("authority__short_name", "kind")
            .annotate(this_update=Max("this_update"), next_update=Max("next_update"))
            .order_by()
        )
        for crl in newest:
            labels = [crl["authority__short_name"], crl["kind"]]
            age.add_metric(labels, now - crl["this_update"].timestamp())
            remaining.add_metric(labels, crl["next_update"].timestamp() - now)
        yield age
        yield remaining


def registry() -> CollectorRegistry:
    """The registry a scrape reads: this process's, or, under gunicorn with
    PROMETHEUS_MULTIPROC_DIR set, the sum over every worker process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        merged.register(_DATABASE)
        return merged
    return REGISTRY


_DATABASE = DatabaseCollector()
REGISTRY.register(_DATABASE)
