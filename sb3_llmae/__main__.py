"""``python -m sb3_llmae``: the same as the ``sb3-llmae`` console script."""

import sys

from sb3_llmae.cli import main

sys.exit(main())
