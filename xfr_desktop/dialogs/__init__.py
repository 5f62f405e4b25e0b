"""Modal dialogs: settings, report export, new case, annotation details."""
