"""Device hygiene of the explainers and metrics, checked without a GPU.

On CUDA two classes of bug appear that a CPU run never shows: ``.numpy()`` on a
tensor that is on the GPU (an error), and a tensor made without ``device=`` (on
the CPU) meeting one on the GPU (an error, or a silent copy per batch).  This test
reads the source: every ``.numpy()`` must have ``.cpu()`` in its chain (a no-op on
the CPU), and every torch factory call must say its device - ``device="cpu"``
where the tensor stays on the CPU on purpose (running sums, masks drawn with a
CPU generator so that every device sees the same samples).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = [
    *sorted((ROOT / "core" / "explain").rglob("*.py")),
    *sorted((ROOT / "core" / "metrics").rglob("*.py")),
]
FACTORIES = {
    "zeros",
    "ones",
    "empty",
    "full",
    "arange",
    "rand",
    "randn",
    "randint",
    "linspace",
    "eye",
    "tensor",
    "as_tensor",
}


def _chain_has_cpu(node: ast.expr) -> bool:
    """True when ``node`` (the receiver of ``.numpy()``) passed through ``.cpu()``."""
    while True:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "cpu":
                return True
            node = func.value if isinstance(func, ast.Attribute) else func
        elif isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        else:
            return False


def problems(source: str, name: str = "<source>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        func = node.func
        if func.attr == "numpy" and not node.args and not _chain_has_cpu(func.value):
            found.append(f"{name}:{node.lineno}: .numpy() without .cpu()")
        if (
            func.attr in FACTORIES
            and isinstance(func.value, ast.Name)
            and func.value.id == "torch"
            and not any(keyword.arg == "device" for keyword in node.keywords)
        ):
            found.append(f"{name}:{node.lineno}: torch.{func.attr}() without device=")
    return found


def test_the_check_finds_both_kinds_of_bug():
    bad = "x = t.detach().numpy()\ny = torch.zeros(3)\nz = torch.tensor([1.0])\n"
    assert problems(bad) == [
        "<source>:1: .numpy() without .cpu()",
        "<source>:2: torch.zeros() without device=",
        "<source>:3: torch.tensor() without device=",
    ]
    good = (
        "x = t.detach().cpu().numpy()\ny = t.cpu().double().numpy()\n"
        "z = torch.zeros(3, device=d)\nw = a[0].cpu()[1:].numpy()\n"
        "v = np.zeros(3)\nu = torch.zeros_like(t)\n"
    )
    assert problems(good) == []


def test_explainers_and_metrics_name_the_device_of_every_tensor():
    assert len(CHECKED) > 20  # the folders were found
    found = [
        problem
        for path in CHECKED
        for problem in problems(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == []
