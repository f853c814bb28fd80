import sys

from edgefw.cli import main

sys.exit(main())
