"""Clean shutdown on SIGINT / SIGTERM: the signal sets the run's stop event, nothing more.

The actors and the learner poll the event (every wait in `handoff` does, at least every
0.1 s), wind down, and the loop writes a final checkpoint. A second SIGINT interrupts at
once (KeyboardInterrupt), for a run that does not stop by itself.
"""

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

logger = logging.getLogger(__name__)

STOPPED_EXIT_STATUS = 130  # a command stopped by a signal (128 + SIGINT), as shells report it


class SignalStop:
    """Which signal (if any) asked the run to stop."""

    def __init__(self):
        """No signal yet."""
        self.signal: int | None = None

    @property
    def received(self) -> bool:
        """Whether a stop signal arrived."""
        return self.signal is not None


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[SignalStop]:
    """Within the block, SIGINT and SIGTERM set `stop` (only from the main thread).

    Yields:
      A SignalStop that records the signal received.
    """
    received = SignalStop()
    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be installed from the main thread
        return

    def handle(signum, frame):
        if received.received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.signal = signum
        logger.warning("%s received: stopping the actors and the learner, then writing a "
                       "final checkpoint (press Ctrl-C again to abort at once).",
                       signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
