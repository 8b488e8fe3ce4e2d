import sys

from submit.cli import main

sys.exit(main())
