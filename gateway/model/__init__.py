"""Frozen typed data passed between the stages of the flow; no behaviour beyond accessors."""
