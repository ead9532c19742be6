"""Coverage of matching and IPW intervals against the simulator's exact truth.

Usage: ``python benchmarks/validation/coverage_simulator.py REPLICATIONS N_PERSONS``
(measured: 300 replications of 6,000 persons, about 4.5 minutes on 2 cores). Outcome:
employment or education in week 104 after the start, estimand A; truth:
``mentor_impact.true_effects`` over the treated rows of each design. Fits that fail (IPW
propensity scores at 0 or 1 by separation in small samples) are counted and left out.
"""

import sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
import mentor_impact as mi
R = int(sys.argv[1]); n = int(sys.argv[2])
rows = []
t0 = time.time()
for r in range(R):
    study = mi.datasets.simulate_mentor_study(n_persons=n, seed=1000 + r)
    data = mi.RiskSetDesign(outcomes=["employment_or_education"]).build(
        study.register, study.spells, study.baseline, seed=1000 + r)
    truth = mi.true_effects(study, data, "employment_or_education", "A").set_index("tau")["effect"]
    for name, est in (("NN k=5", mi.NearestNeighborMatching(k=5, replace=True, exact=["cell"])),
                      ("IPW A", mi.IPW())):
        try:
            res = est.fit(data, outcome="employment_or_education_w104")
        except mi.MentorImpactError:
            rows.append((name, r, np.nan, np.nan, np.nan, np.nan))
            continue
        ci = res.conf_int().iloc[0]
        rows.append((name, r, float(res.estimate[0]), float(res.std_errors.iloc[0]),
                     ci["lower"] <= truth.loc[104] <= ci["upper"], float(truth.loc[104])))
import pandas as pd
df = pd.DataFrame(rows, columns=["est", "rep", "estimate", "se", "covered", "truth"])
df["err"] = df.estimate - df.truth
print("failed fits:", df.estimate.isna().groupby(df.est).sum().to_dict())
df = df.dropna()
df["covered"] = df["covered"].astype(bool)
print(df.groupby("est").agg(coverage=("covered", "mean"), bias=("err", "mean"), sd=("err", "std"), mean_se=("se", "mean"), reps=("rep", "count")))
print("seconds", time.time() - t0)
