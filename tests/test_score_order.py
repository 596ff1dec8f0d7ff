"""The report leads with the science: objectives, published metrics, the models' own scores;
diagnostics and constants set apart."""
import pandas as pd

import did_core.models.did  # noqa: F401  (registers DiD's diagnostics)
import did_core.models.parted_vae  # noqa: F401  (registers PartedVAE's own scores)
from orchestrator.report.score_order import is_constant, order_scores


def test_objectives_then_published_then_model_scores():
    scores = ["gaussian_tc", "h_acc_chance", "class_accuracy", "sap", "my_score", "h_acc_raw", "mig",
              "dci_disentanglement", "modularity"]
    finished = pd.DataFrame({s: [0.1, 0.2, 0.3] for s in scores}).assign(modularity=[0.5, 0.5, 0.5])
    order = order_scores(scores, [("sap", "maximize")], finished)
    # sap (the objective) first; then the published metrics in the registry's order (mig, dci, ..., tc);
    # then the models' own; a score no metric registers last
    assert order.shown == ["sap", "mig", "dci_disentanglement", "gaussian_tc", "class_accuracy", "my_score"]
    # DiD's diagnostics go to its own section, constant or not; a constant score is named once
    assert order.diagnostics == ["h_acc_chance", "h_acc_raw"] and order.constant == {"modularity": 0.5}


def test_an_objective_is_shown_even_when_constant():
    finished = pd.DataFrame({"mig": [0.2, 0.2], "sap": [0.1, 0.3]})
    assert order_scores(["sap", "mig"], [("mig", "maximize")], finished).shown == ["mig", "sap"]
    assert is_constant(pd.Series([0.2, 0.2 + 1e-12])) and not is_constant(pd.Series([0.2]))
    assert not is_constant(pd.Series([0.2, 0.21]))
