"""Entry point: python testenv/effnet/serve.py --port 0 (prints the URL on stdout when ready)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vlproxy_effnet.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
