from rtsvc.cli import main

raise SystemExit(main())
