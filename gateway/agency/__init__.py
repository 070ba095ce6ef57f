"""The small SDK an agency system uses to receive canonical messages from its own queue."""
