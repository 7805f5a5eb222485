"""The model table: which version answers to each name, `name@version` and role alias, swapped atomically."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from scorer.service.errors import ModelNotFound
from scorer.service.model import HostedModel


def split_ref(ref: str) -> tuple[str, str]:
    """`name@version` → (name, version); a bare name has version ''."""
    name, _, version = ref.partition("@")
    return name, version


def alias(name: str, role: str) -> str:
    """The address of a role of a model, e.g. `fraud:champion`."""
    return f"{name}:{role}"


class ModelTable:
    """Hosted versions and the addresses that reach them.

    Every version is reachable as `name@version`; each name's active version also as `name`; role aliases
    (`fraud:champion`, `fraud:shadow`) as the registry assigns them. All addresses live in one dict that
    every mutation replaces whole, on the event loop thread: a call resolves with one lookup, and sees
    either the old routing or the new one, never a mix.
    """

    def __init__(self) -> None:
        self._hosted: dict[str, HostedModel] = {}  # ref → version
        self._active: dict[str, HostedModel] = {}  # name → the version a bare name reaches
        self._aliases: dict[str, HostedModel] = {}  # "name:role" → version
        self._routes: dict[str, HostedModel] = {}

    def resolve(self, ref: str) -> HostedModel:
        """The hosted model for `name`, `name@version` or a role alias such as `fraud:champion`."""
        hosted = self._routes.get(ref)
        if hosted is not None:
            return hosted
        raise self._not_found(ref)

    def _not_found(self, ref: str) -> ModelNotFound:
        if not ref:
            return ModelNotFound("no model named: the model reference is empty")
        if ":" in ref:
            known = ", ".join(sorted(self._aliases)) or "none"
            return ModelNotFound(f"no model answers to {ref!r} here (role aliases: {known})")
        name, version = split_ref(ref)
        active = self._active.get(name)
        if active is None:
            known = ", ".join(sorted(self._active)) or "none"
            return ModelNotFound(f"model {name!r} is not hosted here (hosted: {known})")
        versions = sorted(h.version for h in self._hosted.values() if h.name == name)
        if len(versions) == 1:
            return ModelNotFound(f"model {name!r} is hosted at version {versions[0]!r}, not {version!r}")
        return ModelNotFound(f"model {name!r} is hosted at versions {', '.join(versions)}, not {version!r}")

    def install(self, hosted: HostedModel) -> HostedModel | None:
        """Make `hosted` the only version of its name (standalone hosting); return the version it replaced."""
        previous = self._active.get(hosted.name)
        hosted_now = {r: h for r, h in self._hosted.items() if h.name != hosted.name}
        hosted_now[hosted.ref] = hosted
        aliases = {a: h for a, h in self._aliases.items() if h.name != hosted.name}
        self._publish(hosted_now, {**self._active, hosted.name: hosted}, aliases)
        return previous if previous is not hosted else None

    def remove(self, ref: str) -> HostedModel:
        """Stop routing calls to the model `ref` names (every version of a bare name) and return it."""
        hosted = self.resolve(ref)
        whole_name = ref == hosted.name
        gone = [h for h in self._hosted.values() if h is hosted or (whole_name and h.name == hosted.name)]
        keep = {r: h for r, h in self._hosted.items() if h not in gone}
        active = {n: h for n, h in self._active.items() if h not in gone}
        aliases = {a: h for a, h in self._aliases.items() if h not in gone}
        for name in {h.name for h in gone} - active.keys():
            rest = sorted((h for h in keep.values() if h.name == name), key=lambda h: h.version)
            if rest:
                active[name] = rest[-1]
        self._publish(keep, active, aliases)
        return hosted

    def route(
        self,
        hosted: Iterable[HostedModel],
        active: Mapping[str, HostedModel],
        aliases: Mapping[str, HostedModel],
    ) -> list[HostedModel]:
        """Replace the whole routing at once; returns the versions no longer hosted (now retired)."""
        keep = {h.ref: h for h in hosted}
        for target in (*active.values(), *aliases.values()):
            if keep.get(target.ref) is not target:
                raise ValueError(f"{target.ref} is routed to but not among the hosted versions")
        dropped = [h for h in self._hosted.values() if keep.get(h.ref) is not h]
        self._publish(keep, dict(active), dict(aliases))
        return dropped

    def _publish(
        self,
        hosted: dict[str, HostedModel],
        active: dict[str, HostedModel],
        aliases: dict[str, HostedModel],
    ) -> None:
        for old in self._hosted.values():
            if hosted.get(old.ref) is not old:
                old.retired = True
        routes = {**hosted, **active, **aliases}
        self._hosted, self._active, self._aliases = hosted, active, aliases
        self._routes = routes  # the one assignment a concurrent call can observe

    def roles_of(self, hosted: HostedModel) -> list[str]:
        """Role aliases that reach `hosted` (`champion`, `shadow`), sorted."""
        return sorted(a.partition(":")[2] for a, h in self._aliases.items() if h is hosted)

    def routes(self) -> dict[str, HostedModel]:
        """Every address and the version it reaches (a snapshot)."""
        return dict(self._routes)

    def hosted(self, ref: str) -> HostedModel | None:
        """The version hosted as exactly `name@version`, if any."""
        return self._hosted.get(ref)

    def aliases(self) -> dict[str, HostedModel]:
        """Role aliases and the versions they reach (a snapshot)."""
        return dict(self._aliases)

    def models(self) -> list[HostedModel]:
        """Hosted versions, sorted by name and version."""
        return sorted(self._hosted.values(), key=lambda h: (h.name, h.version))

    def __len__(self) -> int:
        return len(self._hosted)
