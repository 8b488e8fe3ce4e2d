import sys

# `run --local`: the embedded AWS's process starts before the CLI's imports.
from submit.embedded_process import launch_early

launch_early(sys.argv[1:])

from submit.cli import main  # noqa: E402

sys.exit(main())
