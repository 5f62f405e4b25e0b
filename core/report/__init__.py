"""Court-ready PDF reports: building, fonts, signing."""
