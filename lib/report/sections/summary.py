"""The paper's conclusion, from the study's summary step: how each choice on the final model's chain was made
(from the brief: what each section compares, the metric it chooses by, the settings it fixes), the sections'
findings (restated, no new claim), the limits of the study and the selection optimism of the validation
accuracy against the test accuracy."""
from __future__ import annotations

from ...studies.sections import ancestors, brief, get
from ..formatting import Facts, pct, setting_phrase, setting_words, shown
from ..path import chosen_path
from ..reading import final_run

METRIC_WORDS = {"train_loss": "final training loss", "val_acc": "final validation accuracy",
                "val_loss": "final validation loss"}


def choices(chain: list[str]) -> list[dict]:
    """How each section of the final model's chain chose ({what, by}: its setting and the metric it chooses by,
    in words) and what it fixed ({what, value, from}: the setting, its value, the section that fixes it)."""
    made = [{"what": setting_words(get(name).compares), "fixed": False,
             "by": METRIC_WORDS.get(get(name).choose_by[0], get(name).choose_by[0])} for name in chain]
    fixed = [{"what": setting_words(field), "value": setting_phrase(field, value, adjective=True),
              "from": setting_words(get(name).compares)} for name in chain for field, value in get(name).fixed]
    return made + [{**item, "fixed": True} for item in fixed]


def facts(results: dict[str, dict], name: str) -> Facts:
    """The conclusion's prose values: n is the seed count of the path's rows, n_test the final model's."""
    spec = brief()
    chain = [*reversed(ancestors(spec.final)), spec.final]
    final, test = final_run(results), results[spec.test_step]["extra"]
    path = chosen_path(results)
    return Facts(values={
        "final": shown(final), "n": min(row["run"].get("n_seeds", 1) for row in path),
        "n_test": test.get("n_seeds", 1), "choices": choices(chain),
        "short": [setting_words(get(s).compares) for s in chain if get(s).epochs == "short"],
        "val_to_test": f"{float(pct(final['final_val_acc'])) - float(pct(test['test_acc'])):.1f}"})
