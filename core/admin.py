"""Django's own account pages are not served (issue 11 §5).

Accounts and role grants change only through ``core.users`` (``manage.py grant_role`` and the
console), each change with its audit event; the admin's User and Group pages would let a
superuser put anyone in a role group, or change a password, without one.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.models import Group, User

for _model in (User, Group):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
