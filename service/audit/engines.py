"""Other engines for the audit's two passes, for exports that outgrow one machine: Dask distributed.

Why Dask rather than Spark: the audit is Python end to end (the same `fhir_mappings` and rules as the
hook), and Dask runs those functions as they are on a cluster of Python workers, with no JVM, no second
implementation and no serialisation format of its own; `distributed.LocalCluster` is the same scheduler
on one machine, so the tests run the real thing. Workers need this release installed and the report
folder (where the spill files are written) on storage they all read, e.g. a shared volume.

    python -m service.cli audit EXPORT --out REPORT --engine dask [--dask-scheduler tcp://host:8786]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any


class DaskEngine:
    """Tasks on a Dask cluster: the scheduler at `scheduler`, or a LocalCluster of `workers` processes."""

    def __init__(self, scheduler: str | None = None, *, workers: int = 2) -> None:
        from distributed import Client, LocalCluster  # imported here: only this engine needs it

        logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO chatter is not the report

        self._cluster: Any = None
        if scheduler:
            self._client = Client(scheduler)
        else:
            self._cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,  # the judging is CPU-bound Python: one process per core
                processes=True,
                dashboard_address=None,
                silence_logs=logging.WARNING,
            )
            self._client = Client(self._cluster)

    def map(self, function: Callable[..., Any], *iterables: Sequence[Any]) -> Iterator[Any]:
        """Results in submission order (each released once read), so reports do not depend on timing."""
        futures = self._client.map(function, *iterables, pure=False)
        for future in futures:
            yield future.result()
            future.release()

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
