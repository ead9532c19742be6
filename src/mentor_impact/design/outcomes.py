"""Event-time outcomes of the risk-set design, aligned to the (pseudo-)start week ``s``.

For a design row ``(i, s)`` the weekly state curve is ``Z_i(s + tau)`` for ``tau = 0..H``
(METHODS §3). From it this module derives, for every state and declared union:

* indicator curves ``Y[name][r, tau] = 1{Z_i(s + tau) in name}`` (int8, ``(n, H + 1)``);
* accumulated weeks ``{name}_acc_{a}_{b} = sum_{tau=a..b} Y(tau)``;
* status at single weeks ``{name}_w{t} = Y(t)``;

and two duration outcomes (time in weeks since ``s``):

* ``first_self_support``: first ``k >= 1`` that starts a run of ``L`` consecutive weeks in the
  sustained union (default ``self_support``, ``L = 4``);
* ``first_exit``: first ``k >= 1`` in a state outside the origin set (the non-health benefit
  states), with the cause of that exit (employment, education, health/disability, other).

Pre-start curves (``tau = -weeks..-1``) for balance and placebo checks come from
:func:`pre_start_curves`, which re-gathers from the register with the row and start week that
every design row keeps (so it works after :meth:`EvaluationData.subset` too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mentor_impact._kernels import design as K
from mentor_impact.design.evaluation_data import DurationOutcome
from mentor_impact.exceptions import DataValidationError

__all__ = [
    "DEFAULT_STATUS_WEEKS",
    "DEFAULT_WINDOWS",
    "EXIT_CAUSES",
    "event_time_outcomes",
    "later_start_at_risk",
    "outcome_luts",
    "pre_start_curves",
]

DEFAULT_WINDOWS: tuple[tuple[int, int], ...] = ((1, 52), (1, 104), (1, 156), (105, 156))
DEFAULT_STATUS_WEEKS: tuple[int, ...] = (26, 52, 104, 156)
EXIT_CAUSES: tuple[str, ...] = ("employment", "education", "health_disability", "other")
EXIT_ORIGIN: tuple[str, ...] = ("passive_benefit", "activation", "subsidised_job")
_EXIT_CAUSE_OF_STATE: dict[str, int] = {
    "employed": 1,
    "education": 2,
    "health_benefit": 3,
    "retired_disabled": 3,
    "self_support_other": 4,
    "unknown": 4,
    "passive_benefit": 4,
    "activation": 4,
    "subsidised_job": 4,
    "dead_emigrated": 0,  # censoring, not a cause
}


def _states(catalog: Any) -> tuple[str, ...]:
    states = getattr(catalog, "states", None)
    if states is None or callable(states):
        states = catalog.STATES
    return tuple(states)


def outcome_luts(
    catalog: Any, names: Sequence[str] | None = None
) -> dict[str, npt.NDArray[np.int8]]:
    """Lookup tables ``state id -> 0/1`` for states and unions of a catalogue.

    Parameters
    ----------
    catalog : StateCatalog
        The register's state catalogue (``STATES`` and ``unions``).
    names : sequence of str, optional
        States or union names; default every state followed by every declared union.

    Returns
    -------
    dict of str to ndarray
        ``{name: lut}``, each ``lut`` of length ``n_states + 1`` with ``lut[-1] = -1`` (the
        fill value of weeks outside the register).

    Raises
    ------
    DataValidationError
        If a name is neither a state nor a union of the catalogue.
    """
    states = _states(catalog)
    unions: Mapping[str, Sequence[str]] = dict(getattr(catalog, "unions", {}) or {})
    if names is None:
        names = [*states, *[u for u in unions if u not in states]]
    out: dict[str, npt.NDArray[np.int8]] = {}
    unknown = [nm for nm in names if nm not in states and nm not in unions]
    if unknown:
        raise DataValidationError(
            f"outcomes: expected state or union names of the catalogue; {len(unknown)} unknown "
            f"({unknown}). Hint: states are {list(states)}, unions {list(unions)}."
        )
    for nm in names:
        members = (nm,) if nm in states else tuple(unions[nm])
        out[nm] = K.make_lut([states.index(x) for x in members], len(states))
    return out


def event_time_outcomes(
    states: npt.NDArray[np.int8],
    rows: npt.NDArray[np.int64],
    s: npt.NDArray[np.int64],
    *,
    catalog: Any,
    horizon: int = 156,
    names: Sequence[str] | None = None,
    windows: Sequence[tuple[int, int]] = DEFAULT_WINDOWS,
    status_weeks: Sequence[int] = DEFAULT_STATUS_WEEKS,
    sustain: int = 4,
    sustained_outcome: str = "self_support",
    exit_origin: Sequence[str] = EXIT_ORIGIN,
    eligible_states: Sequence[str] = ("passive_benefit", "activation"),
    censor_missing: bool = False,
    chunk: int = 32_768,
) -> tuple[
    dict[str, npt.NDArray[Any]], dict[str, DurationOutcome], npt.NDArray[np.int64]
]:
    """Outcome curves, accumulated weeks, status, and duration outcomes for design rows.

    Parameters
    ----------
    states : ndarray of shape (N, W), int8
        State-id matrix of the register.
    rows, s : ndarray of shape (n,), int64
        Register row and start column of each design row.
    catalog : StateCatalog
        State catalogue (names of states and unions).
    horizon : int, default=156
        Last horizon week ``H``; curves cover ``tau = 0..H``.
    names : sequence of str, optional
        States and unions to build curves for; default every state and union.
    windows : sequence of (int, int), default=((1, 52), (1, 104), (1, 156), (105, 156))
        Inclusive ``(a, b)`` windows for accumulated weeks (windows with ``b > H`` skipped).
    status_weeks : sequence of int, default=(26, 52, 104, 156)
        Weeks for status outcomes (weeks ``> H`` skipped).
    sustain : int, default=4
        ``L``, the length of a sustained spell.
    sustained_outcome : str, default="self_support"
        State or union of the sustained-spell duration outcome.
    exit_origin : sequence of str
        States a person must leave for ``first_exit`` (default the non-health benefits).
    eligible_states : sequence of str
        Target states of the design; ``eligible_until`` counts the weeks the row keeps them.
    censor_missing : bool, default=False
        ``False``: every row is expected to have complete follow-up and curves are int8.
        ``True``: weeks after the end of the register are ``NaN`` in float32 curves and
        ``NaN`` in accumulated/status outcomes that touch them.
    chunk : int
        Rows per gather block (memory is about ``chunk * (H + 1) * 9`` bytes).

    Returns
    -------
    outcomes : dict of str to ndarray
        Curves ``name`` (``(n, H + 1)``), ``{name}_acc_{a}_{b}`` and ``{name}_w{t}`` (``(n,)``).
    durations : dict of str to DurationOutcome
        ``first_self_support`` (cause ``"self_support"``) and ``first_exit`` (causes
        :data:`EXIT_CAUSES`).
    eligible_until : ndarray of shape (n,), int64
        ``E``: the number of consecutive weeks ``s + 1, ..., s + E`` in which the row stays
        eligible by the state rule (state in the week before is a target state); week
        ``s + E + 1`` is the first one it is not (or the register has ended). Capped at
        ``H + 1`` (eligible through the whole horizon). Its weeks at risk of a later start
        in ``(s, s + tau]`` are ``min(tau, E)`` (METHODS §5.4).

    Notes
    -----
    * Time scale of the durations: weeks since ``s``; an event at ``k`` means the spell
      starts (or the exit happens) in week ``s + k``, ``k >= 1`` (week ``s`` itself is the
      start week and is not searched).
    * ``first_self_support`` is an event at ``k`` when weeks ``k..k+L-1`` are all in the
      sustained union and fully observed. It is censored at the first week in
      ``dead_emigrated`` (death or emigration) if that comes first, otherwise at the last
      ``k`` whose spell could be seen within ``min(H, W - 1 - s)`` (administrative
      censoring at ``min(H, W-1-s) - L + 1``, floored at 0).
    * ``first_exit``: the first week ``k >= 1`` whose state is not in ``exit_origin``.
      Causes: ``employed`` -> 1 employment; ``education`` -> 2 education;
      ``health_benefit``/``retired_disabled`` -> 3 health_disability; everything else
      (``self_support_other``, ``unknown``) -> 4 other. An exit into ``dead_emigrated`` is a
      censoring at that week. No exit by ``min(H, W-1-s)``: censored there.
    """
    n_states = len(_states(catalog))
    state_names = _states(catalog)
    luts = outcome_luts(catalog, names)
    ss_lut = outcome_luts(catalog, [sustained_outcome])[sustained_outcome]
    origin_lut = K.make_lut([state_names.index(x) for x in exit_origin], n_states)
    elig_lut = K.make_lut([state_names.index(x) for x in eligible_states], n_states)
    cause_of = np.zeros(n_states + 1, dtype=np.int8)
    for nm, code in _EXIT_CAUSE_OF_STATE.items():
        if nm in state_names:
            cause_of[state_names.index(nm)] = code
    dead = state_names.index("dead_emigrated") if "dead_emigrated" in state_names else -2

    n = rows.shape[0]
    n_w = states.shape[1]
    h1 = horizon + 1
    curve_dtype: Any = np.float32 if censor_missing else np.int8
    curves = {nm: np.empty((n, h1), dtype=curve_dtype) for nm in luts}
    win = [(a, b) for a, b in windows if 0 <= a <= b <= horizon]
    stw = [t for t in status_weeks if 0 <= t <= horizon]
    ss_time = np.empty(n, dtype=np.float64)
    ss_event = np.empty(n, dtype=np.int64)
    ex_time = np.empty(n, dtype=np.float64)
    ex_event = np.empty(n, dtype=np.int64)
    elig_until = np.empty(n, dtype=np.int64)
    acc_dtype: Any = np.float64 if censor_missing else np.int16
    accs = {(nm, w_): np.empty(n, dtype=acc_dtype) for nm in luts for w_ in win}
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        ids = K.gather_windows(states, rows[a:b], s[a:b], h1)
        idp = ids.astype(np.intp)  # one index conversion for all lookups of the block
        idp[idp < 0] = n_states  # the fill slot of every lut
        for nm, lut in luts.items():
            c = lut.take(idp)
            if censor_missing:
                cf = c.astype(np.float32)
                cf[c < 0] = np.nan
                curves[nm][a:b] = cf
                for a_, b_ in win:  # NaN when the window reaches past the register end
                    accs[nm, (a_, b_)][a:b] = cf[:, a_ : b_ + 1].sum(axis=1, dtype=np.float64)
            else:
                curves[nm][a:b] = c
                for a_, b_ in win:
                    accs[nm, (a_, b_)][a:b] = np.add.reduce(
                        c[:, a_ : b_ + 1], axis=1, dtype=np.int16)
        tau_max = np.minimum(horizon, n_w - 1 - s[a:b])
        # deaths / emigrations
        is_dead = ids == dead
        dhit = is_dead.any(axis=1)
        dtau = np.where(dhit, np.argmax(is_dead, axis=1), np.iinfo(np.int64).max)
        # sustained spell
        k = K.first_sustained(ss_lut.take(idp), sustain, first=1)
        event = (k >= 1) & (k < dtau)
        admin = np.maximum(tau_max - sustain + 1, 0)
        cens = np.where(dhit & (dtau < admin), dtau, admin)
        ss_time[a:b] = np.where(event, k, cens)
        ss_event[a:b] = event.astype(np.int64)
        # first exit with cause
        kx, stx = K.first_exit(ids, origin_lut, first=1)
        hit = kx >= 1
        cause = np.where(hit, cause_of[stx], 0)
        ex_time[a:b] = np.where(hit, kx, tau_max)
        ex_event[a:b] = cause
        # eligibility by the state rule after s
        out = elig_lut.take(idp) != 1
        ohit = out.any(axis=1)
        elig_until[a:b] = np.where(ohit, np.argmax(out, axis=1), h1)
    outcomes: dict[str, npt.NDArray[Any]] = {}
    for nm, cur in curves.items():
        outcomes[nm] = cur
        for a_, b_ in win:
            outcomes[f"{nm}_acc_{a_}_{b_}"] = accs[nm, (a_, b_)]
        for t in stw:
            outcomes[f"{nm}_w{t}"] = cur[:, t].copy()
    durations = {
        "first_self_support": DurationOutcome(
            np.maximum(ss_time, 0.0), ss_event, (sustained_outcome,)
        ),
        "first_exit": DurationOutcome(np.maximum(ex_time, 0.0), ex_event, EXIT_CAUSES),
    }
    return outcomes, durations, elig_until


def later_start_at_risk(
    states: npt.NDArray[np.int8],
    rows: npt.NDArray[np.int64],
    s: npt.NDArray[np.int64],
    *,
    catalog: Any,
    horizon: int,
    eligible_states: Sequence[str],
    chunk: int = 32_768,
) -> npt.NDArray[np.uint8]:
    """Weeks after ``s`` in which each design row is at risk of a later start (bit-packed).

    Parameters
    ----------
    states : ndarray of shape (N, W), int8
        State-id matrix of the register.
    rows, s : ndarray of shape (n,), int64
        Register row and start column of each design row.
    catalog : StateCatalog or sequence of str
        The state catalogue.
    horizon : int
        ``H``.
    eligible_states : sequence of str
        Target states of the design.
    chunk : int
        Rows per gather block.

    Returns
    -------
    ndarray of shape (n, ceil((H + 1) / 8)), uint8
        ``np.packbits`` (big bit order) of the (n, H + 1) indicator whose column ``tau`` is
        1 when week ``s + tau`` is a week at risk of a start: the state in week
        ``s + tau - 1`` is a target state (the eligibility rule of the design). Column 0 is
        0 (the start week itself is not after ``s``); weeks after the register ends are 0.

    Notes
    -----
    Estimand B weights (METHODS §5.4) multiply the inverse probability of not starting over
    exactly these weeks: weeks after the person has left the eligible states contribute a
    factor 1, and a person who re-enters them is at risk again.
    """
    state_names = _states(catalog)
    n_states = len(state_names)
    elig_lut = K.make_lut([state_names.index(x) for x in eligible_states], n_states)
    n = rows.shape[0]
    h1 = horizon + 1
    out = np.zeros((n, (h1 + 7) // 8), dtype=np.uint8)
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        ids = K.gather_windows(states, rows[a:b], s[a:b], h1)  # weeks s .. s + H
        idp = ids.astype(np.intp)
        idp[idp < 0] = n_states  # the fill slot of the lut
        at = np.zeros((b - a, h1), dtype=bool)
        at[:, 1:] = elig_lut.take(idp[:, :-1]) == 1
        out[a:b] = np.packbits(at, axis=1)
    return out


def pre_start_curves(
    register: Any,
    data: Any,
    names: Sequence[str] | None = None,
    *,
    weeks: int = 156,
    dtype: npt.DTypeLike = np.float32,
    chunk: int = 32_768,
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[Any]]]:
    """Pre-start state curves ``tau = -weeks..-1`` for balance and placebo checks.

    Parameters
    ----------
    register : WeeklyRegister
        The register the design was built from.
    data : EvaluationData
        A risk-set design (``cluster`` = register row, ``start_week`` = start column); any
        subset of one works.
    names : sequence of str, optional
        States or unions; default every state and union of the catalogue.
    weeks : int, default=156
        Number of weeks before ``s``.
    dtype : {numpy.float32, numpy.int8}, default=numpy.float32
        ``float32``: ``NaN`` for weeks before the first register week. ``int8`` (a quarter
        of the memory: 0.44 GB per curve for 2.8 million rows): ``-1`` for those weeks.
    chunk : int, default=32768
        Rows per gather block (memory control).

    Returns
    -------
    tau : ndarray of shape (weeks,)
        ``-weeks..-1``.
    curves : dict of str to ndarray of shape (n, weeks)
        Indicator curves of the requested ``dtype``.

    Raises
    ------
    DataValidationError
        If ``data`` has no start weeks or rows outside the register.

    Notes
    -----
    Column ``j`` is week ``s - weeks + j``. Nothing at or after ``s`` is used.
    """
    if getattr(data, "start_week", None) is None:
        raise DataValidationError(
            "data: expected a risk-set design with start_week and cluster (register row); "
            "found start_week=None. Hint: build the data with RiskSetDesign.build."
        )
    out_dtype = np.dtype(dtype)
    if out_dtype not in (np.dtype(np.float32), np.dtype(np.int8)):
        raise DataValidationError(
            f"dtype: expected numpy.float32 or numpy.int8; got {out_dtype}."
        )
    st = register.states()
    rows = np.asarray(data.cluster, dtype=np.int64)
    s = np.asarray(data.start_week, dtype=np.int64)
    bad = (rows < 0) | (rows >= st.shape[0]) | (s < 0) | (s >= st.shape[1])
    if bad.any():
        pos = np.flatnonzero(bad)[:5].tolist()
        raise DataValidationError(
            f"data: expected register rows and start columns inside the register; found "
            f"{int(bad.sum())} outside (rows {pos}). Hint: pass the register the design was "
            "built from."
        )
    luts = outcome_luts(register.catalog, names)
    n = rows.shape[0]
    curves: dict[str, npt.NDArray[Any]] = {
        nm: np.empty((n, weeks), dtype=out_dtype) for nm in luts
    }
    for a in range(0, n, chunk):  # blocks of rows: the index arrays stay small
        b = min(a + chunk, n)
        idp = K.gather_windows(st, rows[a:b], s[a:b] - weeks, weeks).astype(np.intp)
        for nm, lut in luts.items():
            c = lut.take(idp)  # the fill -1 indexes lut[-1] = -1
            if out_dtype == np.int8:
                curves[nm][a:b] = c
            else:
                cf = curves[nm][a:b]
                cf[...] = c
                cf[c < 0] = np.nan
    return np.arange(-weeks, 0, dtype=np.int64), curves
