"""Property test: any settings value is either accepted or refused with a ConfigError naming it (issue 17).

Random values at every top-level setting and at the nested keys of real ones; whatever
``adscore validate-settings`` does with them (load, check, build the engine) raises nothing but
:class:`~adscore.errors.ConfigError`, and what it accepts also starts.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adscore.engine import Engine
from adscore.errors import ConfigError
from adscore.runtime import check_settings
from adscore.settings import Settings, load_settings
from adscore.state.memory import MemoryStateStore

FAST = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["memory://", "sqlite:///:memory:", "-", "snapshot.*", "(a+)+$", "(?=x)", "UTC", "mon", "08:00",
                     "10.0.0.0/8", '["1","2"', "stdout://", "ftp://x", "file:///nope"]),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=10), st.sampled_from([
                "snapshot.burst", "k8s.exec_copy", "threshold", "copy_commands", "default", "timezone", "days",
                "name", "principals", "detections", "start", "end", "maintenance", "enabled", "severity",
            ])),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)
FIELDS = sorted(Settings.model_fields)


@FAST
@given(st.dictionaries(st.sampled_from(FIELDS), values, min_size=1, max_size=3))
def test_any_settings_are_accepted_or_refused_by_name(overrides: dict[str, Any]) -> None:
    try:
        s = load_settings(None, **overrides)
        check_settings(s)
        Engine(s, MemoryStateStore())
    except ConfigError as exc:
        assert exc.setting and exc.reason
