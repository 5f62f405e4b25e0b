"""XFR Desktop GUI (PySide6).  A thin layer over ``core``: no science in widgets."""
