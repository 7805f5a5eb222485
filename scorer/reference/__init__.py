"""MLeap's JVM runtime as rtscore's reference: scores to compare against, a speed peer, a bundle re-writer."""

from scorer.reference.harness import ReferenceFailure, ReferenceHarness

__all__ = ["ReferenceFailure", "ReferenceHarness"]
