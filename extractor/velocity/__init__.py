"""Velocity features (count, sum and distinct count per entity over sliding windows) behind one interface."""

from extractor.velocity.base import VelocityStore, VelocityUnavailable
from extractor.velocity.plan import GroupPlan, VelocityEvent, VelocityPlan

__all__ = ["GroupPlan", "VelocityEvent", "VelocityPlan", "VelocityStore", "VelocityUnavailable"]
