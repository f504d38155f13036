"""FitResult: a fitted (or given) law that predicts loss, round-trips through JSON. Pure.

The search layer loads a fit JSON (``archsearch.law.read_fit``) and calls ``FitResult.predict`` on
candidate shapes; ``predict_samples`` gives one prediction per bootstrap parameter sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from archsearch.law.bootstrap import percentile_interval
from archsearch.law.data import LawData
from archsearch.law.forms import chinchilla, get_form

L_OPT_KINDS = ("chinchilla", "best_observed", "constant", "power_law")
DOMAIN_COLUMNS = ("x", "r", "N", "D")


@dataclass
class LOpt:
    """How L_opt(N, D) (nats/token) is obtained for the conditional forms.

    Attributes:
        kind: ``"chinchilla"`` (``params`` of a Chinchilla law, E/A/B/alpha and optional beta),
            ``"best_observed"`` (``table``: lowest observed loss per ``LawData.groups`` key) or
            ``"constant"`` (``value``, e.g. a known L_opt at one target budget) or
            ``"power_law"`` (``params`` ``a``, ``k``: ``L = exp(a) (6 N D)^-k``, an extrapolation
            in training compute through a few budgets' best losses).
    """

    kind: str
    params: dict[str, float] = field(default_factory=dict)
    table: dict[str, float] = field(default_factory=dict)
    value: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in L_OPT_KINDS:
            raise ValueError(f"L_opt kind must be one of {L_OPT_KINDS}, got {self.kind!r}")

    def __call__(self, data: LawData) -> np.ndarray:
        """L_opt for every row of ``data``, shape ``(n,)``."""
        if self.kind == "chinchilla":
            return chinchilla(self.params, data.N, data.D)
        if self.kind == "constant":
            return np.full(len(data), float(self.value))
        if self.kind == "power_law":
            return np.exp(self.params["a"]) * (6.0 * data.N * data.D) ** -self.params["k"]
        keys = data.groups()
        missing = sorted(set(keys) - set(self.table))
        if missing:
            raise KeyError(
                f"best-observed L_opt has no entry for groups {missing}: pass l_opt explicitly "
                "or use a Chinchilla L_opt to predict at unseen (N, D)"
            )
        return np.array([self.table[k] for k in keys])


@dataclass
class FitResult:
    """A law with its parameters and everything needed to reproduce and use it.

    Attributes:
        form: registered form name (``archsearch.law.FORMS``).
        params: natural parameter values by name.
        l_opt: the L_opt model for conditional forms (None for forms that do not use it).
        fitter: ``"lm"``, ``"huber"`` or ``"given"`` (``from_params``).
        settings: fit settings (delta, r filter, starts, bootstrap size, seed, data source).
        objective: the fitter's final objective.
        metrics: ``mse`` (nats^2), ``r2``, ``n`` on the data used.
        intervals: ``name -> [low, high]`` bootstrap percentile intervals for parameters and
            for the optimum (``x*``, ``r*``).
        optimum: the architecture optimum (``x``, ``r``) where the form has one.
        bootstrap: parameter samples, ``(B, P)`` natural values in ``params`` order.
        data: the rows used, column -> list.
        domain: the validity domain, column (``x``, ``r``, ``N``, ``D``) -> ``[low, high]``: the
            ranges the fit saw (or, for given coefficients, the ranges the caller states). A
            law is a prediction only inside it (the paper drops r > 5: Sec. 4, arXiv
            2510.18245). Empty: unknown.
        warnings: what is wrong with the fit or its predictions (``archsearch.law.check_fit``).
    """

    form: str
    params: dict[str, float]
    l_opt: LOpt | None = None
    fitter: str = "given"
    settings: dict[str, Any] = field(default_factory=dict)
    objective: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    optimum: dict[str, float] = field(default_factory=dict)
    bootstrap: list[list[float]] = field(default_factory=list)
    data: dict[str, list[Any]] = field(default_factory=dict)
    domain: dict[str, list[float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_params(
        cls,
        form: str,
        params: dict[str, float],
        l_opt: LOpt | dict[str, float] | float | None = None,
        domain: dict[str, tuple[float, float] | list[float]] | None = None,
    ) -> FitResult:
        """A law from given values, e.g. the paper's published coefficients.

        For the multiplicative form a ``b0`` entry is normalised away (a *= b0, b /= b0), so the
        paper's Task-3 values (a = 2.697, 0.0974, 0.0078; b = 0.387, 0.0063, 0.0065) can be passed
        as printed. ``l_opt`` may be an LOpt, Chinchilla parameters (dict) or a constant (float).
        ``domain`` states where the coefficients were fitted (``{"x": (0.04, 0.12), "r": (0.5,
        5)}``, any of ``x``, ``r``, ``N``, ``D``); without it the law has no known domain.
        """
        params = {k: float(v) for k, v in params.items()}
        if form == "multiplicative" and "b0" in params:
            b0 = params.pop("b0")
            params = {k: v * b0 if k.startswith("a") else v / b0 for k, v in params.items()}
        law = get_form(form)
        if set(params) != set(law.param_names):
            raise ValueError(f"{form} needs parameters {law.param_names}, got {sorted(params)}")
        if isinstance(l_opt, dict):
            l_opt = LOpt("chinchilla", params=dict(l_opt))
        elif isinstance(l_opt, int | float):
            l_opt = LOpt("constant", value=float(l_opt))
        optimum = law.optimum(params)
        return cls(
            form=form,
            params={n: params[n] for n in law.param_names},
            l_opt=l_opt,
            optimum={k: float(v) for k, v in (optimum or {}).items()},
            domain=check_domain(domain or {}),
        )

    def predict_data(self, data: LawData, samples: np.ndarray | None = None) -> np.ndarray:
        """Predicted loss (nats/token) for the rows of ``data``: ``(n,)``, or ``(B, n)`` for
        parameter ``samples (B, P)``. Rows with a finite ``data.l_opt`` use it; others get
        L_opt from ``self.l_opt``."""
        law = get_form(self.form)
        if "l_opt" in law.columns and not np.all(np.isfinite(data.l_opt)):
            if self.l_opt is None:
                raise ValueError(f"{self.form} needs L_opt: give l_opt or fit with one")
            data = data.with_l_opt(np.where(np.isfinite(data.l_opt), data.l_opt, self.l_opt(data)))
        cols = {c: getattr(data, c) for c in law.columns}
        if samples is None:
            return np.asarray(law.predict(self.params, cols), dtype=float)
        values = {n: np.asarray(samples)[:, i : i + 1] for i, n in enumerate(law.param_names)}
        return np.broadcast_to(law.predict(values, cols), (len(samples), len(data)))

    def predict(
        self,
        N: Any,
        D: Any,
        *,
        x: Any = None,
        r: Any = None,
        d_model: Any = None,
        n_layers: Any = None,
        l_opt: Any = None,
    ) -> np.ndarray:
        """Predicted loss (nats/token) for candidate shapes; arguments are scalars or arrays.

        Args:
            N: non-embedding parameters (the convention of the fit data).
            D: training tokens.
            x: ``d_model / sqrt(N)`` (default from ``d_model``).
            r: MLP-to-attention parameter ratio ``r_mlp_attn``.
            d_model, n_layers: model width and depth (the aspect-ratio form needs both).
            l_opt: L_opt(N, D) in nats/token, overriding the fit's own L_opt model.
        """
        return self.predict_data(_table(N, D, x, r, d_model, n_layers, l_opt))

    def predict_samples(self, N: Any, D: Any, **shape: Any) -> np.ndarray:
        """Like ``predict`` but one row per bootstrap sample: ``(B, n)``."""
        if not self.bootstrap:
            raise ValueError("this fit has no bootstrap samples (fit with n_bootstrap > 0)")
        data = _table(N, D, **shape)
        return self.predict_data(data, np.asarray(self.bootstrap))

    def predict_interval(
        self, N: Any, D: Any, level: float = 0.95, **shape: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bootstrap percentile interval of the predicted loss: ``(low, high)``, each ``(n,)``."""
        low, high = percentile_interval(self.predict_samples(N, D, **shape), level)
        return low, high

    def samples(self) -> list[dict[str, float]]:
        """Bootstrap parameter samples as dicts."""
        names = get_form(self.form).param_names
        return [dict(zip(names, row, strict=True)) for row in self.bootstrap]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitResult:
        data = dict(data)
        if data.get("l_opt") is not None:
            data["l_opt"] = LOpt(**data["l_opt"])
        return cls(**data)


def check_domain(domain: dict[str, Any]) -> dict[str, list[float]]:
    """A validity domain as ``{column: [low, high]}``, checked (known columns, low <= high)."""
    out = {}
    for name, bounds in domain.items():
        if name not in DOMAIN_COLUMNS:
            raise ValueError(f"domain column {name!r} is not one of {DOMAIN_COLUMNS}")
        low, high = (float(b) for b in bounds)
        if not low <= high:
            raise ValueError(f"domain of {name}: low {low} > high {high}")
        out[name] = [low, high]
    return out


def _table(
    N: Any,
    D: Any,
    x: Any = None,
    r: Any = None,
    d_model: Any = None,
    n_layers: Any = None,
    l_opt: Any = None,
) -> LawData:
    n = np.atleast_1d(np.asarray(N, dtype=float))
    cols = {
        "N": n,
        "D": D,
        "x": x,
        "r": r,
        "d_model": d_model,
        "n_layers": n_layers,
        "l_opt": l_opt,
    }
    size = len(n)
    for value in cols.values():
        if value is not None:
            size = max(size, np.size(value))
    full = {
        k: np.broadcast_to(np.asarray(v, dtype=float), (size,))
        for k, v in cols.items()
        if v is not None
    }
    full["loss"] = np.full(size, np.nan)
    return LawData.from_columns(**full)
