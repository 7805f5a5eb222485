"""`rtscore demo`: the whole platform, from training to a live promotion, in one command."""
