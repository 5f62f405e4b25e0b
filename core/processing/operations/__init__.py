"""One module per processing operation; each registers itself on import.

Adding an operation means adding a module here that defines an ``Operation``
subclass decorated with ``core.processing.base.register`` (see
``docs/processing.md``).
"""

import importlib
import pkgutil

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
