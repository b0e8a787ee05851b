"""python -m gtrxl_jax.suite: the `gtrxl-suite` command."""

from gtrxl_jax.suite.cli import main

raise SystemExit(main())
