"""`python -m explain ...`: the command line lives in cli/ (cli/main.py); this hands over to it."""

import sys

from cli.main import main

sys.exit(main())
