"""``--dask local:N`` (a LocalCluster of N single-threaded worker processes) or ``--dask tcp://host:port``
(an existing scheduler). Dask is optional: without it the command says how to install it."""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

from ..core.errors import InputError


@contextlib.contextmanager
def dask_client(address: Optional[str]) -> Iterator[object]:
    """A ``dask.distributed.Client`` for ``address`` (``None``: no client), closed afterwards."""
    if not address:
        yield None
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--dask needs Dask. Fix: pip install 'dask[distributed]' into the Python that runs this "
                         "command (or run without --dask).") from None
    if address.startswith("local:"):
        try:
            n = int(address.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise InputError(f"--dask {address}: the number of workers must be a whole number ≥ 1. Fix: e.g. "
                             "--dask local:4.")
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            yield client
        return
    if not address.startswith(("tcp://", "tls://", "ws://", "wss://")):
        raise InputError(f"--dask {address}: not a scheduler address. Fix: give local:N or tcp://host:port.")
    with Client(address) as client:
        yield client
