from __future__ import annotations

from collections.abc import Callable
from typing import Any

Compare = Callable[[Any, Any], list[str]]


def test_the_drift_check_catches_changed_keys_kinds_and_formats(same_shape: Compare) -> None:
    example = {
        "a": 1,
        "b": "13.33%",
        "c": [{"d": "02-SEP-25"}],
        "dbaName": None,
        "e": "2025-11-04T14:12:08.317+0000",
    }
    assert same_shape(example, {**example, "a": 2.5, "dbaName": "X"}) == []
    assert same_shape(example, {**example, "a": "1"})
    assert same_shape(example, {**example, "b": "13.33"})
    assert same_shape(example, {**example, "c": [{"d": "2025-09-02"}]})
    assert same_shape(example, {**example, "e": "2025-11-04T14:12:08.317Z"})
    assert same_shape(example, {k: v for k, v in example.items() if k != "a"})
    assert same_shape(example, {**example, "z": 1})
    assert same_shape(example, {**example, "c": []})
    assert same_shape([], [1])
