"""The extractor under load: Evaluate requests from a transactions file, and `rtscore bench e2e`."""

from __future__ import annotations

from pathlib import Path

from extractor.generate import read_jsonl
from extractor.transactions import transaction_from_json
from rtscore.errors import InvalidArgument

EVALUATE_METHOD = "/rtscore.v1.Extractor/Evaluate"


def evaluate_requests(path: Path, limit: int | None = None) -> list[bytes]:
    """Serialized Transactions, one per line of `path` (at most `limit`), for the load client."""
    try:
        lines = read_jsonl(path)
        requests = []
        for line in lines:
            requests.append(transaction_from_json(line).SerializeToString())
            if limit is not None and len(requests) >= limit:
                break
    except OSError as err:
        raise InvalidArgument(f"{path}: cannot read transactions ({err.strerror})") from None
    if not requests:
        raise InvalidArgument(f"{path}: no transactions")
    return requests
