"""``python -m cpsclient``."""

from cpsclient.cli import main

raise SystemExit(main())
