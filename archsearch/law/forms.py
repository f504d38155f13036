"""Law forms with named parameters, vectorised over many parameter sets at once. Pure: numpy only.

A form maps named parameters and data columns to predicted loss (nats/token). ``predict`` takes a
``{name: value}`` mapping whose values are scalars or arrays of shape ``(S, 1)`` (S parameter sets,
e.g. a multi-start grid) and data columns of shape ``(n,)``, and broadcasts to ``(S, n)``: the
fitters evaluate whole start grids in one numpy call.

Fitting happens in a "fit space" where positive scale parameters (``Param.log``) are their natural
logs, as in Hoffmann et al. and Epoch AI (arXiv 2404.10102); results are always reported in natural
values. To add a form, subclass ``LawForm``, set ``name``, ``params`` and ``columns``, implement
``predict`` (and ``optimum`` if it has one) and decorate it with ``@register``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

Array = np.ndarray
Values = Mapping[str, "Array | float"]

_EXP = (0.0, 0.5, 1.0, 1.5, 2.0)  # Epoch AI's grid for exponents
_LOG_SCALE = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)  # ... for ln A and ln B
_LOG_E = (-1.0, -0.5, 0.0, 0.5, 1.0)  # ... for ln E


@dataclass(frozen=True)
class Param:
    """One named parameter.

    Attributes:
        name: the parameter's name in results and JSON.
        grid: starting values for multi-start fits, in fit space (ln of the value if ``log``).
        log: fitted as ln(value), so the value stays positive.
        bounds: (low, high) in fit space, used by the bounded Huber fitter.
    """

    name: str
    grid: tuple[float, ...]
    log: bool = False
    bounds: tuple[float, float] = (-np.inf, np.inf)


class LawForm:
    """Base class of a law form: see the module docstring."""

    name: ClassVar[str]
    params: ClassVar[tuple[Param, ...]]
    columns: ClassVar[tuple[str, ...]]  # LawData columns the form reads
    uses_r: ClassVar[bool] = False  # subject to the paper's 0.5 <= r <= 5 filter
    # The fitter used when none is named, the same through the API and the command line.
    default_fitter: ClassVar[str] = "lm"

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def architecture_columns(self) -> tuple[str, ...]:
        """The shape columns the form reads (none: it cannot tell architectures apart)."""
        return tuple(c for c in self.columns if c in ARCHITECTURE_COLUMNS)

    def predict(self, p: Values, cols: Mapping[str, Array]) -> Array:
        """Predicted loss (nats/token), broadcast over parameter sets and rows."""
        raise NotImplementedError

    def optimum(self, p: Values) -> dict[str, Array] | None:
        """The architecture optimum (e.g. x*, r*) as arrays (NaN where none exists), if any."""
        return None

    def to_values(self, theta: Array) -> dict[str, Array]:
        """Fit-space vectors ``(S, P)`` or ``(P,)`` to natural values ``{name: (S, 1) or ()}``."""
        theta = np.asarray(theta, dtype=float)
        out = {}
        for i, prm in enumerate(self.params):
            col = theta[..., i : i + 1] if theta.ndim == 2 else theta[i]
            out[prm.name] = np.exp(col) if prm.log else col
        return out

    def start_grid(self) -> Array:
        """The Cartesian product of every parameter's grid, shape ``(S, P)`` in fit space."""
        axes = np.meshgrid(*[np.asarray(p.grid) for p in self.params], indexing="ij")
        return np.stack([a.ravel() for a in axes], axis=1)

    def bounds(self) -> list[tuple[float | None, float | None]]:
        return [tuple(None if np.isinf(b) else b for b in p.bounds) for p in self.params]


ARCHITECTURE_COLUMNS = ("x", "r", "d_model", "n_layers")
FORMS: dict[str, LawForm] = {}


def register(cls: type[LawForm]) -> type[LawForm]:
    """Class decorator: add a form to ``FORMS`` under its ``name``."""
    FORMS[cls.name] = cls()
    return cls


def get_form(name: str) -> LawForm:
    """The registered form called ``name``."""
    if name not in FORMS:
        raise KeyError(f"unknown law form {name!r}; known: {sorted(FORMS)}")
    return FORMS[name]


def chinchilla(p: Values, n: Array, d: Array) -> Array:
    """Chinchilla ``E + A/N^alpha + B/D^beta`` (Hoffmann et al. 2022, Eq. 2), N params, D tokens."""
    beta = p["beta"] if "beta" in p else p["alpha"]  # tied exponent when beta is absent
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d**beta


@register
class Chinchilla(LawForm):
    """``L = E + A/N^alpha + B/D^beta``; A, B, E fitted in log space on Epoch AI's grid, by
    default with Huber(1e-3) on log loss as Hoffmann et al. and Epoch AI (arXiv 2404.10102)."""

    name = "chinchilla"
    default_fitter = "huber"
    params = (
        Param("E", _LOG_E, log=True),
        Param("A", _LOG_SCALE, log=True),
        Param("B", _LOG_SCALE, log=True),
        Param("alpha", _EXP),
        Param("beta", _EXP),
    )
    columns = ("N", "D")

    def predict(self, p: Values, cols: Mapping[str, Array]) -> Array:
        return chinchilla(p, cols["N"], cols["D"])


@register
class ChinchillaTied(LawForm):
    """``L = E + A/N^alpha + B/D^alpha`` with one exponent (Gadre et al. 2024, arXiv 2403.08540)."""

    name = "chinchilla_tied"
    params = (
        Param("E", _LOG_E, log=True),
        Param("A", _LOG_SCALE, log=True),
        Param("B", _LOG_SCALE, log=True),
        Param("alpha", _EXP[1:]),
    )
    columns = ("N", "D")

    def predict(self, p: Values, cols: Mapping[str, Array]) -> Array:
        return chinchilla(p, cols["N"], cols["D"])


@register
class AspectRatio(LawForm):
    """``L = (E + A/N^alpha + B/D^alpha)(1 + eps (d_model/n_layers)^alpha)`` (arXiv 2501.18107)."""

    name = "aspect_ratio"
    params = (
        Param("E", _LOG_E, log=True),
        Param("A", _LOG_SCALE, log=True),
        Param("B", _LOG_SCALE, log=True),
        Param("alpha", _EXP[1:]),
        Param("eps", (-12.0, -8.0, -4.0), log=True),
    )
    columns = ("N", "D", "d_model", "n_layers")

    def predict(self, p: Values, cols: Mapping[str, Array]) -> Array:
        aspect = cols["d_model"] / cols["n_layers"]
        return chinchilla(p, cols["N"], cols["D"]) * (1.0 + p["eps"] * aspect ** p["alpha"])


def _x_term(p: Values, x: Array) -> Array:
    """``a0 + a1 ln x + a2/x`` (Eq. 3, arXiv 2510.18245)."""
    return p["a0"] + p["a1"] * np.log(x) + p["a2"] / x


def _r_term(p: Values, r: Array) -> Array:
    """``b1 ln r + b2/r``: the r factor of Eq. 3, arXiv 2510.18245, without its constant."""
    return p["b1"] * np.log(r) + p["b2"] / r


def _ratio_optimum(num: Array | float, den: Array | float) -> Array:
    """``num/den`` where both are positive (a minimum of ``den ln z + num/z``), else NaN."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    ok = (num > 0) & (den > 0)
    return np.where(ok, num / np.where(ok, den, 1.0), np.nan)


_A_GRID = (0.5, 1.0)
_SMALL_GRID = (-0.05, 0.0, 0.05)


@register
class Multiplicative(LawForm):
    """``L = (a0 + a1 ln x + a2/x)(1 + b1 ln r + b2/r) L_opt(N, D)`` (Eq. 3, arXiv 2510.18245).

    b0 is fixed to 1: Eq. 3's a- and b-vectors trade a common factor. Optimum ``x* = a2/a1`` and
    ``r* = b2/b1`` when both parts are positive (independent of L_opt).
    """

    name = "multiplicative"
    params = (
        Param("a0", _A_GRID),
        Param("a1", _SMALL_GRID),
        Param("a2", _SMALL_GRID),
        Param("b1", _SMALL_GRID),
        Param("b2", _SMALL_GRID),
    )
    columns = ("x", "r", "l_opt")
    uses_r = True

    def predict(self, p: Values, cols: Mapping[str, Array]) -> Array:
        return _x_term(p, cols["x"]) * (1.0 + _r_term(p, cols["r"])) * cols["l_opt"]

    def optimum(self, p: Values) -> dict[str, Array]:
        return {"x": _ratio_optimum(p["a2"], p["a1"]), "r": _ratio_optimum(p["b2"], p["b1"])}


@register
class Additive(LawForm):
    """``L = (a0 + a1 ln x + a2/x) + (b1 ln r + b2/r) + L_opt(N, D)`` (arXiv 2510.18245, Sec. 3).

    The r part has no constant (it would duplicate a0). Optimum as for the multiplicative form.
    """

    name = "additive"
    params = (
        Param("a0", _SMALL_GRID),
        Param("a1", _SMALL_GRID),
        Param("a2", _SMALL_GRID),
        Param("b1", _SMALL_GRID),
        Param("b2", _SMALL_GRID),
    )
    columns = ("x", "r", "l_opt")
    uses_r = True

    def predict(self, p: Values, cols: Mapping[str, Array]) -> Array:
        return _x_term(p, cols["x"]) + _r_term(p, cols["r"]) + cols["l_opt"]

    optimum = Multiplicative.optimum


@register
class Joint(LawForm):
    """A non-separable comparison form: a quadratic surface in ``u = ln x`` and ``v = ln r``.

    ``L = (c0 + cu u + cv v + cuu u^2 + cvv v^2 + cuv u v) L_opt(N, D)``; the ``cuv`` cross term
    lets the best x depend on r. The optimum is the stationary point of the quadratic when its
    Hessian is positive definite.
    """

    name = "joint"
    params = (
        Param("c0", _A_GRID),
        Param("cu", _SMALL_GRID),
        Param("cv", _SMALL_GRID),
        Param("cuu", _SMALL_GRID),
        Param("cvv", _SMALL_GRID),
        Param("cuv", (0.0,)),
    )
    columns = ("x", "r", "l_opt")
    uses_r = True

    def predict(self, p: Values, cols: Mapping[str, Array]) -> Array:
        u, v = np.log(cols["x"]), np.log(cols["r"])
        surface = p["cu"] * u + p["cv"] * v + p["cuu"] * u**2 + p["cvv"] * v**2 + p["cuv"] * u * v
        return (p["c0"] + surface) * cols["l_opt"]

    def optimum(self, p: Values) -> dict[str, Array]:
        huu, hvv, huv = (2 * np.asarray(p["cuu"]), 2 * np.asarray(p["cvv"]), np.asarray(p["cuv"]))
        det = huu * hvv - huv**2
        ok = (huu > 0) & (det > 0)
        safe = np.where(ok, det, 1.0)
        u = (-np.asarray(p["cu"]) * hvv + np.asarray(p["cv"]) * huv) / safe
        v = (-np.asarray(p["cv"]) * huu + np.asarray(p["cu"]) * huv) / safe
        return {"x": np.where(ok, np.exp(u), np.nan), "r": np.where(ok, np.exp(v), np.nan)}
