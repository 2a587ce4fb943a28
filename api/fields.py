"""Serializer fields shared by the API views."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import serializers

from core.filtersets import INT64_MAX


class IdField(serializers.IntegerField):
    """A primary key: a whole number from 1 to a bigint's maximum. A larger one is a 400 (the
    schema says so), never a database error."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", INT64_MAX)
        super().__init__(**kwargs)


class UploadField(serializers.FileField):
    """An uploaded file no larger than ``CMS_UPLOAD_MAX_BYTES``: a larger one is a 413 before
    anything reads it into memory."""

    def to_internal_value(self, data: Any) -> Any:
        upload = super().to_internal_value(data)
        if upload.size is not None and upload.size > settings.CMS_UPLOAD_MAX_BYTES:
            raise RequestDataTooBig(f"upload of {upload.size} bytes")
        return upload
