from gir.cli import main

raise SystemExit(main())
