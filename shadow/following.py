"""The models in force: the environment's `shadow` deployments, followed live through WatchDeployments.

The following itself is `registry.follow`'s (resume from the last handled revision, backoff with jitter,
bundles fetched once per sha256 into a cache every process of the host shares); this module turns each
desired state into the set of loaded models a batch is scored with.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from registry.follow import BundleCache, DeploymentFollower, RegistryConnection
from rtscore.errors import Unavailable
from rtscore.tasks import cancel_and_wait
from scorer.bundle import Bundle, load_bundle
from shadow import metrics
from shadow.models import SPEC_TAG, ModelSet, ShadowModel

if TYPE_CHECKING:
    from shadow.recompute import OwnFeatures

log = logging.getLogger(__name__)


class ShadowModels:
    """Keeps `current` equal to the shadow deployments of an environment (and pool)."""

    def __init__(self, connection: RegistryConnection, environment: str, pool: str, bundle_dir: Path) -> None:
        self.connection = connection
        self.environment = environment
        self._channel: grpc.aio.Channel = connection.channel()
        self._stub = pb_grpc.RegistryStub(self._channel)
        self._cache = BundleCache(bundle_dir)
        self._follower = DeploymentFollower(connection, environment, pool, self.apply, channel=self._channel)
        self._bundles: dict[str, Bundle] = {}  # by sha256: loaded once, kept while deployed
        self._models: dict[tuple[str, int, str], ShadowModel] = {}  # kept with their velocity state
        self.current = ModelSet()
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def models(self) -> ModelSet:
        """The set in force now (read once per batch)."""
        return self.current

    async def start(self, stop: asyncio.Event) -> bool:
        """Start following and wait for the first state, so no record is consumed before the set is known.

        Returns False when stop came first."""
        self._task = asyncio.create_task(self._follower.run())
        first = asyncio.ensure_future(self.changed.wait())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({first, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (first, stopped):
            waiter.cancel()
        return self.changed.is_set()

    async def close(self) -> None:
        """Stop following (idempotent)."""
        if self._task is not None:
            task, self._task = self._task, None
            await cancel_and_wait(task)
            await self._channel.close(grace=None)

    async def apply(self, state: pb.DesiredState) -> None:
        """Load what the state adds (bundles by sha256), drop what it no longer names, swap the set."""
        models = []
        bundles: dict[str, Bundle] = {}
        kept: dict[tuple[str, int, str], ShadowModel] = {}
        for d in state.deployments:
            if d.role != "shadow":
                continue
            key = (d.name, d.version, d.sha256)
            model = self._models.get(key)
            if model is None:
                bundle = bundles.get(d.sha256) or self._bundles.get(d.sha256)
                if bundle is None:  # the same bytes deployed under several names are loaded once
                    metadata = self.connection.metadata
                    path = await self._cache.fetch(self._stub, metadata, d.name, d.version, d.sha256)
                    bundle = await asyncio.to_thread(load_bundle, path)
                model = ShadowModel(d.name, d.version, d.sha256, bundle, await self._own_features(d))
            bundles[d.sha256] = model.bundle
            kept[key] = model
            models.append(model)
        self.current = ModelSet(state.revision, tuple(models))
        self._bundles = bundles
        self._models = kept
        metrics.MODELS.set(len(models))
        log.info("shadow models at revision %d: %s", state.revision, self.current.refs())
        self.changed.set()

    async def _own_features(self, deployment: pb.Deployment) -> OwnFeatures | None:
        """The feature spec the version declares in its tags, if any."""
        ref = pb.VersionRef(name=deployment.name, version=deployment.version)
        try:
            version = await self._stub.GetVersion(ref, metadata=self.connection.metadata, timeout=30)
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"GetVersion {deployment.name}@{deployment.version}: {err.details()}") from err
        if SPEC_TAG not in version.tags:
            return None
        from shadow.recompute import OwnFeatures  # the extractor's feature code, only when a spec needs it

        return OwnFeatures.from_tags(dict(version.tags))
