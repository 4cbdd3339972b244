"""Progress bars on stderr for the CLI (tqdm), shown only for work that lasts more than a couple of seconds."""

from __future__ import annotations

import sys
from collections.abc import Callable

#: A bar appears only once the work has run this long (short commands print nothing extra).
DELAY_SECONDS = 2.0


class ConsoleProgress:
    """A tqdm bar driven by fractions (``__call__(fraction, message)``) or by counts (``count(done, total)``)."""

    def __init__(self, label: str, unit: str = "%"):
        from tqdm import tqdm

        self.unit = unit
        self.bar = tqdm(total=100 if unit == "%" else None, desc=label, unit=unit, file=sys.stderr,
                        delay=DELAY_SECONDS, leave=False, dynamic_ncols=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}"
                        if unit == "%" else None)

    def __call__(self, fraction: float, message: str | None = None) -> None:
        self.bar.n = round(100 * min(max(float(fraction), 0.0), 1.0), 1)
        if message:
            self.bar.set_postfix_str(str(message)[:60], refresh=False)
        self.bar.refresh()

    def count(self, done: int, total: int) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def job(self) -> Callable:
        """A ``progress(job)`` callback for ``JobRegistry.run_here``."""
        return lambda job: self(job.fraction, job.message)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> ConsoleProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_in_foreground(name: str, model, params: dict, label: str | None = None):
    """Run the job kind ``name`` in this thread (the CLI owns its process) with a progress bar on stderr: the same
    function the app's compute worker runs, through the same disk cache."""
    from explorer.jobs.kinds import KINDS, job_key, run_kind
    from explorer.jobs.registry import JobRegistry

    label = label or KINDS[name].label(model, params)
    with ConsoleProgress(label) as bar:
        return JobRegistry().run_here(job_key(name, model, params), lambda job: run_kind(name, model, params, job),
                                      label, progress=bar.job())
