"""Message <-> canonical model, driven by the mapping files of ``mappings/`` (the language:
docs/mappings.md).  ``paths`` parses and resolves EDIFACT paths; ``compile`` checks a file
against the directory and the model once at start-up into the plans of ``compiled``, which
``codegen`` writes out as Python functions; ``mapping.CompiledMapping`` reads and renders;
``extract`` reads a segment's values from its quick-pass match; ``conversions`` holds the
value conversions (numbers, 2379 dates)."""
