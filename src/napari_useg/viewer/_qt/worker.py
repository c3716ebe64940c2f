"""One way for every widget to run a job in a napari thread worker.

A job's ``iter()`` yields :class:`~napari_useg.viewer.jobs.JobProgress` snapshots, the
last one (``done``) carrying the result; :class:`JobWorker` iterates it in a
:func:`napari.qt.threading.thread_worker` and calls the widget back in the main thread.
Stopping goes through the job's own flag (:meth:`~napari_useg.viewer.jobs.Job.stop`),
so the job ends with a last snapshot of what it keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from napari.qt.threading import thread_worker

from napari_useg.viewer.jobs import Job, JobProgress

__all__ = ["JobWorker"]


class JobWorker:
    """Runs ``job.iter()`` in a napari thread worker and wires its signals.

    Parameters
    ----------
    job : napari_useg.viewer.jobs.Job
        The validated job.
    on_progress : callable
        ``on_progress(p)`` for every snapshot but the last.
    on_done : callable
        ``on_done(p)`` with the last snapshot (``p.result``; ``p.stopped`` after a stop).
    on_error : callable
        ``on_error(exc)`` when the job raises (then ``on_done`` is not called).
    on_finished : callable
        ``on_finished()`` once the worker has ended, in every case, last.

    Attributes
    ----------
    last : JobProgress or None
        The latest snapshot received.
    worker : napari.qt.threading.GeneratorWorker
        The napari worker.
    """

    def __init__(self, job: Job, *, on_progress: Callable[[JobProgress], Any],
                 on_done: Callable[[JobProgress], Any],
                 on_error: Callable[[BaseException], Any],
                 on_finished: Callable[[], Any]) -> None:
        self.job = job
        self.last: JobProgress | None = None
        self._on_progress = on_progress
        self._on_done = on_done
        self._on_error = on_error
        self._on_finished = on_finished
        self.detached = False
        make = thread_worker(job.iter, start_thread=False,
                             connect={"yielded": self._yielded, "errored": self._errored,
                                      "finished": self._finished})
        self.worker = make()

    def start(self) -> JobWorker:
        """Start the worker thread; returns ``self``."""
        self.worker.start()
        return self

    def stop(self) -> None:
        """Ask the job to end after its current step (it then yields its last snapshot)."""
        self.job.stop()

    def detach(self) -> None:
        """Stop the job and call the widget back no more (its Qt objects are gone).

        For a widget being destroyed (dock closed, napari quitting) mid-run: the job ends
        after its current step and nothing it yields reaches the widget.
        """
        self.detached = True
        self.job.stop()

    def _yielded(self, p: JobProgress) -> None:
        self.last = p
        if self.detached:
            return
        if p.done:
            self._on_done(p)
        else:
            self._on_progress(p)

    def _errored(self, exc: BaseException) -> None:
        if not self.detached:
            self._on_error(exc)

    def _finished(self) -> None:
        if not self.detached:
            self._on_finished()
