"""``--ray`` and ``--workers`` for the batch commands, and the backend they open for the command's duration."""

from __future__ import annotations

import contextlib
import sys

from explorer.commands import _args


def add_ray_arguments(p) -> None:
    g = p.add_argument_group("distributed (optional extra: pip install -r requirements-distributed.txt)")
    g.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="shard the batch over Ray workers: 'local' starts a cluster on this machine, anything else "
                        "joins one ('auto', HOST:PORT, ray://HOST:10001). Same results and cache entries as without")
    g.add_argument("--workers", type=_args.positive_int, default=None,
                   help="Ray workers (default: the cluster's GPUs, one each, else its CPUs)")


@contextlib.contextmanager
def session(args):
    """The command's work runs inside this: with ``--ray``, on a RayBackend made active (explorer.distributed);
    without, here. ``--workers`` without ``--ray`` is refused."""
    address = getattr(args, "ray", None)
    if address is None:
        if getattr(args, "workers", None) is not None:
            raise ValueError("--workers needs --ray (local, or the address of a Ray cluster)")
        yield None
        return
    from explorer import distributed
    from explorer.distributed.backend import RayBackend

    with RayBackend(address, args.workers) as backend, distributed.using(backend):
        print(f"computing on {backend.describe()}", file=sys.stderr)
        yield backend
