"""``python -m a2a_grpc.cli``: the ``a2a-grpc`` command."""

import sys

from a2a_grpc.cli import main

sys.exit(main())
