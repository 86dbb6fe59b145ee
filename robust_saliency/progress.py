"""Progress of a long call on stderr: images done and seconds elapsed, also while a single
kernel call (the first one traces for seconds, an attack batch runs for many) blocks.

`verbose=None` (the entry points' default) shows it only once the call has run AFTER seconds,
so quick calls print nothing; True shows it from the start; False never.
"""

import sys
import threading
import time

AFTER = 3.0  # seconds before an automatic progress line appears
_TICK = 1.0  # seconds between refreshes while nothing finishes


class Progress:
    """A context manager: `advance(n)` after each batch; a background thread refreshes the line
    every second, so a blocking call still shows its elapsed time."""

    def __init__(self, total, label, *, verbose=None, unit="images", stream=None):
        self.total, self.label, self.unit = total, label, unit
        self.after = 0.0 if verbose else AFTER
        self.enabled = verbose is not False
        self.stream = stream or sys.stderr
        self.done, self.shown = 0, False
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None

    def __enter__(self):
        if self.enabled:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        return self

    def advance(self, count):
        with self._lock:
            self.done += count
        self._show()

    def _elapsed(self):
        return time.monotonic() - self._start

    def _show(self, final=False):
        if not self.enabled or self._elapsed() < self.after:
            return
        with self._lock:
            first = "" if self.done else " (tracing and compiling on the first call)"
            self.stream.write(f"\r{self.label}: {self.done}/{self.total} {self.unit}, "
                              f"{self._elapsed():.0f} s{first if not final else ''}   "
                              + ("\n" if final else ""))
            self.stream.flush()
            self.shown = True

    def _tick(self):
        while not self._stop.wait(_TICK):
            self._show()

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.shown:
            self._show(final=True)
        return False
