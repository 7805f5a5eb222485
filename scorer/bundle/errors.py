"""Errors raised while reading a bundle or scoring a frame with it."""

from __future__ import annotations

from rtscore.errors import InvalidArgument
from scorer.frame import FrameError


class BundleError(InvalidArgument):
    """A bundle is malformed or unsupported; the message names the file, node and field."""


__all__ = ["BundleError", "FrameError"]
