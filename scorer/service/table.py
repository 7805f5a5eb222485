"""The model table: which version answers to each name, swapped atomically."""

from __future__ import annotations

from scorer.service.errors import ModelNotFound
from scorer.service.model import HostedModel


def split_ref(ref: str) -> tuple[str, str]:
    """`name@version` → (name, version); a bare name has version ''."""
    name, _, version = ref.partition("@")
    return name, version


class ModelTable:
    """Maps each model name to the one version that serves it.

    Every mutation happens on the event loop thread, so a swap is a single dict assignment: a call
    resolves either the old version or the new one, never nothing.
    """

    def __init__(self) -> None:
        self._active: dict[str, HostedModel] = {}

    def resolve(self, ref: str) -> HostedModel:
        """The hosted model for `name` or `name@version`."""
        name, version = split_ref(ref)
        if not name:
            raise ModelNotFound("no model named: the model reference is empty")
        hosted = self._active.get(name)
        if hosted is None:
            known = ", ".join(sorted(self._active)) or "none"
            raise ModelNotFound(f"model {name!r} is not hosted here (hosted: {known})")
        if version and version != hosted.version:
            raise ModelNotFound(f"model {name!r} is hosted at version {hosted.version!r}, not {version!r}")
        return hosted

    def install(self, hosted: HostedModel) -> HostedModel | None:
        """Make `hosted` the version serving its name; return the version it replaced."""
        previous = self._active.get(hosted.name)
        self._active[hosted.name] = hosted
        if previous is not None:
            previous.retired = True
        return previous

    def remove(self, ref: str) -> HostedModel:
        """Stop routing calls to the model `ref` names and return it."""
        hosted = self.resolve(ref)
        del self._active[hosted.name]
        hosted.retired = True
        return hosted

    def models(self) -> list[HostedModel]:
        """Hosted models, sorted by name."""
        return [self._active[name] for name in sorted(self._active)]

    def __len__(self) -> int:
        return len(self._active)
