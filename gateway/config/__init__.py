"""Configuration files as strict pydantic models: unknown keys are refused and every error
names the file, line and field."""
