"""`xfr eval faithfulness` on a small folder of identities built from bundled photos."""

from __future__ import annotations

import json

import pytest

from core.cli import main


@pytest.mark.dlib
@pytest.mark.slow
@pytest.mark.parametrize(
    "metric", ["deletion-insertion", "hiding-game", "pixel-elimination"]
)
def test_eval_faithfulness_writes_tables_and_curves(
    bundled_identities, tmp_path, capsys, metric
):
    code = main(
        ["eval", "faithfulness", "--data", str(bundled_identities), "--methods",
         "gradient,gradcam", "--metric", metric, "--device", "cpu",
         "--out", str(tmp_path), "--json"]
    )  # fmt: skip
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["pairs_used"] >= 2 and payload["metric"] == metric
    methods = {row["method"] for row in payload["rows"]}
    assert methods == {"gradient", "gradcam"}
    assert (tmp_path / "table.md").read_text().startswith("| method")
    assert (tmp_path / f"{metric}.png").stat().st_size > 1000
    assert list(tmp_path.glob("*.csv"))
    if metric == "deletion-insertion":
        kinds = {row["map"].split()[0] for row in payload["rows"]}
        assert kinds == {"similarity", "dissimilarity"}
        for row in payload["rows"]:
            assert 0 < row["deletion_auc"] <= 1 and 0 < row["insertion_auc"] <= 1


def test_eval_faithfulness_unknown_method_is_exit_2(bundled_identities, capsys):
    code = main(
        ["eval", "faithfulness", "--data", str(bundled_identities), "--methods", "shap",
         "--metric", "hiding-game", "--device", "cpu"]
    )  # fmt: skip
    assert code == 2 and "unknown explanation method" in capsys.readouterr().err


def test_every_registered_metric_module_has_its_measure_and_no_module_is_left_out():
    import pkgutil

    from core.metrics import data_set

    modules = {m.name for m in pkgutil.iter_modules(data_set.__path__)}
    registered = {info.module.rpartition(".")[2] for info in data_set.METRICS.values()}
    assert modules == registered  # a metric module not in the table cannot be run
    for metric_id in data_set.metric_ids():
        assert callable(data_set.load(metric_id))
