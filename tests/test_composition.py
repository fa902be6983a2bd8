"""The composition refuses what no backend knows, before anything loads."""

from __future__ import annotations

import pytest

from furiosa_integrations.engine import UnknownOptionError, get_engine


def test_unknown_engine_options_are_refused_naming_the_closest() -> None:
    # Options are part of the shared engine's key: a typo must not build a second engine.
    with pytest.raises(UnknownOptionError, match="did you mean 'max_num_seqs'"):
        get_engine(max_num_seq=4)
    with pytest.raises(UnknownOptionError, match="did you mean 'max_batch_size'"):
        get_engine(task="embed", max_batch_sizes=8)
