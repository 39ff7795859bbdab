"""Progress a user can read: one line per finished step of a run, with its elapsed time.

An experiment takes minutes to hours. A progress bar that ticks once per
seed says little, and says nothing at all when the output goes to a file
(``tox -e bench > log``). :class:`ProgressLog` writes one line per step a
user waits for (each base network, each epoch of a seed's retraining with
an estimate of the time left, each network's evaluation), to stderr, never
to stdout (which holds the results table)::

    [  12.3 s] seed 0: retrained 11 networks (6 epochs)

On a terminal the lines go through tqdm, so they do not break its bars.
"""

import sys
import time

from tqdm.auto import tqdm

__all__ = ["ProgressLog"]


class ProgressLog:
    """Lines ``[elapsed s] message`` on stderr; silent with ``verbose=0``.

    Picklable (joblib's workers write their own lines); the elapsed time
    counts from ``start`` in every process.

    Parameters
    ----------
    verbose : int, default=1
        0: silent.
    start : float, default=None
        ``time.time()`` of the run's start (now when None).

    Examples
    --------
    >>> from structnoise.evaluation.progress import ProgressLog
    >>> log = ProgressLog(verbose=1, start=0.0)
    >>> log.line("seed 0: base network trained", now=12.34)
    '[  12.3 s] seed 0: base network trained'
    >>> ProgressLog(verbose=0)("nothing is written")
    """

    def __init__(self, verbose=1, start=None):
        self.verbose = verbose
        self.start = time.time() if start is None else float(start)

    def line(self, message, now=None):
        """The line for ``message`` at ``now`` (``time.time()`` when None)."""
        elapsed = (time.time() if now is None else now) - self.start
        return f"[{elapsed:6.1f} s] {message}"

    def __call__(self, message):
        """Write ``message`` as one line on stderr (through tqdm on a terminal)."""
        if not self.verbose:
            return
        text = self.line(message)
        if sys.stderr.isatty():
            tqdm.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def epochs(self, what, first, total):
        """A callback for each finished epoch: its line, with the time left estimated.

        Parameters
        ----------
        what : str
            What trains, e.g. ``"seed 0: retraining 11 networks"``.
        first : int
            The first epoch that runs (a resumed run starts later).
        total : int
            The number of epochs.

        Returns
        -------
        done : callable
            ``done(epoch)`` after epoch ``epoch`` (0-based) has finished.
        """
        t0 = time.time()

        def done(epoch):
            ran = epoch + 1 - first
            left = (time.time() - t0) / max(ran, 1) * (total - epoch - 1)
            eta = f", about {left:.0f} s left" if epoch + 1 < total else ""
            self(f"{what}: epoch {epoch + 1}/{total}{eta}")
        return done
