"""``python -m examples.helloworld``: see ``run.py``."""

import sys

from examples.helloworld.run import main

sys.exit(main())
