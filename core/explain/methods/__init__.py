"""One module per explanation method; each registers itself on import.

Adding a method means adding a module here that defines an ``Explainer``
subclass decorated with ``core.explain.base.register``.
"""

import importlib
import pkgutil

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
