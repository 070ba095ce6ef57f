"""Message structures (schemas/) and mappings (mappings/) compiled once at start-up.

Today the CUSDEC mapping is code (pipeline/mapping); the directory-driven schemas and the
declarative mappings of the conformance and mapping work compile into this package.
"""
