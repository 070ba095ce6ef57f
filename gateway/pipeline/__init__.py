"""The pure stages of the flow, in order: sniff -> envelope -> map -> route -> acknowledge.

Nothing here does I/O; ``process.process_submission`` runs them all on one submission.
"""
