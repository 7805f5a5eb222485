"""rtscore's shadow."""
