"""CoxPH / PiecewiseExponential against R (survival 3.5.3) on the veteran data.

Values come from ``tests/reference/reference.json`` (copied from shared/reference, see
PROVENANCE.md); the exact R calls are in each test's docstring.  R preparation::

    vet <- read.csv('data/veteran.csv')
    vet$celltype <- factor(vet$celltype, levels = c('squamous', 'smallcell', 'adeno', 'large'))
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mentor_impact.duration import CoxPH, PiecewiseExponential

COVS = ["trt", "celltype", "karno", "diagtime", "age", "prior"]
NAMES = [
    "trt",
    "celltypesmallcell",
    "celltypeadeno",
    "celltypelarge",
    "karno",
    "diagtime",
    "age",
    "prior",
]


@pytest.fixture(scope="module")
def vet(reference_dir):
    df = pd.read_csv(reference_dir / "data" / "veteran.csv")
    df["celltype"] = pd.Categorical(
        df["celltype"], categories=["squamous", "smallcell", "adeno", "large"]
    )
    return df


def _vec(d, names=NAMES):
    return np.array([d[k] for k in names], dtype=float)


@pytest.fixture(scope="module")
def efron(vet):
    return CoxPH(ties="efron").fit(vet, duration="time", event="status", covariates=COVS)


@pytest.fixture(scope="module")
def breslow(vet):
    return CoxPH(ties="breslow").fit(vet, duration="time", event="status", covariates=COVS)


@pytest.fixture(scope="module")
def efron_robust(vet):
    return CoxPH(ties="efron").fit(
        vet, duration="time", event="status", covariates=COVS, robust=True
    )


@pytest.mark.parametrize("key,fixture", [("cox_efron", "efron"), ("cox_breslow", "breslow")])
class TestCoxModelBased:
    """``coxph(Surv(time, status) ~ trt + celltype + karno + diagtime + age + prior,
    data = vet, ties = 'efron' | 'breslow')``."""

    def test_names(self, key, fixture, request):
        assert list(request.getfixturevalue(fixture).names) == NAMES

    def test_coef(self, key, fixture, request, reference):
        r = request.getfixturevalue(fixture)
        ref = reference["entries"][f"veteran.{key}"]["values"]
        np.testing.assert_allclose(r.coef, _vec(ref["coef"]), rtol=1e-6)
        np.testing.assert_allclose(r.exp_coef.to_numpy(), _vec(ref["exp_coef"]), rtol=1e-6)

    def test_se(self, key, fixture, request, reference):
        r = request.getfixturevalue(fixture)
        ref = reference["entries"][f"veteran.{key}"]["values"]
        np.testing.assert_allclose(r.std_errors.to_numpy(), _vec(ref["se"]), rtol=1e-5)

    def test_cov(self, key, fixture, request, reference):
        r = request.getfixturevalue(fixture)
        v = reference["entries"][f"veteran.{key}"]["values"]["var"]
        ref = np.array([[v[a][b] for b in NAMES] for a in NAMES])
        np.testing.assert_allclose(r.cov, ref, rtol=1e-5, atol=1e-12)

    def test_z_p(self, key, fixture, request, reference):
        r = request.getfixturevalue(fixture)
        ref = reference["entries"][f"veteran.{key}"]["values"]
        np.testing.assert_allclose(r.tstats.to_numpy(), _vec(ref["z"]), rtol=1e-5)
        np.testing.assert_allclose(r.pvalues.to_numpy(), _vec(ref["p"]), rtol=1e-4)

    def test_loglik_and_tests(self, key, fixture, request, reference):
        r = request.getfixturevalue(fixture)
        ref = reference["entries"][f"veteran.{key}"]["values"]
        assert r.loglik == pytest.approx(ref["loglik"], rel=1e-9)
        assert r.loglik_null == pytest.approx(ref["loglik_null"], rel=1e-9)
        assert r.lr_test == pytest.approx(ref["lr_test"], rel=1e-7)
        assert r.score_test == pytest.approx(ref["score_test"], rel=1e-7)
        assert r.wald_test == pytest.approx(ref["wald_test"], abs=0.006)  # R rounds to 2 dp

    def test_iterations_n(self, key, fixture, request, reference):
        r = request.getfixturevalue(fixture)
        ref = reference["entries"][f"veteran.{key}"]["values"]
        assert r.iterations == ref["iter"]
        assert r.converged
        assert r.n == ref["n"]
        assert r.n_events == ref["nevent"]

    def test_concordance(self, key, fixture, request, reference):
        r = request.getfixturevalue(fixture)
        ref = reference["entries"][f"veteran.{key}"]["values"]
        assert r.concordance == pytest.approx(ref["concordance"], rel=1e-12)
        assert r.concordance_se == pytest.approx(ref["concordance_se"], rel=1e-10)
        c = r.concordance_counts
        cc = ref["concordance_counts"]
        assert c["concordant"] == cc["concordant"]
        assert c["discordant"] == cc["discordant"]
        assert c["tied_x"] == cc["tied.x"]
        assert c["tied_y"] == cc["tied.y"]

    def test_means(self, key, fixture, request, reference):
        r = request.getfixturevalue(fixture)
        ref = reference["entries"][f"veteran.{key}"]["values"]
        np.testing.assert_allclose(r.means, _vec(ref["means"]), rtol=1e-12)


class TestCoxRobust:
    """``coxph(..., ties = 'efron', robust = TRUE)``: Lin-Wei ``D'D`` of dfbeta residuals."""

    def test_robust_se(self, efron_robust, reference):
        ref = reference["entries"]["veteran.cox_efron_robust"]["values"]
        np.testing.assert_allclose(
            efron_robust.std_errors.to_numpy(), _vec(ref["robust_se"]), rtol=1e-5
        )
        np.testing.assert_allclose(
            efron_robust.std_errors_model.to_numpy(), _vec(ref["se"]), rtol=1e-5
        )

    def test_robust_var(self, efron_robust, reference):
        v = reference["entries"]["veteran.cox_efron_robust"]["values"]["var"]
        ref = np.array([[v[a][b] for b in NAMES] for a in NAMES])
        np.testing.assert_allclose(efron_robust.cov, ref, rtol=1e-5, atol=1e-12)

    def test_robust_z_wald(self, efron_robust, reference):
        ref = reference["entries"]["veteran.cox_efron_robust"]["values"]
        np.testing.assert_allclose(efron_robust.tstats.to_numpy(), _vec(ref["z"]), rtol=1e-5)
        assert efron_robust.wald_test == pytest.approx(ref["wald_test"], abs=0.006)
        assert efron_robust.cov_type == "robust"


class TestBasehaz:
    """``basehaz(coxph(..., ties = 'efron'), centered = FALSE | TRUE)`` at 30/90/180/365."""

    @pytest.mark.parametrize("centered", [False, True])
    def test_basehaz(self, efron, reference, centered):
        ref = reference["entries"]["veteran.basehaz_efron"]["values"]
        h = efron.baseline_cumulative_hazard(ref["times"], centered=centered)
        key = "centered" if centered else "uncentered"
        np.testing.assert_allclose(h["hazard"].to_numpy(), ref[key], rtol=1e-6)

    def test_predict_survival_consistent(self, efron, vet):
        s = efron.predict_survival(vet.iloc[:3], [30, 90])
        h = efron.baseline_cumulative_hazard([30, 90])["hazard"].to_numpy()
        lp = efron.predict_linear(vet.iloc[:3])
        np.testing.assert_allclose(s.to_numpy(), np.exp(-np.outer(h, np.exp(lp))), rtol=1e-12)


class TestPiecewiseExponential:
    """``vs <- survSplit(Surv(time, status) ~ ., data = vet, cut = c(30, 60, 90, 180, 365),
    start = 'tstart', end = 'time', episode = 'interval'); vs$exposure <- vs$time - vs$tstart;
    glm(status ~ factor(interval) + trt + celltype + karno + diagtime + age + prior +
    offset(log(exposure)), family = poisson, data = vs)``."""

    @pytest.fixture(scope="class")
    def pwe(self, vet):
        return PiecewiseExponential(cuts=[30, 60, 90, 180, 365]).fit(
            vet, duration="time", event="status", covariates=COVS
        )

    def test_coef(self, pwe, reference):
        ref = reference["entries"]["veteran.piecewise_exponential"]["values"]
        assert list(pwe.names) == list(ref["coef"])
        np.testing.assert_allclose(pwe.coef, _vec(ref["coef"], pwe.names), rtol=1e-9)
        np.testing.assert_allclose(
            pwe.exp_coef.to_numpy(), _vec(ref["rate_ratio"], pwe.names), rtol=1e-6
        )

    def test_se(self, pwe, reference):
        # R's glm stops at |d dev| / (|dev| + 0.1) < 1e-8 and takes the covariance from the
        # working weights one iteration behind; the fit reproduces that IRLS path exactly
        ref = reference["entries"]["veteran.piecewise_exponential"]["values"]
        np.testing.assert_allclose(pwe.std_errors.to_numpy(), _vec(ref["se"], pwe.names), rtol=1e-8)

    def test_tight_tolerance_is_the_mle(self, vet, pwe):
        tight = PiecewiseExponential(cuts=[30, 60, 90, 180, 365], tol=1e-14).fit(
            vet, duration="time", event="status", covariates=COVS
        )
        np.testing.assert_allclose(tight.coef, pwe.coef, rtol=1e-6)
        np.testing.assert_allclose(tight.std_errors, pwe.std_errors, rtol=1e-4)

    def test_loglik_deviance(self, pwe, reference):
        ref = reference["entries"]["veteran.piecewise_exponential"]["values"]
        assert pwe.loglik == pytest.approx(ref["loglik"], rel=1e-9)
        assert pwe.extra["deviance"] == pytest.approx(ref["deviance"], rel=1e-9)

    def test_tables(self, pwe, reference):
        ref = reference["entries"]["veteran.piecewise_exponential"]["values"]
        np.testing.assert_allclose(
            pwe.extra["events_by_interval"], list(ref["events_by_interval"].values())
        )
        np.testing.assert_allclose(
            pwe.extra["exposure_by_interval"], list(ref["exposure_by_interval"].values())
        )
