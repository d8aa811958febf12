"""Hyper-parameters, each declared once: its name, default, rule and doc, in the estimator's class body.

::

    class LinearRegression(BaseEstimator):
        max_iter: int = param(default=1000, rule=Integer(1), doc="Gradient-descent iterations ...")

Everything else about a parameter is derived from that one line:

* ``__init__``: keyword arguments (``kw_only=False``: positional too) stored unchanged, as
  scikit-learn's ``clone`` and ``get_params`` require -- generated with a real signature, so
  ``inspect.signature``, scikit-learn and IDEs see it (type checkers through ``dataclass_transform``);
* validation: :func:`validate` checks every value against its rule and returns the values to
  use, with an error naming the parameter, the value received and what is accepted;
* the "Parameters" section of the class docstring: type (from the rule), default and doc.

A rule is a :class:`Rule`: ``check(value, name)`` returns the value to use or raises, and
``describe()`` says what it accepts, in numpydoc's words.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import textwrap
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from hml import backends

__all__ = [
    "ArrayLike",
    "Backend",
    "Boolean",
    "Declared",
    "Device",
    "Either",
    "FloatDtype",
    "Integer",
    "OneOf",
    "Param",
    "RandomState",
    "Real",
    "Rule",
    "Sizes",
    "param",
    "validate",
]

T = TypeVar("T")

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**kwargs: Any) -> Callable[[T], T]:
        """Only type checkers read it (PEP 681); at run time the class is left as it is."""
        return lambda cls: cls


# -- rules -------------------------------------------------------------------------------------
class Rule:
    """One hyper-parameter's rule: ``check(value, name)`` returns the value to use, or raises an
    error that names the parameter, the value and what is accepted; ``describe()`` says what is
    accepted (the type in the docstring's Parameters section)."""

    def check(self, value: Any, name: str) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _or_none(text: str, allow_none: bool) -> str:
    return f"{text} or None" if allow_none else text


def _shown(value: Any) -> str:
    """``value`` in an error message: an array by its shape and dtype (its repr can be megabytes)."""
    if getattr(value, "shape", None) is not None and not isinstance(value, (numbers.Number, np.generic)):
        return f"an array of shape {tuple(value.shape)} and dtype {getattr(value, 'dtype', '?')}"
    return repr(value)


@dataclass(frozen=True)
class Integer(Rule):
    """An integer ≥ ``minimum`` (bools refused), or None when ``allow_none``."""

    minimum: int = 0
    allow_none: bool = False

    def check(self, value: Any, name: str) -> int | None:
        if value is None and self.allow_none:
            return None
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < self.minimum:
            raise ValueError(f"{name} must be {self._accepted()}; got {_shown(value)}")
        return int(value)

    def _accepted(self) -> str:
        return _or_none(f"an integer >= {self.minimum}", self.allow_none)

    def describe(self) -> str:
        return _or_none("int", self.allow_none)


@dataclass(frozen=True)
class Real(Rule):
    """A finite number ≥ 0 (> 0 when ``positive``; of either sign when ``signed``), at most
    ``maximum`` (below it when ``below_maximum``), or None when ``allow_none``; returned as a
    Python float."""

    positive: bool = False
    maximum: float | None = None
    below_maximum: bool = False
    allow_none: bool = False
    signed: bool = False

    def check(self, value: Any, name: str) -> float | None:
        if value is None and self.allow_none:
            return None
        number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
        in_range = number and (self.signed or (value > 0 if self.positive else value >= 0))  # no str > 0
        if not (number and np.isfinite(cast(float, value)) and in_range):
            wanted = (
                "a finite number" if self.signed else "a finite number > 0" if self.positive else "a finite number >= 0"
            )
            wanted = wanted if self.maximum is None else f"a number in {self._interval()}"
            raise ValueError(f"{name} must be {_or_none(wanted, self.allow_none)}; got {_shown(value)}")
        result = float(value)
        if self.maximum is not None and (result >= self.maximum if self.below_maximum else result > self.maximum):
            raise ValueError(f"{name} must be in {_or_none(self._interval(), self.allow_none)}; got {result!r}")
        return result

    def _interval(self) -> str:
        return f"{'(' if self.positive else '['}0, {self.maximum:g}{')' if self.below_maximum else ']'}"

    def describe(self) -> str:
        return _or_none("float" if self.maximum is None else f"float in {self._interval()}", self.allow_none)


@dataclass(frozen=True)
class OneOf(Rule):
    """One of ``choices``. A string matches a string choice of the same text (a NumPy string too),
    and comes back as the choice itself; other values compare by type and value (so an array is
    never equal to a string)."""

    choices: tuple[Any, ...]

    def check(self, value: Any, name: str) -> Any:
        for choice in self.choices:
            if value is choice or (isinstance(choice, str) and isinstance(value, str) and value == choice):
                return choice
            if not isinstance(choice, str) and type(value) is type(choice) and value == choice:
                return value
        allowed = repr(self.choices[0]) if len(self.choices) == 1 else f"one of {list(self.choices)}"
        raise ValueError(f"{name} must be {allowed}; got {_shown(value)}")

    def describe(self) -> str:
        if len(self.choices) == 1:
            return repr(self.choices[0]).replace("'", '"')
        return "{" + ", ".join(repr(c).replace("'", '"') for c in self.choices) + "}"


@dataclass(frozen=True)
class Boolean(Rule):
    """True or False (NumPy's bools too)."""

    def check(self, value: Any, name: str) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ValueError(f"{name} must be True or False; got {_shown(value)}")

    def describe(self) -> str:
        return "bool"


@dataclass(frozen=True)
class Either(Rule):
    """The first of ``options`` that accepts the value."""

    options: tuple[Rule, ...]

    def check(self, value: Any, name: str) -> Any:
        messages = []
        for option in self.options:
            try:
                return option.check(value, name)
            except ValueError as exc:
                messages.append(str(exc).split(f"{name} must be ", 1)[-1].split("; got", 1)[0])
        raise ValueError(f"{name} must be {' or '.join(messages)}; got {_shown(value)}")

    def describe(self) -> str:
        return " or ".join(option.describe() for option in self.options)


@dataclass(frozen=True)
class ArrayLike(Rule):
    """An array (any backend's), a list or a DataFrame -- checked against the data where it is
    used; a string or a number is not one. ``what`` says what it holds."""

    what: str

    def check(self, value: Any, name: str) -> Any:
        if value is None or isinstance(value, (str, bytes, numbers.Number)):
            raise ValueError(f"{name} must be {self.what}; got {_shown(value)}")
        return value

    def describe(self) -> str:
        return "array-like"


@dataclass(frozen=True)
class WeightsByLabel(Rule):
    """A dict {label: weight}, each weight a finite number ≥ 0; returned with float weights."""

    def check(self, value: Any, name: str) -> dict[Any, float]:
        weights = value.values() if isinstance(value, Mapping) else [None]
        finite = (isinstance(w, numbers.Real) and not isinstance(w, bool) and 0 <= float(w) < math.inf for w in weights)
        if not all(finite):
            raise ValueError(f"{name} must be a dict {{label: weight >= 0}}; got {_shown(value)}")
        return {label: float(w) for label, w in value.items()}

    def describe(self) -> str:
        return "dict"


@dataclass(frozen=True)
class Sizes(Rule):
    """A sequence of at least ``min_length`` integers ≥ ``minimum`` (returned as a list), or None."""

    min_length: int = 1
    minimum: int = 1
    what: str = "integers"

    def check(self, value: Any, name: str) -> list[int] | None:
        if value is None:
            return None
        sizes = list(value) if isinstance(value, Iterable) and not isinstance(value, (str, bytes)) else []
        whole = (isinstance(n, numbers.Integral) and not isinstance(n, (bool, np.bool_)) for n in sizes)
        if not sizes or len(sizes) < self.min_length or not all(whole) or min(int(n) for n in sizes) < self.minimum:
            count = ("one", "two", "three")[self.min_length - 1] if self.min_length <= 3 else str(self.min_length)
            raise ValueError(
                f"{name} must be a list of at least {count} {'positive ' if self.minimum == 1 else ''}"
                f"integers ({self.what}) or None; got {_shown(value)}"
            )
        return [int(n) for n in sizes]

    def describe(self) -> str:
        return "list of int or None"


@dataclass(frozen=True)
class Backend(Rule):
    """A backend's name (:func:`hml.backends.backend_names`, or ``"auto"``) or None (follow
    :func:`hml.use_backend`, :func:`hml.set_backend`, ``HML_BACKEND``). Whether it can run here is
    found when the fit resolves it."""

    def check(self, value: Any, name: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, str) and (value == backends.AUTO or value in backends.backend_names()):
            return str(value)
        raise backends.BackendUnavailableError(
            f"unknown backend {value!r}; choose one of {[backends.AUTO, *backends.backend_names()]}"
        )

    def describe(self) -> str:
        return "str or None"


@dataclass(frozen=True)
class Device(Rule):
    """None, a device's name (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``), its index, or a device
    object of the backend's library. Whether the backend has it is found when the fit resolves it."""

    def check(self, value: Any, name: str) -> Any:
        if isinstance(value, (bool, np.bool_, float, complex, list, tuple, dict, set, bytes)):
            wanted = "None, a device name such as 'cpu' or 'cuda:0', an index or a device object"
            raise ValueError(f"{name} must be {wanted}; got {_shown(value)}")
        return value

    def describe(self) -> str:
        return "str, int, device or None"


@dataclass(frozen=True)
class FloatDtype(Rule):
    """``"float32"``, ``"float64"``, such a dtype of any library, or None (float32 input stays
    float32, the rest computes in float64); returned as the name."""

    def check(self, value: Any, name: str) -> str | None:
        if value is None:
            return None
        try:
            dtype = backends.dtype_name(value)
        except TypeError:
            dtype = None
        if dtype not in ("float32", "float64"):
            raise ValueError(f"{name} must be 'float32', 'float64' or None; got {_shown(value)}")
        return dtype

    def describe(self) -> str:
        return '{"float32", "float64"} or None'


@dataclass(frozen=True)
class RandomState(Rule):
    """None, a non-negative int seed or a ``numpy.random.Generator``: returned as the Generator that
    draws (on the host, so a seed gives the same numbers on every backend)."""

    def check(self, value: Any, name: str) -> np.random.Generator:
        try:
            return backends.check_random_state(value)
        except (ValueError, TypeError):
            raise ValueError(
                f"{name} must be None, a non-negative int or a numpy.random.Generator; got {_shown(value)}"
            ) from None

    def describe(self) -> str:
        return "int, numpy.random.Generator or None"


# -- declarations --------------------------------------------------------------------------------
@dataclass
class Param:
    """A hyper-parameter as its class declares it (see :func:`param`)."""

    default: Any
    rule: Rule
    doc: str
    kw_only: bool = True
    name: str = ""

    def section(self) -> str:
        """Its entry in a numpydoc Parameters section."""
        text = textwrap.fill(" ".join(self.doc.split()), width=92)
        return f"{self.name} : {self.rule.describe()}, default={self.default!r}\n" + textwrap.indent(text, "    ")


def param(*, default: T, rule: Rule, doc: str, kw_only: bool = True) -> T:
    """Declare a hyper-parameter: its default, its rule and a line (or a few) of documentation.

    Typed as returning the default, so a type checker reads ``max_iter: int = param(default=1000, ...)``
    as a field of that type (the class's ``dataclass_transform``); at run time it is a :class:`Param`,
    which :class:`Declared` collects and replaces by the default."""
    return cast(T, Param(default, rule, doc, kw_only))


@dataclass_transform(kw_only_default=True, field_specifiers=(param,))
class Declared:
    """Base of classes whose hyper-parameters are declared with :func:`param`: at class creation it
    collects them (its own, then its bases'), generates ``__init__`` and adds the Parameters section
    to the docstring -- before "Attributes" when there is one, else at the end."""

    #: The declarations in ``__init__`` order, by name (positional first, then keyword-only:
    #: the class's own, then those of its bases).
    __params__: dict[str, Param] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own: dict[str, Param] = {}
        for name, value in list(vars(cls).items()):
            if isinstance(value, Param):  # a copy: one declaration may serve several classes (VERBOSE)
                own[name] = dataclasses.replace(value, name=name)
                setattr(cls, name, value.default)
        _refuse_undeclared(cls, own)
        inherited: dict[str, Param] = {}
        for base in cls.__mro__[1:]:
            for name, declared in vars(base).get("__params__", {}).items():
                inherited.setdefault(name, declared)
        merged = {**own, **{n: p for n, p in inherited.items() if n not in own}}
        ordered = [p for p in merged.values() if not p.kw_only] + [p for p in merged.values() if p.kw_only]
        cls.__params__ = {p.name: p for p in ordered}
        if own:
            cls.__init__ = _generated_init(cls, ordered)  # type: ignore[method-assign]
        if ordered and vars(cls).get("__doc__"):
            cls.__doc__ = _documented(cls.__doc__, ordered)


def _refuse_undeclared(cls: type, declared: dict[str, Param]) -> None:
    """Annotated class attributes are parameters to a type checker (``dataclass_transform``): each
    must be one here too, or say it is not (``ClassVar``)."""
    for name, annotation in inspect.get_annotations(cls).items():
        if "ClassVar" in str(annotation) or name in declared:
            continue
        raise TypeError(
            f"{cls.__name__}.{name} is annotated but not declared with param(): declare it as a "
            "hyper-parameter, or annotate it ClassVar[...]"
        )


def _generated_init(cls: type, params: list[Param]) -> Callable[..., None]:
    positional = [p.name for p in params if not p.kw_only]
    keyword = [p.name for p in params if p.kw_only]
    arguments = ", ".join(["self", *(f"{n}=_defaults[{n!r}]" for n in positional)])
    if keyword:
        arguments += ", *, " + ", ".join(f"{n}=_defaults[{n!r}]" for n in keyword)
    body = "\n".join(f"    self.{p.name} = {p.name}" for p in params)
    namespace: dict[str, Any] = {}
    exec(f"def __init__({arguments}) -> None:\n{body}\n", {"_defaults": {p.name: p.default for p in params}}, namespace)
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = "Store the hyper-parameters unchanged; ``fit`` validates them (see the class's Parameters)."
    annotations: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        annotations.update(inspect.get_annotations(klass))
    init.__annotations__ = {p.name: annotations[p.name] for p in params if p.name in annotations} | {"return": "None"}
    return init


def _documented(doc: str | None, params: list[Param]) -> str:
    """``doc`` with a numpydoc Parameters section of ``params``, in the docstring's own indentation."""
    doc = doc or ""
    if "\nParameters\n" in inspect.cleandoc(doc) + "\n":
        raise TypeError("a class whose parameters are declared with param() must not write its own Parameters section")
    lines = doc.split("\n")
    at = next((i for i, line in enumerate(lines) if line.strip() == "Attributes" and i > 0), None)
    indent = ""
    for line in lines[1:]:
        if line.strip():
            indent = line[: len(line) - len(line.lstrip())]
            break
    section = "Parameters\n----------\n" + "\n".join(p.section() for p in params)
    block = textwrap.indent(section, indent).split("\n") + [""]
    if at is None:
        return doc.rstrip() + "\n\n" + "\n".join(block) + indent
    return "\n".join(lines[:at] + block + lines[at:])


def validate(obj: Any) -> types.SimpleNamespace:
    """Every declared hyper-parameter of ``obj`` checked against its rule: the values to use, by name.

    Raises (``ValueError``, or :class:`hml.BackendUnavailableError` for an unknown backend) at the
    first value its rule refuses, with a message naming the parameter, the value and what is accepted.
    """
    return types.SimpleNamespace(
        **{name: declared.rule.check(getattr(obj, name), name) for name, declared in type(obj).__params__.items()}
    )
