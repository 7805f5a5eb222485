"""Errors raised while reading or compiling decision trees."""

from __future__ import annotations

from rtscore.errors import InvalidArgument


class TreeFormatError(InvalidArgument):
    """A tree file is malformed; the message names the file and the node."""


class ForestInputError(InvalidArgument):
    """Rows handed to a compiled forest do not fit it (shape, dtype, too few features)."""
