from kws.cli import main

raise SystemExit(main())
