"""Bundle.ML reader and MLeap's ops: `load_bundle(path).transform(frame)`."""

from scorer.bundle.archive import ArchiveLimits
from scorer.bundle.errors import BundleError, FrameError
from scorer.bundle.model import Bundle, inspect_bundle, load_bundle

__all__ = ["ArchiveLimits", "Bundle", "BundleError", "FrameError", "inspect_bundle", "load_bundle"]
