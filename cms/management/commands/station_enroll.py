"""``manage.py station_enroll --site CODE --name NAME``: a new station and its one-time code.

``--renew STATION_ID`` gives an existing station a fresh code; ``--disable STATION_ID`` refuses
it from its next call. Run by a security officer (the audit names ``--officer``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cms.callers import Caller
from cms.personalization.stations import station_code_renew, station_create, station_disable
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a personalization station and print its one-time enrollment code."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--site", help="site pool code")
        parser.add_argument("--name", help="station name, unique per site")
        parser.add_argument("--renew", metavar="STATION_ID", help="new code for this station")
        parser.add_argument("--disable", metavar="STATION_ID", help="disable this station")
        parser.add_argument("--hours", type=int, default=24, help="code lifetime (default 24)")
        parser.add_argument("--officer", default="station_enroll", help="name for the audit")

    def handle(self, *args: Any, **options: Any) -> None:
        caller = Caller.for_system(f"station_enroll ({options['officer']})")
        lifetime = dt.timedelta(hours=options["hours"])
        try:
            if options["disable"]:
                station = station_disable(station_id=uuid.UUID(options["disable"]), caller=caller)
                self.stdout.write(f"station {station.pk} disabled")
                return
            if options["renew"]:
                issued = station_code_renew(
                    station_id=uuid.UUID(options["renew"]), caller=caller, lifetime=lifetime
                )
            else:
                if not options["site"] or not options["name"]:
                    raise CommandError("give --site and --name (or --renew / --disable)")
                issued = station_create(
                    site_code=options["site"],
                    name=options["name"],
                    caller=caller,
                    lifetime=lifetime,
                )
        except (ApplicationError, ValueError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from None
        self.stdout.write(f"station {issued.station.pk} ({issued.station})")
        self.stdout.write(f"enrollment code: {issued.code}")
        self.stdout.write(f"expires at {issued.expires_at.isoformat()}")
        self.stdout.write(
            "on the station: python -m personalization_station enroll --cms URL --code CODE"
        )
