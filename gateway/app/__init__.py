"""The composition root: the only place where I/O meets the pure pipeline."""
