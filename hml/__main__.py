"""``python -m hml``: the ``hml`` command line (see :mod:`hml.cli`)."""

import sys

from hml.cli import main

sys.exit(main())
