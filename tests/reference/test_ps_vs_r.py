"""PropensityModel vs R's glm on lalonde (entry ``lalonde.ps_logit``).

Tolerances: coefficients 1e-6 relative of R's default fit (R stops ~1e-8 from the MLE) and
1e-9 of R's tight-convergence refit; fitted PS and linear predictor 1e-6 relative.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mentor_impact.propensity import PropensityModel

sys.path.insert(0, str(Path(__file__).parent))
from _lalonde_ref import COVS, D, X, values


@pytest.fixture(scope="module")
def pm() -> PropensityModel:
    return PropensityModel().fit(X(), D())


def _coef(pm: PropensityModel) -> np.ndarray:
    return np.r_[pm.intercept_, pm.coef_]


def test_coef_vs_glm(pm):
    ref = values("lalonde.ps_logit")
    names = ["(Intercept)", *COVS]
    np.testing.assert_allclose(_coef(pm), [ref["coef"][k] for k in names], rtol=1e-6)
    np.testing.assert_allclose(
        _coef(pm), [ref["coef_tight_convergence"][k] for k in names], rtol=1e-9
    )


def test_ps_and_linear_predictor_vs_glm(pm):
    ref = values("lalonde.ps_logit")
    np.testing.assert_allclose(pm.ps_, ref["ps"], rtol=1e-6)
    np.testing.assert_allclose(pm.logit_, ref["linear_predictor"], rtol=1e-6, atol=1e-9)


def test_deviance_and_se_vs_glm(pm):
    ref = values("lalonde.ps_logit")
    np.testing.assert_allclose(pm.deviance_, ref["deviance"], rtol=1e-9)
    # standard errors on the original scale from the information on the design scale
    p = len(COVS)
    A = np.zeros((p + 1, p + 1))  # original = A @ design
    A[0, 0] = 1.0
    A[0, 1:] = -pm.mean_ / pm.scale_
    A[1:, 1:] = np.diag(1.0 / pm.scale_)
    V = A @ np.linalg.inv(pm.information_) @ A.T
    names = ["(Intercept)", *COVS]
    # R's summary.glm takes the IRLS weights of its last iteration (evaluated at the previous
    # iterate), not at the MLE: the SEs agree to ~5e-5 relative only.
    np.testing.assert_allclose(np.sqrt(np.diag(V)), [ref["se"][k] for k in names], rtol=1e-4)
