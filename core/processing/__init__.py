"""Logged, reproducible, non-generative image processing (no Qt).

``get(op_id)`` gives an operation, ``infos()`` lists them, ``make_step`` /
``parse_step`` build checked steps, ``run_chain`` applies a chain, and
``chain_to_json`` / ``chain_from_json`` are its recorded form.  Derived exhibits
(the case side) are ``core/case/derivations.py``.
"""

from core.processing.base import (
    CATEGORIES,
    FrameSet,
    Operation,
    OperationInfo,
    ProcessingError,
    Step,
    StepContext,
    chain_from_json,
    chain_to_json,
    check_chain,
    get,
    infos,
    library_versions,
    make_step,
    parse_step,
    pixels_sha256,
    recorded_step,
    register,
    run_chain,
)

__all__ = [
    "CATEGORIES",
    "FrameSet",
    "Operation",
    "OperationInfo",
    "ProcessingError",
    "Step",
    "StepContext",
    "chain_from_json",
    "chain_to_json",
    "check_chain",
    "get",
    "infos",
    "library_versions",
    "make_step",
    "parse_step",
    "pixels_sha256",
    "recorded_step",
    "register",
    "run_chain",
]
