"""The models in force: the environment's `shadow` deployments, followed live through WatchDeployments.

Bundles are fetched once per sha256 into a local folder and loaded on the compiled runtime; a lost stream
is opened again with backoff and starts from the full state, so no change is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from pathlib import Path

import grpc

from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from scorer.bundle import load_bundle
from shadow import metrics
from shadow.models import ModelSet, ShadowModel

log = logging.getLogger(__name__)


class BundleFolder:
    """Bundles by sha256 in a folder: downloaded from the registry once, checked, reused after."""

    def __init__(self, folder: Path, stub: pb_grpc.RegistryStub, metadata: list[tuple[str, str]]) -> None:
        self.folder = folder
        self.stub = stub
        self.metadata = metadata

    async def path(self, name: str, version: int, sha256: str) -> Path:
        """The local file holding that bundle, downloaded if missing."""
        target = self.folder / f"{sha256}.zip"
        if target.exists():
            return target
        self.folder.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{target.name}.{id(self)}.part")
        digest = hashlib.sha256()
        with part.open("wb") as file:
            call = self.stub.DownloadBundle(
                pb.VersionRef(name=name, version=version), metadata=self.metadata, timeout=600
            )
            async for chunk in call:
                digest.update(chunk.data)
                file.write(chunk.data)
        if digest.hexdigest() != sha256:
            part.unlink(missing_ok=True)
            raise ValueError(
                f"bundle of {name}@{version} is corrupt: sha256 {digest.hexdigest()} != {sha256}"
            )
        part.replace(target)
        return target


class DeploymentFollower:
    """Keeps `current` equal to the shadow deployments of an environment (and pool)."""

    def __init__(
        self,
        address: str,
        token: str,
        environment: str,
        pool: str,
        bundle_dir: Path,
        *,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.environment = environment
        self.pool = pool
        self.metadata = [("authorization", f"Bearer {token}")] if token else []
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = pb_grpc.RegistryStub(self._channel)
        self._bundles = BundleFolder(bundle_dir, self._stub, self.metadata)
        self._max_backoff_s = max_backoff_s
        self._loaded: dict[str, ShadowModel] = {}  # by sha256: a version loaded once is reused
        self.current = ModelSet()
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def models(self) -> ModelSet:
        """The set in force now (read on every batch)."""
        return self.current

    async def start(self, first_state_timeout_s: float = 60.0) -> None:
        """Start following and wait for the first state (so the first batch is scored by the right set)."""
        self._task = asyncio.create_task(self._follow())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), first_state_timeout_s)

    async def close(self) -> None:
        """Stop following (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._channel.close()

    async def _follow(self) -> None:
        delay = 0.1
        while True:
            try:
                request = pb.WatchDeploymentsRequest(environment=self.environment, pool=self.pool)
                async for state in self._stub.WatchDeployments(request, metadata=self.metadata):
                    await self._apply(state)
                    delay = 0.1
            except grpc.aio.AioRpcError as err:
                log.warning(
                    "deployment watch ended (%s: %s); again in %.1fs", err.code().name, err.details(), delay
                )
            except (OSError, ValueError) as err:
                log.warning("could not apply the desired state (%s); again in %.1fs", err, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff_s)

    async def _apply(self, state: pb.DesiredState) -> None:
        models = []
        for d in state.deployments:
            if d.role != "shadow":
                continue
            model = self._loaded.get(d.sha256)
            if model is None or model.name != d.name or model.version != d.version:
                path = await self._bundles.path(d.name, d.version, d.sha256)
                bundle = await asyncio.to_thread(load_bundle, path)
                model = ShadowModel(d.name, d.version, d.sha256, bundle)
                self._loaded[d.sha256] = model
            models.append(model)
        self.current = ModelSet(state.revision, tuple(models))
        live = {m.sha256 for m in models}
        self._loaded = {k: v for k, v in self._loaded.items() if k in live}
        metrics.MODELS.set(len(models))
        log.info("shadow models at revision %d: %s", state.revision, self.current.refs())
        self.changed.set()
