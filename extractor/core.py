"""The extractor's transport-neutral core: features, score through the pool, decision, shadow copy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from extractor.features import FeatureExtractor, Prepared
from extractor.frames import RowEncoder, fraud_probability
from extractor.metrics import ExtractorMetrics
from extractor.model_watch import ModelWatch
from extractor.shadow import ShadowProducer, ShadowSample, shadow_record
from extractor.velocity import VelocityStore
from protos.rtscore.v1 import extractor_pb2, frame_pb2, scorer_pb2
from rtscore.errors import FailedPrecondition, InvalidArgument, Unavailable
from scorer.client.errors import ScorerCallError

Metadata = Sequence[tuple[str, str]]
# Share of the time left to a call that scoring leaves for the answer, so that a call no scorer could
# take fails UNAVAILABLE, saying why, before the caller's own deadline ends it unexplained.
_ANSWER_SHARE = 0.1
_ACTION_NAMES = {
    extractor_pb2.ACTION_APPROVE: "approve",
    extractor_pb2.ACTION_REVIEW: "review",
    extractor_pb2.ACTION_DECLINE: "decline",
}


class ScoredLike(Protocol):
    """What the scorer pool returns."""

    @property
    def response(self) -> scorer_pb2.ScoreResponse:
        """The scorer's answer."""
        ...

    @property
    def endpoint(self) -> str:
        """The scorer that answered."""
        ...


class Scoring(Protocol):
    """The part of `scorer.client.ScorerPool` the extractor uses."""

    async def score(
        self,
        model: str,
        frame: frame_pb2.Frame,
        timeout: float | None = None,  # noqa: ASYNC109 (the call's deadline, sent to the scorer)
        metadata: Metadata = (),
        *,
        select: Sequence[str] = (),
        include_inputs: bool = False,
    ) -> ScoredLike:
        """Score one frame."""
        ...


@dataclass(frozen=True)
class Thresholds:
    """Scores at or above `review` are reviewed, at or above `decline` declined; below, approved."""

    review: float = 0.5
    decline: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 <= self.review <= self.decline <= 1.0:
            raise InvalidArgument(
                f"thresholds need 0 <= review ({self.review}) <= decline ({self.decline}) <= 1"
            )

    def action(self, score: float) -> extractor_pb2.Action:
        """The action a score calls for."""
        if score >= self.decline:
            return extractor_pb2.ACTION_DECLINE
        if score >= self.review:
            return extractor_pb2.ACTION_REVIEW
        return extractor_pb2.ACTION_APPROVE


@dataclass(frozen=True)
class Shadow:
    """Where sampled copies go and how they are labelled."""

    producer: ShadowProducer
    sample: ShadowSample
    environment: str = ""
    pool: str = ""


class ExtractorCore:
    """Evaluate transactions: features (velocity included), one scorer call, a decision by thresholds."""

    def __init__(
        self,
        features: FeatureExtractor,
        store: VelocityStore,
        scoring: Scoring,
        model: str,
        *,
        thresholds: Thresholds | None = None,
        score_timeout_s: float = 0.05,
        dense_frames: bool = False,
        shadow: Shadow | None = None,
        metrics: ExtractorMetrics | None = None,
        watch: ModelWatch | None = None,
    ) -> None:
        self.features = features
        self.store = store
        self.scoring = scoring
        self.model = model
        self.thresholds = thresholds or Thresholds()
        self.score_timeout_s = score_timeout_s
        self.shadow = shadow
        self.metrics = metrics
        self.watch = watch
        self._encoder = RowEncoder(features.names, dense=dense_frames)
        self._select = ("probability",)

    async def evaluate(
        self,
        tx: extractor_pb2.Transaction,
        deadline_s: float | None = None,
        metadata: Metadata = (),
        prepared: tuple[Prepared, float] | None = None,
    ) -> extractor_pb2.Decision:
        """The decision for one transaction; `deadline_s` is the time left for the whole call, and
        `prepared` what a batch already made of `tx`, with the time its call began."""
        clock = time.perf_counter
        if prepared is None:
            started = clock()
            features = self.features.prepare(tx)
        else:
            features, started = prepared
        velocity_started = clock()
        velocity = await self.store.observe(features.event)
        velocity_done = clock()
        frame = self._encoder.frame(features.derived + velocity)
        scoring_started = clock()
        # Scoring may take what is left of the call, less a tenth kept for the answer (the pool gives
        # each attempt score_timeout_s and tries another scorer after a late one, while this allows).
        timeout = self.score_timeout_s
        if deadline_s is not None:
            timeout = (deadline_s - (scoring_started - started)) * (1 - _ANSWER_SHARE)
            if timeout <= 0:
                raise Unavailable("the call's deadline passed before scoring could start")
        try:
            scored = await self.scoring.score(self.model, frame, timeout, metadata, select=self._select)
        except ScorerCallError as err:
            if err.code is not grpc.StatusCode.INVALID_ARGUMENT:
                raise
            # the transaction was valid; the frame the spec made is what the model refused
            if self.watch is None:
                raise FailedPrecondition(f"{err.endpoint} refused the features: {err.details}") from None
            raise self.watch.refused(err) from None
        done = clock()
        if self.watch is not None and self.watch.problem is not None:
            self.watch.served()
        score = fraud_probability(scored.response)
        action = self.thresholds.action(score)
        response = scored.response
        decision = extractor_pb2.Decision(
            transaction_id=tx.id, score=score, action=action, model=response.model,
            version=response.version, scorer=scored.endpoint,
            timings=extractor_pb2.StageTimings(
                features_ms=(scoring_started - started) * 1e3, score_ms=(done - scoring_started) * 1e3,
                total_ms=(done - started) * 1e3, velocity_ms=(velocity_done - velocity_started) * 1e3,
            ),
        )  # fmt: skip
        if self.metrics is not None:
            self.metrics.stages(scoring_started - started, velocity_done - velocity_started,
                                done - scoring_started, done - started)  # fmt: skip
            self.metrics.decided(_ACTION_NAMES[action])
        shadow = self.shadow
        if shadow is not None:
            key = shadow.sample.key_of(tx)
            if shadow.sample.takes(key):
                # After the reply is on its way: the copy costs the live call nothing.
                asyncio.get_running_loop().call_soon(self._copy, shadow, key, tx, frame, decision)
        return decision

    async def evaluate_batch(
        self,
        txs: Sequence[extractor_pb2.Transaction],
        deadline_s: float | None = None,
        metadata: Metadata = (),
    ) -> list[extractor_pb2.Decision]:
        """Decisions in request order; the first refused transaction fails the batch, naming its index."""
        started = time.perf_counter()
        prepared = []
        for index, tx in enumerate(txs):
            try:
                prepared.append((self.features.prepare(tx), started))
            except InvalidArgument as err:
                raise InvalidArgument(f"transactions[{index}]: {err}") from None
        calls = (self.evaluate(tx, deadline_s, metadata, p) for tx, p in zip(txs, prepared, strict=True))
        return list(await asyncio.gather(*calls))

    def _copy(
        self,
        shadow: Shadow,
        key: str,
        tx: extractor_pb2.Transaction,
        frame: frame_pb2.Frame,
        decision: extractor_pb2.Decision,
    ) -> None:
        loaded = self.features.loaded
        record = shadow_record(
            tx, frame, decision, sample_key=shadow.sample.key, spec_name=loaded.spec.name,
            spec_sha256=loaded.sha256, environment=shadow.environment, pool=shadow.pool,
        )  # fmt: skip
        shadow.producer.offer(key, record.SerializeToString())
