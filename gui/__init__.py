"""rtsvc.gui: the Qt control panel (PySide6, install the `gui` extra)."""
