"""Model selection on the validation split: the candidates, the choice, and what is never seen.

The settings the paper does not give are chosen by training candidates on "fit" and scoring them
on "validation" (``experiments.model_zoo.model_selection``); the zoo's own cache keys must not
move, and the test set must never be read.
"""

import pytest

from intriguing import data, zoo
from intriguing.display import tables
from intriguing.experiments import REGISTRY, model_zoo
from intriguing.plumbing import claims, config, results


def _row(setting, candidate, rung, err, zoo_flag="no"):
    return {"setting": setting, "model": "m", "candidate": candidate, "zoo": zoo_flag,
            "rung": str(rung), "fraction": results.cell(0.5), "epochs": results.cell(1),
            "pretrain_epochs": results.cell(0), "validation_error": results.cell(err),
            "train_seconds": results.cell(1.0)}


def _doc(rows):
    return {"name": "model_selection", "scale": "tiny", "settings": {}, "rows": rows}


# --- the choice -------------------------------------------------------------------------------


def test_pick_takes_the_lowest_validation_error():
    assert model_zoo.pick({"0.001": 0.031, "0.003": 0.022, "0.01": 0.027}) == "0.003"
    assert model_zoo.pick({"a": 0.02, "b": 0.02}) == "a"  # the first listed among equals
    with pytest.raises(ValueError, match="errors must hold at least one candidate"):
        model_zoo.pick({})


def test_survivors_keep_the_better_half_in_listed_order():
    assert model_zoo.survivors({"a": 0.3, "b": 0.1, "c": 0.2}) == ["b", "c"]
    assert model_zoo.survivors({"a": 0.1, "b": 0.4, "c": 0.3, "d": 0.2}) == ["a", "d"]
    assert model_zoo.survivors({"a": 0.5}) == ["a"]


@pytest.mark.parametrize("zoo_candidate, outcome", [
    ("0.003", "winner"), ("0.01", "not_winner"), ("0.001", "zoo_out")])
def test_summary_names_the_last_rungs_winner_and_judges_the_zoos_setting(zoo_candidate,
                                                                          outcome):
    # rung 1 ranks 0.01 first; rung 2 (longer) ranks 0.003 first: the last rung decides
    table = [("0.001", 1, 0.30), ("0.003", 1, 0.20), ("0.01", 1, 0.10),
             ("0.003", 2, 0.05), ("0.01", 2, 0.07)]
    doc = _doc([_row("mlp_lr", c, r, e, "yes" if c == zoo_candidate else "no")
                for c, r, e in table])
    out = model_zoo.summarize_model_selection(doc)
    assert out["summaries"]["winners"] == {"mlp_lr": "0.003"}
    assert out["summaries"]["validation_errors"] == {"mlp_lr": {"0.003": 0.05, "0.01": 0.07}}
    assert out["summaries"]["zoo_is_winner"] == {"mlp_lr": outcome == "winner"}
    c = claims.find(out, "mlp_lr_validation")
    assert c["outcome"] == outcome and c["verdict"] is None  # a finding: the paper gives none
    assert "5.00%" in c["sentence"] and "rung 1 (3 candidates)" in c["sentence"]


@pytest.mark.parametrize("fractions, zoo_candidate, outcome", [
    ((0.2, 0.4), "0.01", "not_winner_short"), ((0.2, 0.4), "0.001", "zoo_out_short"),
    ((0.2, 0.4), "0.003", "winner"), ((1.0,), "0.01", "not_winner")])
def test_a_shortened_schedule_that_disagrees_says_the_full_one_decides(fractions, zoo_candidate,
                                                                        outcome):
    table = [("0.001", 1, 0.30), ("0.003", 1, 0.20), ("0.01", 1, 0.10),
             ("0.003", 2, 0.05), ("0.01", 2, 0.07)]
    doc = _doc([_row("mlp_lr", c, r, e, "yes" if c == zoo_candidate else "no")
                for c, r, e in table])
    doc["settings"] = {"selections": {"mlp_lr": {"fractions": list(fractions)}}}
    c = claims.find(model_zoo.summarize_model_selection(doc), "mlp_lr_validation")
    assert c["outcome"] == outcome
    assert ("full schedule" in c["sentence"]) == outcome.endswith("_short")
    assert "5.00%" in c["sentence"]


def test_table_shows_each_rung_and_marks_the_winner():
    table = [("0.001", 1, 0.30), ("0.003", 1, 0.20), ("0.01", 1, 0.10),
             ("0.003", 2, 0.05), ("0.01", 2, 0.07)]
    doc = _doc([_row("mlp_lr", c, r, e, "yes" if c == "0.01" else "no") for c, r, e in table])
    doc.update(model_zoo.summarize_model_selection(doc))
    page = tables.model_selection(doc, "mlp_lr")
    assert "<td>0.001</td><td></td><td>30.00%</td><td>—</td><td></td>" in page  # dropped
    assert "<td>0.003</td><td></td><td>20.00%</td><td>5.00%</td><td>winner</td>" in page
    assert "<td>0.01</td><td>yes</td><td>10.00%</td><td>7.00%</td><td></td>" in page
    assert "rung 2: 50% of the schedule (1 epochs)" in page
    with pytest.raises(ValueError, match=r"setting must be one of \['mlp_lr'\]"):
        tables.model_selection(doc, "lr")


# --- candidates and the zoo's cache keys ------------------------------------------------------


def test_candidates_train_on_fit_under_keys_of_their_own(tiny):
    before = {n: zoo.cache_key(zoo.spec(n), sc) for n in zoo.ALL
              for sc in (tiny, config.SCALES["book"])}
    specs = [model_zoo.candidate_spec(sel, v, f)
             for sel in model_zoo.SELECTIONS.values() for v in sel.candidates
             for f in (*sel.fractions, 1.0)]
    after = {n: zoo.cache_key(zoo.spec(n), sc) for n in zoo.ALL
             for sc in (tiny, config.SCALES["book"])}
    assert after == before  # making candidates changes no zoo model's key
    keys = {zoo.cache_key(s, config.SCALES["book"]) for s in specs}
    assert len(keys) == len(specs) and not keys & set(before.values())
    assert all(s.split == "fit" and s.name not in zoo.SPECS for s in specs)
    half = model_zoo.candidate_spec(model_zoo.SELECTIONS["ae_pretrain"],
                                    model_zoo.SELECTIONS["ae_pretrain"].candidates[0], 0.25)
    ae = zoo.spec("AE400-10")
    assert (half.epochs, half.pretrain_epochs) == (round(ae.epochs / 4), ae.pretrain_epochs // 4)
    # every setting's candidates hold the zoo's own value
    for sel in model_zoo.SELECTIONS.values():
        assert getattr(zoo.spec(sel.model), sel.field) in sel.candidates


@pytest.mark.parametrize("call, match", [
    (lambda: model_zoo.candidate_spec(model_zoo.SELECTIONS["mlp_lr"], 1e-3, 0.0),
     "fraction must be a positive finite number"),
    (lambda: model_zoo.candidate_spec(model_zoo.SELECTIONS["mlp_lr"], 1e-3, 1.5),
     "fraction must be at most 1"),
    (lambda: zoo.variant("FC100-100-10", split="test"), "changes must be one of"),
    (lambda: zoo.variant("FC999", lr=1e-3), "name must be one of"),
    (lambda: zoo.load_variant(zoo.spec("FC10(1)")), "s.name must not be a zoo model's name"),
])
def test_bad_arguments_raise_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- the experiment, on the synthetic set -----------------------------------------------------


def test_experiment_chooses_on_validation_and_never_reads_the_test_set(synthetic_mnist,
                                                                        monkeypatch, tiny):
    asked = []
    real_load = data.load_mnist  # the fixture's synthetic loader

    def load(split, limit=None):
        asked.append(split)
        return real_load(split, limit)

    monkeypatch.setattr(data, "load_mnist", load)
    monkeypatch.setitem(config.SCALES, tiny.name, tiny)  # results files at the tiny scale
    doc = model_zoo.model_selection(tiny, progress=False)
    assert "test" not in asked and {"fit", "validation"} <= set(asked)
    n = {k: len(s.candidates) for k, s in model_zoo.SELECTIONS.items()}
    assert len(doc["rows"]) == sum(c + (c + 1) // 2 for c in n.values())  # two rungs each
    assert set(doc["summaries"]["winners"]) == set(model_zoo.SELECTIONS)
    assert [c["id"] for c in doc["claims"]] == ["mlp_lr_validation", "ae_pretrain_validation"]
    assert doc == results.read("model_selection", tiny)
    assert REGISTRY["model_selection"].run is model_zoo.model_selection
    # a second run reads every candidate from its cache
    monkeypatch.setattr(zoo, "_train", lambda *a, **k: pytest.fail("cache hit expected"))
    again = model_zoo.model_selection(tiny, progress=False)
    assert [r["validation_error"] for r in again["rows"]] == \
        [r["validation_error"] for r in doc["rows"]]


# --- the page follows the numbers -------------------------------------------------------------


def _zoo_setting_at_last_rung(error: float):
    """An edit: the zoo's candidate reaches the last rung with validation error ``error``, every
    other candidate there with 50%."""
    def edit(doc):
        for setting in ("mlp_lr", "ae_pretrain"):
            rows = [r for r in doc["rows"] if r["setting"] == setting]
            zoo_label = next(r["candidate"] for r in rows if r["zoo"] == "yes")
            last = [r for r in rows if r["rung"] == max(r["rung"] for r in rows)]
            if zoo_label not in {r["candidate"] for r in last}:
                last[0].update(candidate=zoo_label, zoo="yes")
            for r in last:
                r["validation_error"]["ours"] = error if r["candidate"] == zoo_label else 0.5
    return edit


@pytest.mark.slow
@pytest.mark.parametrize("error, outcome", [(0.01, "winner"), (0.9, "not_winner_short")])
def test_model_zoo_page_states_what_the_validation_errors_show(tmp_path, error, outcome):
    """A copy of the smoke results where the zoo's settings win (or lose) the last rung: the
    chapter prints the sentences of that outcome, and not those of the real results."""
    from counterfactual import SCALE, change, ensure_results, execute, results_copy

    ensure_results(["model_selection", "model_zoo", "table1"])
    original = results.read("model_selection", SCALE)
    folder = results_copy(tmp_path)
    changed = change(folder, "model_selection", _zoo_setting_at_last_rung(error))
    page = execute("chapters/model_zoo.ipynb", folder)
    for cid in ("mlp_lr_validation", "ae_pretrain_validation"):
        new = claims.find(changed, cid)
        assert new["outcome"] == outcome, cid
        assert new["sentence"] in page, cid
        old = claims.find(original, cid)
        if old["sentence"] != new["sentence"]:
            assert old["sentence"] not in page, cid
