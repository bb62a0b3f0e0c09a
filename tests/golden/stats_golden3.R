# Third set of golden reference values from R for the Python statistics tests (issue 23):
# logit-transformed DeLong and BCa bootstrap AUC CIs, the unpaired DeLong test with zero
# variance, the Youden threshold at the edges (AUC < 0.5, constant scores), the Cochran-Armitage
# trend test and the Welch / Mann-Whitney pair of Table 1, Platt (logistic) and isotonic
# recalibration.
#
# Needs pROC 1.18 and boot (an R "recommended" package; on Debian r-cran-boot). Run from the
# repository root:   Rscript tests/golden/stats_golden3.R
# (with boot outside the default library:  R_LIBS=/path/to/library Rscript tests/golden/stats_golden3.R)
# Writes tests/golden/stats_golden3.json and the data files tests/golden/g3_*.csv.
# R is not a test dependency; the JSON and CSVs are meant to be committed.
# JSON conventions as stats_golden2.R: numbers %.17g; Inf/-Inf/NaN as strings; NA as null.
suppressMessages({
  library(pROC)
  library(boot)
})

gdir <- "tests/golden"
stopifnot(dir.exists(gdir))

## ---------------------------------------------------------------- helpers (as stats_golden2.R)
num_str <- function(x) {
  vapply(x, function(v) {
    if (is.na(v) && !is.nan(v)) return("null")
    if (is.nan(v)) return('"NaN"')
    if (is.infinite(v)) return(if (v > 0) '"Inf"' else '"-Inf"')
    sprintf("%.17g", v)
  }, "")
}
json_esc <- function(s) {
  s <- gsub("\\\\", "\\\\\\\\", s); s <- gsub('"', '\\\\"', s)
  s <- gsub("\n", "\\\\n", s); s <- gsub("\t", "\\\\t", s)
  paste0('"', s, '"')
}
to_json <- function(x, ind = "") {
  ind2 <- paste0(ind, "  ")
  if (is.null(x)) return("null")
  if (is.list(x)) {
    if (length(x) == 0) return(if (is.null(names(x))) "[]" else "{}")
    items <- vapply(x, to_json, "", ind = ind2)
    if (!is.null(names(x))) {
      stopifnot(all(names(x) != ""), !anyDuplicated(names(x)))
      items <- paste0(json_esc(names(x)), ": ", items)
    }
    open <- if (is.null(names(x))) "[" else "{"
    close <- if (is.null(names(x))) "]" else "}"
    return(paste0(open, "\n", ind2, paste(items, collapse = paste0(",\n", ind2)), "\n", ind, close))
  }
  x <- unname(x)
  if (is.factor(x)) x <- as.character(x)
  el <- if (is.character(x)) ifelse(is.na(x), "null", json_esc(x))
        else if (is.logical(x)) ifelse(is.na(x), "null", ifelse(x, "true", "false"))
        else if (is.numeric(x)) num_str(as.double(x))
        else stop("cannot serialise ", class(x))
  if (length(x) == 1) el else paste0("[", paste(el, collapse = ", "), "]")
}
rt_str <- function(x) {
  vapply(x, function(v) {
    if (!is.finite(v)) stop("non-finite value in CSV data")
    for (d in 15:17) {
      s <- sprintf(paste0("%.", d, "g"), v)
      if (as.numeric(s) == v) return(s)
    }
    s
  }, "")
}
write_csv_exact <- function(df, file) {
  path <- file.path(gdir, file)
  cols <- lapply(df, function(col) if (is.numeric(col)) rt_str(col) else as.character(col))
  lines <- c(paste(names(df), collapse = ","), do.call(paste, c(cols, sep = ",")))
  writeLines(lines, path)
  back <- read.csv(path)
  for (nm in names(df)) if (is.numeric(df[[nm]])) stopifnot(identical(as.double(back[[nm]]), as.double(df[[nm]])))
  back
}
mkroc <- function(y, s) roc(y, s, levels = c(0, 1), direction = "<", quiet = TRUE)
# DeLong placements, as pROC's (V10: each case's share of controls below, ties 1/2; V01: each
# control's share of cases above)
placements <- function(y, s) {
  x <- s[y == 1]; w <- s[y == 0]
  list(v10 = sapply(x, function(xi) mean((xi > w) + 0.5 * (xi == w))),
       v01 = sapply(w, function(wj) mean((x > wj) + 0.5 * (x == wj))))
}
z975 <- qnorm(0.975)
logit_ci <- function(a, v, z = z975) plogis(qlogis(a) + c(-1, 1) * z * sqrt(v) / (a * (1 - a)))

out <- list(
  description = "Golden values from R for the Python stats tests (issue 23); see tests/golden/stats_golden3.R",
  R_version = R.version.string,
  pROC_version = as.character(packageVersion("pROC")),
  boot_version = as.character(packageVersion("boot")),
  json_conventions = "numbers %.17g; non-finite as strings Inf/-Inf/NaN; NA as null"
)

## ------------------------------------------------- 1. logit-transformed DeLong CI
logit_case <- function(file, yname, sname) {
  d <- read.csv(file.path(gdir, file))
  r <- mkroc(d[[yname]], d[[sname]])
  a <- as.numeric(auc(r)); v <- var(r, method = "delong")
  list(file = file, y = yname, score = sname, auc = a, var_delong = v,
       delong = as.numeric(ci.auc(r, method = "delong"))[c(1, 3)], logit = logit_ci(a, v))
}
out$logit_delong <- list(
  formula = "plogis(qlogis(auc) -/+ qnorm(0.975) * sqrt(var(roc, method = 'delong')) / (auc * (1 - auc)))",
  cases = list(
    logit_case("g2_matrix.csv", "y", "s1"),
    logit_case("g2_matrix.csv", "y", "s3"),
    logit_case("g2_unpaired_a.csv", "y", "s"),
    logit_case("g2_unpaired_b.csv", "y", "s"),
    logit_case("ties.csv", "y", "a")),
  separation = list(
    note = "AUC = 1 or 0: exact bound ((1 - 0.95)/2)^(1/k), k = min(cases, controls)",
    k = c(2, 10, 20, 50), bound = 0.025^(1 / c(2, 10, 20, 50)))
)

## ----------------------------------------------------------- 2. BCa bootstrap
set.seed(31)
y3 <- sample(rep(c(1L, 0L), c(12, 40)))
s3 <- round(rnorm(52) + 1.1 * y3, 2)   # rounded: ties within and between classes
d3 <- write_csv_exact(data.frame(y = y3, s = s3), "g3_bca.csv")
aucf <- function(d, i) {
  dd <- d[i, ]; x <- dd$s[dd$y == 1]; w <- dd$s[dd$y == 0]
  mean(outer(x, w, ">") + 0.5 * outer(x, w, "=="))
}
set.seed(1)
b3 <- boot(d3, aucf, R = 2000, strata = d3$y)
invisible(write_csv_exact(data.frame(t = b3$t[, 1]), "g3_bca_replicates.csv"))
pl <- placements(d3$y, d3$s)
a3 <- as.numeric(auc(mkroc(d3$y, d3$s)))
stopifnot(abs(a3 - b3$t0) < 1e-15)
L <- c((pl$v10 - a3) / sum(d3$y == 1), (pl$v01 - a3) / sum(d3$y == 0))
L_order <- c(which(d3$y == 1), which(d3$y == 0))   # L is cases first, then controls
ci_s <- boot.ci(b3, conf = c(0.95, 0.9), type = c("bca", "perc"), L = L[order(L_order)])
ci_u <- boot.ci(b3, conf = 0.95, type = "bca")     # boot's own jackknife L (strata unscaled)
out$bca <- list(
  data_file = "tests/golden/g3_bca.csv", replicates_file = "tests/golden/g3_bca_replicates.csv",
  generation = "set.seed(31); y = sample(rep(c(1,0), c(12,40))); s = round(rnorm(52) + 1.1*y, 2); set.seed(1); boot(d, auc, R = 2000, strata = y)",
  t0 = b3$t0, R = 2000,
  influence = "L = (V10 - AUC)/m for cases, (V01 - AUC)/n for controls (stratified, Davison & Hinkley)",
  bca_95 = ci_s$bca[1, 4:5], bca_90 = ci_s$bca[2, 4:5],
  perc_95_boot = ci_s$percent[1, 4:5],
  bca_95_boot_default_L = ci_u$bca[4:5],
  acceleration = sum(L^3) / (6 * sum(L^2)^1.5),
  z0 = qnorm(sum(b3$t[, 1] < b3$t0) / 2000)
)

## ------------------------------------- 3. unpaired DeLong with zero variances
unp <- function(ya, sa, yb, sb) {
  ra <- mkroc(ya, sa); rb <- mkroc(yb, sb)
  res <- list(auc_a = as.numeric(auc(ra)), auc_b = as.numeric(auc(rb)),
              var_a = var(ra, method = "delong"), var_b = var(rb, method = "delong"))
  for (alt in c("two.sided", "greater", "less")) {
    t <- suppressWarnings(roc.test(ra, rb, method = "delong", paired = FALSE, alternative = alt))
    res[[gsub(".", "_", alt, fixed = TRUE)]] <- list(statistic = unname(t$statistic),
                                                     df = unname(t$parameter), p_value = t$p.value)
  }
  res
}
out$unpaired_zero_var <- list(
  issue_example = c(list(ya = c(rep(1, 5), rep(0, 7)), sa = c(rep(0.9, 5), rep(0.1, 7)),
                         yb = c(rep(1, 6), rep(0, 6)), sb = rep(0.5, 12)),
                    unp(c(rep(1, 5), rep(0, 7)), c(rep(0.9, 5), rep(0.1, 7)),
                        c(rep(1, 6), rep(0, 6)), rep(0.5, 12))),
  reversed = unp(c(rep(1, 6), rep(0, 6)), rep(0.5, 12), c(rep(1, 5), rep(0, 7)), c(rep(0.9, 5), rep(0.1, 7))),
  equal_auc = c(list(ya = c(1, 1, 0, 0, 0), sa = c(2, 2, 1, 1, 1), yb = c(1, 1, 1, 0, 0), sb = c(5, 6, 7, 1, 2)),
                unp(c(1, 1, 0, 0, 0), c(2, 2, 1, 1, 1), c(1, 1, 1, 0, 0), c(5, 6, 7, 1, 2))),
  note = "pROC: D = (auc_a - auc_b)/sqrt(var_a + var_b) = Inf (NaN for equal AUCs), df = 0/0 = NaN, p = NaN"
)

## ---------------------------------------------------------- 4. Youden edges
youden <- function(y, s) {
  r <- mkroc(y, s)
  b <- coords(r, "best", best.method = "youden", ret = c("threshold", "sensitivity", "specificity"),
              transpose = FALSE)
  list(y = y, s = s, auc = as.numeric(auc(r)), thresholds = b$threshold,
       sensitivity = b$sensitivity, specificity = b$specificity)
}
out$youden <- list(
  inverted = youden(c(0, 0, 0, 1, 1, 1), c(4, 5, 6, 1, 2, 3)),
  constant = youden(c(0, 0, 0, 1, 1, 1), rep(0.3, 6)),
  below_half_no_gain = youden(c(0, 0, 0, 1, 1, 1), c(3, 5, 6, 1, 4, 2)),
  below_half_inner_gain = youden(c(0, 0, 0, 0, 1, 1, 1, 1), c(1, 6, 7, 8, 2, 3, 4, 9)),
  tied_best = youden(c(0, 0, 1, 1), c(0.1, 0.4, 0.35, 0.8)),
  ordinary = youden(c(0, 0, 1, 0, 1, 1, 0, 1), c(0.1, 0.2, 0.3, 0.45, 0.5, 0.7, 0.75, 0.9))
)

## --------------------------------------------- 5. Table 1: trend, Welch, Mann-Whitney
trend <- function(tab, score) {
  t <- prop.trend.test(tab[1, ], colSums(tab), score = score)
  cs <- suppressWarnings(chisq.test(tab, correct = FALSE))
  list(table = lapply(1:2, function(i) tab[i, ]), score = score,
       statistic = unname(t$statistic), p_value = t$p.value,
       chisq_p = cs$p.value)
}
out$trend <- list(
  note = "rows = (ALNM, non-ALNM), columns = ordered levels; prop.trend.test(x = row 1, n = column sums, score)",
  paper_all_two_levels = trend(matrix(c(70, 28, 98, 56), 2, byrow = TRUE), c(2, 3)),
  paper_test_two_levels = trend(matrix(c(14, 6, 15, 15), 2, byrow = TRUE), c(2, 3)),
  three_levels = trend(matrix(c(5, 12, 20, 15, 14, 10), 2, byrow = TRUE), c(1, 2, 3)),
  three_levels_flat = trend(matrix(c(10, 3, 10, 8, 12, 8), 2, byrow = TRUE), c(1, 2, 3))
)
set.seed(41)
age1 <- round(rnorm(40, 52, 11)); age0 <- round(rnorm(60, 48, 7))   # unequal variances, ties
size1 <- round(rlnorm(40, 1, 0.5), 1); size0 <- round(rlnorm(60, 0.8, 0.4), 1)
cont <- data.frame(group = rep(c(1L, 0L), c(40, 60)), age = c(age1, age0), size = c(size1, size0))
cont <- write_csv_exact(cont, "g3_table1.csv")
two <- function(v) {
  a <- cont[[v]][cont$group == 1]; b <- cont[[v]][cont$group == 0]
  w <- t.test(a, b, var.equal = FALSE)
  mw <- suppressWarnings(wilcox.test(a, b, exact = FALSE, correct = FALSE))
  list(welch_t = unname(w$statistic), welch_df = unname(w$parameter), welch_p = w$p.value,
       mw_W = unname(mw$statistic), mw_p = mw$p.value)
}
out$continuous <- list(data_file = "tests/golden/g3_table1.csv",
                       generation = "set.seed(41); age1 = round(rnorm(40, 52, 11)); age0 = round(rnorm(60, 48, 7)); size1 = round(rlnorm(40, 1, 0.5), 1); size0 = round(rlnorm(60, 0.8, 0.4), 1)",
                       note = "t.test(var.equal = FALSE); wilcox.test(exact = FALSE, correct = FALSE)",
                       age = two("age"), size = two("size"))

## ------------------------------------------------------ 6. recalibration
d6 <- read.csv(file.path(gdir, "g2_calib.csv"))
tight <- glm.control(epsilon = 1e-15, maxit = 200)
g6 <- glm(y ~ qlogis(p), family = binomial, data = d6, control = tight)
new_p <- c(0.001, 0.05, 0.2, 0.5, 0.8, 0.95, 0.999)
iso <- isoreg(d6$p, d6$y)
stopifnot(!anyDuplicated(d6$p))
out$recalibration <- list(
  data_file = "tests/golden/g2_calib.csv",
  platt_coef = unname(coef(g6)),
  platt_new_p = new_p,
  platt_apply = unname(predict(g6, newdata = data.frame(p = new_p), type = "response")),
  platt_fitted = unname(fitted(g6)),
  isotonic_fitted = iso$yf[order(iso$ord)],
  note = "Platt: glm(y ~ qlogis(p), binomial, epsilon 1e-15); isotonic: isoreg(p, y)$yf back in data order (no tied p)"
)

writeLines(to_json(out), file.path(gdir, "stats_golden3.json"))
cat("wrote", file.path(gdir, "stats_golden3.json"), "\n")
