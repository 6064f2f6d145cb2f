"""Data layer: manifests, audio, tokenizers, features, batching and validation."""
