"""Message <-> canonical model, driven by the mapping files of ``mappings/`` (the language:
docs/mappings.md).  ``compile`` checks a file against the directory and the model once at
start-up; ``mapping.CompiledMapping`` reads and renders; ``tree`` arranges a message's segments
into its groups; ``conversions`` holds the value conversions (numbers, 2379 dates)."""
