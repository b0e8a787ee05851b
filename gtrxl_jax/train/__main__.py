"""`python -m gtrxl_jax.train [--config FILE] [key=value ...]`."""

import sys

from gtrxl_jax.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
