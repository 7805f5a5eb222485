"""rtscore's benchmarks."""
