"""`python -m papernets ...` and `torchrun -m papernets train ...`."""

import sys

from papernets.cli import main

sys.exit(main())
