"""`python -m tests.deploy.moto_server PORT`: the embedded AWS (moto's server,
DynamoDB serialized as submit.embedded does it) in a process of its own.

The deploy tests turn on moto's IAM checks, which hold for every moto in
the process that runs them: here they stay out of the test process, where
other tests use moto without credentials. Runs until killed.
"""

from __future__ import annotations

import signal
import sys
import threading

from submit.embedded import EmbeddedAWS


def main() -> int:
    aws = EmbeddedAWS(port=int(sys.argv[1]))
    aws.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    print(aws.endpoint_url, flush=True)
    stop.wait()
    aws.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
