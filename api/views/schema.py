from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


class SchemaApi(SpectacularAPIView):
    """The OpenAPI document: public like any API reference; it describes, it holds no data."""

    public = True


class DocsApi(SpectacularSwaggerView):
    """Interactive documentation of the OpenAPI document."""

    public = True
