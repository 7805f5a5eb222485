"""A model's life in the registry: generated transactions, two trained versions, and their lifecycle steps.

Transactions and models come from `rtscore extractor generate` and `rtscore extractor train` (run as
child processes, exactly the commands the README gives); registry calls go through `RegistryClient`, the
client behind `rtscore registry ...`, each with the token of the person who would make it.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rtscore.demo.children import CLI
from rtscore.demo.platform import ENVIRONMENT, MODEL, POOL, Platform, read_token
from rtscore.errors import RtscoreError


@dataclass(frozen=True)
class Recipe:
    """How one version is trained: v2 differs honestly from v1 (twice the trees, another seed)."""

    version_label: str
    trees: int
    max_nodes: int
    seed: int


V1 = Recipe("v1", trees=12, max_nodes=255, seed=1)
V2 = Recipe("v2", trees=24, max_nodes=255, seed=2)


@dataclass
class Trained:
    """A trained bundle and what `rtscore extractor train` reported about it."""

    recipe: Recipe
    bundle: Path
    report: dict[str, Any]
    version: int = 0


def generate_both(platform: Platform, counts: dict[str, tuple[int, int]]) -> dict[str, Path]:
    """`rtscore extractor generate` per name (count, seed), side by side: labelled, deterministic by seed."""
    running = {}
    for name, (count, seed) in counts.items():
        out = platform.work / f"{name}.jsonl"
        args = ["extractor", "generate", "--count", str(count), "--seed", str(seed), "--out", str(out)]
        running[name] = (out, _start(args, platform.env))
    for name, (_, (args, popen)) in running.items():
        _finish(args, popen, platform.work / "logs" / f"generate-{name}.log")
    return {name: out for name, (out, _) in running.items()}


def write_labels(transactions: Path, out: Path) -> Path:
    """The labels of generated transactions as `rtscore shadow label` reads them (chargebacks, later)."""
    from extractor.generate import read_jsonl

    with out.open("w") as file:
        for line in read_jsonl(transactions):
            label = {"transaction_id": line["transaction"]["id"], "fraud": bool(line.get("label", 0))}
            file.write(json.dumps(label) + "\n")
    return out


def _start(args: list[str], env: dict[str, str]) -> tuple[list[str], subprocess.Popen[str]]:
    popen = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env}
    )
    return args, popen


def _finish(args: list[str], popen: subprocess.Popen[str], log: Path) -> str:
    """Wait for a started command; its stdout, or an error naming the command and its output's end."""
    out, err = popen.communicate()
    log.write_text(out + err)
    if popen.returncode != 0:
        tail = "\n".join((err or out).splitlines()[-10:])
        raise RtscoreError(f"rtscore {' '.join(args)} failed with status {popen.returncode}:\n{tail}")
    return out


def train_both(platform: Platform, transactions: Path) -> tuple[Trained, Trained]:
    """`rtscore extractor train` for v1 and v2, side by side."""
    running = []
    for recipe in (V1, V2):
        bundle = platform.work / f"fraud-{recipe.version_label}.zip"
        args = ["extractor", "train", "--transactions", str(transactions), "--out", str(bundle),
                "--trees", str(recipe.trees), "--max-nodes", str(recipe.max_nodes),
                "--seed", str(recipe.seed)]  # fmt: skip
        running.append((recipe, bundle, _start(args, platform.env)))
    trained = []
    for recipe, bundle, (args, popen) in running:
        out = _finish(args, popen, platform.work / "logs" / f"train-{recipe.version_label}.log")
        trained.append(Trained(recipe, bundle, _last_json(out)))
    return trained[0], trained[1]


def _last_json(text: str) -> dict[str, Any]:
    """The JSON object a command printed (its report)."""
    start = text.find("{")
    if start < 0:
        return {}
    try:
        value = json.loads(text[start:])
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class Governance:
    """The registry calls of the model's life, each made by the person who would make it."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def _client(self, who: str) -> Any:
        from registry.client import RegistryClient

        return RegistryClient(self.platform.registry, read_token(self.platform.tokens[who]))

    def call(self, who: str, method: str, request: Any) -> Any:
        """One registry call as `who` (author, approver or service)."""
        with self._client(who) as client:
            return client.call(method, request)

    def register(self, trained: Trained) -> int:
        """Upload the bundle as a new version of the model, with its training figures as metrics."""
        report = trained.report
        metrics = {
            k: float(report[k])
            for k in ("held_out_auc", "held_out_average_precision", "trees", "nodes")
            if k in report
        }
        with self._client("author") as client:
            version = client.register(
                MODEL,
                trained.bundle,
                reason=f"{trained.recipe.version_label}: {trained.recipe.trees} trees of up to"
                f" {trained.recipe.max_nodes} nodes on generated transactions",
                metrics=metrics,
                tags={"recipe": trained.recipe.version_label},
            )
        trained.version = int(version.version)
        return trained.version

    def deploy(self, who: str, version: int, environment: str, role: str, reason: str) -> None:
        """Deploy a version to an environment (pool `fraud`) as champion or shadow."""
        from protos.rtscore.v1 import registry_pb2 as pb

        request = pb.DeployRequest(
            name=MODEL, version=version, environment=environment, role=role, pool=POOL, reason=reason
        )
        self.call(who, "Deploy", request)

    def promote(self, version: int, reason: str) -> None:
        """The release manager promotes a shadow version to production champion (through the gate)."""
        from protos.rtscore.v1 import registry_pb2 as pb

        request = pb.ChangeRequest(name=MODEL, version=version, environment=ENVIRONMENT, reason=reason)
        self.call("approver", "Promote", request)

    def launch_v1(self, v1: Trained) -> None:
        """v1 through integration and qa, then production: shadow, its launch evaluation, champion.

        Production is gated: a champion there needs a passing evaluation against the current champion.
        A first launch has no champion to run beside, so its evaluation records the held-out figures of
        training (compared with no champion: nothing to disagree with), and says so in its notes.
        """
        from protos.rtscore.v1 import registry_pb2 as pb

        self.deploy("author", v1.version, "integration", "champion", "v1 passes the integration suite")
        self.deploy("author", v1.version, "qa", "champion", "v1 signed off in qa")
        self.deploy("author", v1.version, ENVIRONMENT, "shadow", "v1 staged for its first launch")
        held_out = int(v1.report.get("held_out_rows", 0))
        notes = {
            "kind": "first launch: no champion in production to compare with",
            "held_out_rows": held_out,
            "held_out_auc": v1.report.get("held_out_auc"),
        }
        request = pb.EvaluationRequest(
            name=MODEL,
            candidate_version=v1.version,
            champion_version=0,
            environment=ENVIRONMENT,
            sample_size=held_out,
            agreement=1.0,
            score_distance=0.0,
            notes=json.dumps(notes),
        )
        self.call("service", "RecordEvaluation", request)
        self.promote(v1.version, "first launch of the fraud model")

    def stage_v2(self, v2: Trained) -> None:
        """v2 through integration and qa, then dark in production: shadow on the live traffic's copy."""
        self.deploy("author", v2.version, "integration", "champion", "v2 passes the integration suite")
        self.deploy("author", v2.version, "qa", "champion", "v2 signed off in qa")
        self.deploy("author", v2.version, ENVIRONMENT, "shadow", "v2 runs dark on live traffic")

    def evaluate(
        self, version: int, labels: Path | None = None, since: datetime | None = None
    ) -> dict[str, Any]:
        """`rtscore shadow evaluate MODEL@V --env production --json [--since T]`, recorded in the registry.

        `labels` (chargebacks for the traffic's transactions) are stored first, as `rtscore shadow label`
        stores them, so the evaluation carries the AUC of both models.
        """
        if labels is not None:
            import asyncio

            from shadow.queries import load_labels

            asyncio.run(load_labels(self.platform.database_url, labels))
        env = {**self.platform.env, "RTSCORE_TOKEN": read_token(self.platform.tokens["service"])}
        args = ["shadow", "evaluate", f"{MODEL}@{version}", "--env", ENVIRONMENT, "--json"]
        if since is not None:
            args += ["--since", since.isoformat()]
        args_, popen = _start(args, env)
        out, err = popen.communicate()  # status 3 is a recorded evaluation that failed: the JSON says why
        (self.platform.work / "logs" / "shadow-evaluate.log").write_text(out + err)
        result = _last_json(out)
        if not result:
            raise RtscoreError(f"rtscore {' '.join(args_)} failed ({popen.returncode}): {err[-600:]}")
        return result

    def history(self) -> list[dict[str, Any]]:
        """The model's audit log, oldest first, as `rtscore registry history fraud --json` prints it."""
        from protos.rtscore.v1 import registry_pb2 as pb
        from registry.cli import message_json

        events = message_json(self.call("author", "History", pb.HistoryRequest(name=MODEL)))["events"]
        for event in events:
            for key in ("before_json", "after_json"):
                raw = event.pop(key)
                event[key.removesuffix("_json")] = json.loads(raw) if raw else None
        return list(events)
