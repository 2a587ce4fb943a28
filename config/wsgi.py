import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
django_application = get_wsgi_application()

# /ocsp is answered in front of Django's handler (pki/wsgi.py, docs/adr/0004-lean-ocsp-front.md);
# imported once the apps are loaded (it reaches the models).
from pki.wsgi import OcspFront  # noqa: E402

application = OcspFront(django_application)
