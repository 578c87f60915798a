"""What a bot process at scale relies on: light imports and the GC helper."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from pipecat_tavus_interactions import ConfigurationError, tune_gc


def _modules_after_import(statement: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_importing_the_package_does_not_import_the_llm_service_stack():
    loaded = _modules_after_import("import pipecat_tavus_interactions")
    assert "pipecat_tavus_interactions.pipeline.facade" in loaded
    for heavy in ("pipecat.services.llm_service", "aiohttp", "PIL"):
        assert heavy not in loaded, f"import pipecat_tavus_interactions loads {heavy}"


def test_tool_params_stay_importable_by_their_public_name():
    loaded = _modules_after_import(
        "from pipecat_tavus_interactions import TavusFunctionCallParams\n"
        "from pipecat.services.llm_service import FunctionCallParams\n"
        "assert issubclass(TavusFunctionCallParams, FunctionCallParams)"
    )
    assert "pipecat.services.llm_service" in loaded


def test_unknown_names_still_raise_attribute_error():
    import pipecat_tavus_interactions as pkg

    with pytest.raises(AttributeError, match="no_such_name"):
        pkg.no_such_name  # noqa: B018


@pytest.fixture
def restore_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tune_gc_freezes_what_is_alive_and_raises_the_young_threshold(restore_gc):
    survivor = [[] for _ in range(1000)]  # tracked by the collector
    gc.unfreeze()
    before = gc.get_threshold()

    tuning = tune_gc(gen0_threshold=12_345)

    assert gc.get_threshold() == (12_345, before[1], before[2])
    assert tuning.previous_thresholds == before
    assert tuning.thresholds == gc.get_threshold()
    assert tuning.frozen == gc.get_freeze_count() >= len(survivor)
    collectable = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
    assert id(survivor[0]) not in collectable and id(survivor) not in collectable


def test_tune_gc_without_freeze_only_sets_the_threshold(restore_gc):
    gc.unfreeze()
    tuning = tune_gc(gen0_threshold=2_000, freeze=False)
    assert tuning.frozen == 0
    assert gc.get_threshold()[0] == 2_000


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "700"])
def test_tune_gc_rejects_a_threshold_that_is_not_a_positive_int(restore_gc, bad):
    before = gc.get_threshold()
    with pytest.raises(ConfigurationError, match="gen0_threshold"):
        tune_gc(gen0_threshold=bad)
    assert gc.get_threshold() == before
