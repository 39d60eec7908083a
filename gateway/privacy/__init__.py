"""Privacy: what never leaves in logs, what is deleted when, and (later) purge and export."""
