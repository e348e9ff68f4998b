"""A terminal progress bar fed by a method's progress callback; Ctrl-C asks the work to stop (CLI)."""

from __future__ import annotations

import signal
import sys
import threading


class Progress:
    """A tqdm progress bar on stderr fed by a progress callback; Ctrl-C asks the work to stop.

    Once the work has reported progress (it is in its loop, which polls the callback), the first
    Ctrl-C makes the callback return True: fits stop and keep their best image, training stops and
    writes its checkpoint; a second Ctrl-C interrupts at once. Before that (loading data, building a
    model, estimating coil maps: nothing polls yet) Ctrl-C interrupts at once.
    """

    def __init__(self, label: str, enabled: bool):
        self.label, self.enabled, self.bar = label, enabled and sys.stderr.isatty(), None
        self.stop_requested, self.polled, self._previous = False, False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_interrupt)
        return self

    def _on_interrupt(self, signum, frame):
        if self.stop_requested or not self.polled:
            raise KeyboardInterrupt
        self.stop_requested = True
        print(f"\n{self.label}: stopping after this step (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    def __call__(self, step: int, total: int, info: dict):
        if not self.polled and not sys.stderr.isatty():  # logs (no bar): say once that Ctrl-C now stops softly
            print(f"{self.label}: running; Ctrl-C stops it and keeps the result so far", file=sys.stderr, flush=True)
        self.polled = True
        if self.enabled:
            if self.bar is None:
                from tqdm import tqdm  # noqa: PLC0415

                self.bar = tqdm(total=total, desc=self.label, file=sys.stderr, leave=False)
            self.bar.update(step - self.bar.n)
            if info:
                self.bar.set_postfix({k: f"{v:.3g}" for k, v in info.items() if isinstance(v, (int, float))})
        return True if self.stop_requested else None

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if self.bar is not None:
            self.bar.close()
        return False
