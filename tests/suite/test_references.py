import json

import pytest

from gtrxl_jax.suite.minigrid_memory import optimal_return
from gtrxl_jax.suite.references import REFERENCES_PATH, load_references
from gtrxl_jax.suite.suites import CORE_VARIANTS, SUITES


@pytest.fixture(scope="module")
def refs():
    return load_references()


def test_reference_file_loads_with_sources(refs):
    assert refs.tasks
    for ref in refs.tasks:
        assert ref.random_source and ref.reference_source
        assert ref.kind in ("human", "published", "max")


@pytest.mark.parametrize("name", sorted(SUITES))
def test_every_suite_task_has_a_complete_reference(refs, name):
    for task in SUITES[name].scored_tasks():
        ref = refs.for_task(task)
        assert ref.complete, f"{task}: the random score is not measured yet"


def test_tmaze_family_reference(refs):
    ref = refs.for_task("TMaze-L123")
    assert ref.task == "TMaze-L123"
    assert (ref.random, ref.reference, ref.metric) == (0.5, 1.0, "episode_return")
    assert ref.normalize(0.75) == pytest.approx(50.0)
    for task in ("TMaze-Lx", "NoSuchTask-v0"):
        with pytest.raises(KeyError, match="no reference"):
            refs.for_task(task)


@pytest.mark.parametrize(
    ("task", "size", "random_length"),
    [
        ("MiniGrid-MemoryS7-v0", 7, False),
        ("MiniGrid-MemoryS9-v0", 9, False),
        ("MiniGrid-MemoryS11-v0", 11, False),
        ("MiniGrid-MemoryS13-v0", 13, False),
        ("MiniGrid-MemoryS13Random-v0", 13, True),
        ("MiniGrid-MemoryS17Random-v0", 17, True),
    ],
)
def test_minigrid_maxima_match_their_computation(refs, task, size, random_length):
    assert refs.for_task(task).reference == pytest.approx(
        optimal_return(size, random_length), abs=1e-4
    )


def test_ablation_paper_numbers_cover_the_ablation_variants(refs):
    paper = refs.ablation_paper["variants"]
    for variant in SUITES["ablation"].variants:
        assert variant in CORE_VARIANTS and {"mean", "capped"} <= set(paper[variant])
    assert paper["gtrxl_gru"] == {"mean": 117.6, "capped": 89.1, "divergence_pct": 0}


def test_malformed_entries_are_rejected(tmp_path):
    data = json.loads(REFERENCES_PATH.read_text())
    data["tasks"][0]["metric"] = "score"
    path = tmp_path / "refs.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="metric"):
        load_references(path)
    data = json.loads(REFERENCES_PATH.read_text())
    del data["tasks"][1]["reference"]["source"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="source"):
        load_references(path)
