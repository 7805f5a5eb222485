"""rtscore: real-time scoring of MLeap bundles over gRPC."""

__version__ = "0.1.0"
