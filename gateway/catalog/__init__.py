"""Message structures (``schemas/edifact``) compiled once at start-up into what the validator
walks.  The mapping files (``mappings/``) are compiled against these structures by
``pipeline/mapping/compile.py``."""
