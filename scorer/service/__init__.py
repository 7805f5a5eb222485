"""The scorer service: hosts MLeap bundles and serves them over gRPC (rtscore's and MLeap's APIs)."""
