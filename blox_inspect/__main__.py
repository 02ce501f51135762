import sys

from blox_inspect.cli import main

sys.exit(main())
