"""selftrain: semi-supervised self-training of CTC speech recognizers."""
__version__ = "0.1.0"
