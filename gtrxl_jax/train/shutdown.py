"""Clean shutdown on SIGINT / SIGTERM: the signal sets the run's stop event, nothing more.

The actors and the learner poll the event (every wait in `handoff` does, at least every
0.1 s), wind down, and the loop writes a final checkpoint. A second SIGINT interrupts at
once (KeyboardInterrupt), for a run that does not stop by itself; one within
`REPEAT_WINDOW_S` of the first is the same signal twice (`timeout -s INT` sends it to the
process and then to its group), not a second press.

A multi-process run stops as one: a process that stopped on its own would leave the others
waiting for it in the next update's collective, and itself waiting for them at its final
checkpoint's barrier, for ever. There the signal is only recorded, and `should_stop`, called
by every process before each update, stops them all before the same update.
"""

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator

import jax

from gtrxl_jax.train import placement

logger = logging.getLogger(__name__)

STOPPED_EXIT_STATUS = 130  # a command stopped by a signal (128 + SIGINT), as shells report it
REPEAT_WINDOW_S = 1.0  # a SIGINT this soon after the first is not a second Ctrl-C


class SignalStop:
    """Which signal (if any) asked the run to stop."""

    def __init__(self):
        """No signal yet."""
        self.signal: int | None = None
        self.elsewhere = False  # another process of the run received one

    @property
    def received(self) -> bool:
        """Whether a stop signal arrived (at any process of the run)."""
        return self.signal is not None or self.elsewhere


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[SignalStop]:
    """Within the block, SIGINT and SIGTERM stop the run (only from the main thread).

    A single process sets `stop` at once; a multi-process run stops at `should_stop`.

    Yields:
      A SignalStop that records the signal received.
    """
    received = SignalStop()
    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be installed from the main thread
        return
    alone = jax.process_count() == 1
    first_at = []

    def handle(signum, frame):
        if received.signal is not None:
            if signum == signal.SIGINT and time.monotonic() - first_at[0] > REPEAT_WINDOW_S:
                raise KeyboardInterrupt
            return
        first_at.append(time.monotonic())
        received.signal = signum
        logger.warning("%s received: stopping the actors and the learner, then writing a "
                       "final checkpoint (press Ctrl-C again to abort at once).",
                       signal.Signals(signum).name)
        if alone:
            stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def should_stop(stop: threading.Event, signals: SignalStop) -> bool:
    """Whether the loop stops before its next update: the same answer on every process.

    In a multi-process run a small collective (`placement.any_process`), so every process
    calls it once before each update: any process's signal or stop stops them all, and
    marks the signal `elsewhere` on the processes that did not receive it.
    """
    if jax.process_count() == 1:
        return stop.is_set()
    signalled, stopped = placement.any_process([signals.signal is not None, stop.is_set()])
    signals.elsewhere = signalled and signals.signal is None
    if signalled or stopped:
        stop.set()
    return signalled or stopped
