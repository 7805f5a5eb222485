"""rtscore's extractor."""
