import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
django_application = get_wsgi_application()

# /ocsp, GET /contactless/status and the stations' usual exchange are answered in front of
# Django's handler (pki/wsgi.py, api/contactless_front.py, api/station_front.py; docs/adr/
# 0004-lean-ocsp-front.md, 0024, 0035); imported once the apps are loaded (they reach the models).
from api.contactless_front import ContactlessStatusFront  # noqa: E402
from api.station_front import StationExchangeFront  # noqa: E402
from ops.metrics import station_front_counted  # noqa: E402
from pki.wsgi import OcspFront  # noqa: E402

application = OcspFront(
    ContactlessStatusFront(StationExchangeFront(django_application, station_front_counted))
)
