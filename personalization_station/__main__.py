"""``python -m personalization_station``: see ``personalization_station.cli``."""

from personalization_station.cli import main

raise SystemExit(main())
