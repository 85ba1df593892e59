"""`python -m explain ...`: see explain/cli.py and README.md."""

import sys

from explain.cli import main

sys.exit(main())
