"""Calendar providers; `load(settings)` (connectors/registry.py) builds the app's registry."""

from connectors.registry import load

__all__ = ["load"]
