"""Examples of user code that plugs into the explorer (importable as ``examples.<name>``)."""
