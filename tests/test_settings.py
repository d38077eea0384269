"""Settings come from defaults, then STUDIO_* variables, then flags; a bad value is one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.errors import StudioError
from studio.settings import Settings


def test_environment_overrides_defaults_with_the_right_types():
    s = Settings.from_env({"STUDIO_PORT": "9000", "STUDIO_SHARE": "yes", "STUDIO_OUTPUTS_DIR": "~/clips",
                           "STUDIO_CRF": "20", "STUDIO_SCORE": "0"})  # fmt: skip
    assert s.port == 9000 and s.share is True and s.crf == 20 and s.score is False
    assert s.outputs_dir == Path("~/clips").expanduser()


def test_flags_win_over_the_environment():
    assert Settings.from_env({"STUDIO_PORT": "9000"}, port=7000).port == 7000


def test_a_bad_number_names_the_variable():
    with pytest.raises(StudioError, match="STUDIO_PORT must be a whole number, got 'abc'"):
        Settings.from_env({"STUDIO_PORT": "abc"})
