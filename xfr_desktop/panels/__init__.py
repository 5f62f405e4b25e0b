"""The main window's pages and docks: start page, exhibits, comparison, maps,
channels, conclusion, audit trail (each one QWidget the main window lays out)."""
