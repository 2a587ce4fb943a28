from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo and its in-process station: ``manage.py demo`` (``make run``), the set-up steps
    the tests and benchmarks share, and the station API served in process. Nothing of the back
    office imports it (an import-linter contract): ``cms`` knows no simulator and no station."""

    name = "demo"
    verbose_name = "Demo"
