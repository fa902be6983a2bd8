"""``RefusesUnknownArguments``: a misspelt argument is a typed error, not silently dropped."""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import UnknownOptionError


class RefusesUnknownArguments:
    """The first base of every adapter class: an argument that is no field raises
    ``UnknownOptionError`` naming the closest field (``temprature`` -> ``temperature``),
    instead of being dropped the way pydantic drops extras by default."""

    model_fields: ClassVar[dict[str, Any]]

    def __init__(self, **data: Any) -> None:
        self._check_arguments(data)
        super().__init__(**data)

    @classmethod
    def _known_arguments(cls) -> set[str]:
        names = set(cls.model_fields)
        names.update(f.alias for f in cls.model_fields.values() if getattr(f, "alias", None))
        return names

    @classmethod
    def _check_arguments(cls, data: dict[str, Any]) -> None:
        UnknownOptionError.check(cls.__name__, data, cls._known_arguments())


__all__ = ["RefusesUnknownArguments"]
