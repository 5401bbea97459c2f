"""How a rebuild or a dry run ends when it cannot do its job; the CLI prints each as one line.

In every case the live read models are as they were (or, after a switch, the new generation is
live and complete): these errors say why a run stopped, never that readers were affected.
"""

from __future__ import annotations


class RebuildError(RuntimeError):
    """A rebuild or dry run could not start or could not finish; the live generation is intact."""


class RebuildInProgress(RebuildError):
    """Another rebuild or dry run of the same projection holds its rebuild lock."""


class RunnerLockTimeout(RebuildError):
    """The live runner did not hand over the projection's runner lock in time."""


class RunLostItsLock(RebuildError):
    """The run's lock expired or was taken; it stopped before writing or deleting anything more."""
