"""TavusInteractionsParams: Pipecat's ``*_secs`` spelling next to the package's ``*_s``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipecat_tavus_interactions import TavusInteractionsParams
from pipecat_tavus_interactions.params import SECONDS_FIELDS, pipecat_name


@pytest.mark.parametrize("name", SECONDS_FIELDS)
def test_each_duration_is_accepted_under_pipecats_name(name):
    params = TavusInteractionsParams(**{pipecat_name(name): 7.5})
    assert getattr(params, name) == 7.5
    assert TavusInteractionsParams(**{name: 7.5}) == params


def test_the_pipecat_names_are_the_secs_spelling():
    assert [pipecat_name(n) for n in SECONDS_FIELDS] == [
        "heartbeat_timeout_secs",
        "bot_speaking_interval_secs",
        "echo_done_fallback_secs",
        "ready_timeout_secs",
        "tool_timeout_secs",
    ]


def test_both_spellings_at_once_is_an_error_that_names_them():
    with pytest.raises(ValidationError, match="tool_timeout_s and tool_timeout_secs"):
        TavusInteractionsParams(tool_timeout_s=1, tool_timeout_secs=2)


def test_the_secs_spelling_is_validated_like_the_other():
    with pytest.raises(ValidationError, match="greater than 0"):
        TavusInteractionsParams(ready_timeout_secs=0)
    assert TavusInteractionsParams(heartbeat_timeout_secs=None).heartbeat_timeout_s is None


def test_unknown_settings_are_still_refused():
    with pytest.raises(ValidationError, match="tool_timeout_seconds"):
        TavusInteractionsParams(tool_timeout_seconds=3)
