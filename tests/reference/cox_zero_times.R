# Reference values for tests/reference/test_cox_zero_times.py (not run by the tests).
# R's coxph accepts zero follow-up times for right-censored data (weekly register data:
# an event in the week of the start). Veteran data with time in whole weeks,
# floor(time / 7), so that the 5 patients who died within a week have time 0.
# Run: Rscript tests/reference/cox_zero_times.R > tests/reference/cox_zero_times.json
library(survival)
vet <- read.csv("tests/reference/data/veteran.csv")
vet$celltype <- factor(vet$celltype, levels = c("squamous", "smallcell", "adeno", "large"))
vet$week <- floor(vet$time / 7)
num <- function(x) formatC(x, digits = 17, format = "g")
vec <- function(x) paste0("[", paste(num(x), collapse = ", "), "]")
out <- c()
for (ties in c("efron", "breslow")) {
  f <- coxph(Surv(week, status) ~ trt + karno + celltype, data = vet, ties = ties)
  out <- c(out, sprintf('"%s": {"n_time0": %d, "n_time0_events": %d, "coef": %s, "var": %s, "loglik": %s}',
    ties, sum(vet$week == 0), sum(vet$week == 0 & vet$status == 1),
    vec(unname(coef(f))), vec(as.vector(f$var)), vec(f$loglik)))
}
cat(sprintf('{"r_version": "%s", "survival": "%s", "names": %s,\n %s}\n',
  R.version.string, packageVersion("survival"),
  paste0("[", paste0('"', names(coef(f)), '"', collapse = ", "), "]"),
  paste(out, collapse = ",\n ")))
