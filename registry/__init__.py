"""rtscore's registry."""
