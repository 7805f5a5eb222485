"""Keeping the cyclic garbage collector off the hot path of a long-running server.

A full collection walks every tracked object: with the modules a server imports (gRPC, protobuf,
numpy, numba, pydantic) that is ~56,000 objects and 15-45 ms on a 2-vCPU host, a stall every caller
in flight waits out. Objects alive once a server is up (modules, models, settings) live as long as it
does, so `gc.freeze()` moves them out of the collector's view: later collections walk only what calls
allocate. Reference counting still frees frozen objects that are dropped; only cycles among them
stay (a retired model version's, say), which is bounded by the versions a process ever hosts.
"""

from __future__ import annotations

import gc


def freeze_long_lived(*, collect: bool = True) -> None:
    """Freeze every object alive now; `collect` first (startup) or not (on the event loop, where a
    collection would be the very stall this avoids)."""
    if collect:
        gc.collect()
    gc.freeze()
