#!/usr/bin/env python3
"""Put edgefw on a board: ``python tools/flash.py --board NAME ...``.

The documented entry point for flashing, kept where users look for it;
the work is done by ``edgefw.deploy.flash`` (``--help`` lists the options).
"""

import sys
from pathlib import Path

# run from a checkout without installing: the tree's packages come first
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgefw.deploy.flash import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
