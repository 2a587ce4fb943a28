from cpsclient.cli import main

raise SystemExit(main())
