"""``JobError``: what ``Job.result()`` raises when a job did not return a value.

It crosses process boundaries (a driver may pickle it, a multiprocessing pool may send it), so it
keeps its fields through pickling like every expq error with fields.
"""
from __future__ import annotations

from expq.errors import ExpqError

__all__ = ["JobError"]


class JobError(ExpqError):
    """A job raised, was cancelled, timed out, or was failed by its worker.

    ``reason`` says which, in the worker's words when the worker decided (``timeout after 5 s``,
    ``cancelled by user``). When the function raised, ``exc_type`` (``module.QualName``),
    ``message`` and ``traceback`` (the child's text) describe the exception, and the original
    exception is the ``__cause__`` whenever it could be unpickled here.
    """

    def __init__(self, job_id: int, state: str, reason: str, exc_type: str = "", message: str = "",
                 traceback: str = "") -> None:
        self.job_id = job_id
        self.state = state
        self.reason = reason
        self.exc_type = exc_type
        self.message = message
        self.traceback = traceback
        super().__init__(self._describe())

    def _describe(self) -> str:
        verb = "was cancelled" if self.state == "cancelled" else "failed"
        text = f"job {self.job_id} {verb}: {self.reason}"
        if self.traceback:
            text += "\n\n" + self.traceback.rstrip()
        return text

    def __reduce__(self) -> tuple[type[JobError], tuple[int, str, str, str, str, str]]:
        return type(self), (self.job_id, self.state, self.reason, self.exc_type, self.message, self.traceback)
