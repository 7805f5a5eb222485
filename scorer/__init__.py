"""rtscore's scorer."""
