# Second set of golden reference values from R (pROC, nortest, stats) for the Python
# statistics tests: DeLong edge cases (z = 0, zero variance, Inf), multiplicity
# corrections, AUC CIs, binomial CIs, contingency tests, Lilliefors/Shapiro,
# logistic calibration, unpaired DeLong.
#
# Run from the repository root:   Rscript tests/golden/stats_golden2.R
# Writes tests/golden/stats_golden2.json and the data files tests/golden/g2_*.csv.
# R is not a test dependency; the JSON and CSVs are meant to be committed.
#
# JSON conventions:
#   * finite numbers are printed with sprintf("%.17g") (exact round trip to IEEE double);
#   * non-finite numbers are written as the strings "Inf", "-Inf", "NaN" (Python's
#     float() parses all three); NA is written as null;
#   * a length-1 vector is a scalar, longer vectors are arrays;
#   * every statistic below is computed from the data as re-read from the CSV files,
#     so Python reading the same CSVs sees exactly the same doubles.
# CSV numbers are written with the shortest of %.15g/%.16g/%.17g that round-trips.
suppressMessages({
  library(pROC)
  library(nortest)
})

gdir <- "tests/golden"
stopifnot(dir.exists(gdir))

## ---------------------------------------------------------------- helpers
num_str <- function(x) {
  vapply(x, function(v) {
    if (is.na(v) && !is.nan(v)) return("null")
    if (is.nan(v)) return('"NaN"')
    if (is.infinite(v)) return(if (v > 0) '"Inf"' else '"-Inf"')
    sprintf("%.17g", v)
  }, "")
}
json_esc <- function(s) {
  s <- gsub("\\\\", "\\\\\\\\", s)
  s <- gsub('"', '\\\\"', s)
  s <- gsub("\n", "\\\\n", s)
  s <- gsub("\t", "\\\\t", s)
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
# shortest decimal that round-trips to the same double
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
# evaluate, recording warnings and errors as strings
capture <- function(expr) {
  warns <- character(0)
  val <- withCallingHandlers(
    tryCatch(expr, error = function(e) structure(list(msg = conditionMessage(e)), class = "captured_error")),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  list(value = val, warnings = warns)
}
mkroc <- function(y, s) roc(y, s, levels = c(0, 1), direction = "<", quiet = TRUE)

# full paired DeLong report for score vectors a, b against labels y
paired_report <- function(y, a, b) {
  r1 <- mkroc(y, a); r2 <- mkroc(y, b)
  va <- capture(var(r1, method = "delong")); vb <- capture(var(r2, method = "delong"))
  cv <- capture(cov(r1, r2, method = "delong"))
  out <- list(auc_a = as.numeric(auc(r1)), auc_b = as.numeric(auc(r2)),
              var_a = va$value, var_b = vb$value, cov_ab = cv$value)
  out$var_diff <- out$var_a + out$var_b - 2 * out$cov_ab
  warns <- c(va$warnings, vb$warnings, cv$warnings)
  for (alt in c("two.sided", "greater", "less")) {
    res <- capture(roc.test(r1, r2, method = "delong", paired = TRUE, alternative = alt))
    warns <- c(warns, res$warnings)
    key <- gsub(".", "_", alt, fixed = TRUE)
    if (inherits(res$value, "captured_error")) {
      out[[key]] <- list(error = res$value$msg)
    } else {
      t <- res$value
      out[[key]] <- list(statistic = unname(t$statistic), p_value = t$p.value,
                         conf_int = as.numeric(t$conf.int), estimate_aucs = unname(t$estimate))
    }
  }
  out$warnings <- if (length(warns)) as.list(unique(warns)) else list()
  out
}

out <- list(
  description = "Golden values from R for the Python stats tests; see tests/golden/stats_golden2.R",
  R_version = R.version.string,
  pROC_version = as.character(packageVersion("pROC")),
  nortest_version = as.character(packageVersion("nortest")),
  stats_version = as.character(packageVersion("stats")),
  roc_settings = "roc(y, s, levels = c(0, 1), direction = '<'); DeLong; conf.level 0.95",
  json_conventions = "numbers %.17g; non-finite as strings Inf/-Inf/NaN; NA as null"
)

## ------------------------------------------- 1. delong_equal_auc (z == 0)
y1 <- c(0, 0, 0, 1, 1, 1, 0, 1)
# controls at positions 1,2,3,7 ; cases at 4,5,6,8
a1 <- c(1, 2, 3, 4, 5, 7, 6, 8)   # one control (6) above two cases (4,5): 14/16
b1 <- c(1, 2, 4, 3, 6, 7, 5, 8)   # one case (3) below two controls (4,5): 14/16
main <- paired_report(y1, a1, b1)
stopifnot(main$auc_a == 0.875, main$auc_b == 0.875, main$var_diff > 0)
a1_perm <- a1; a1_perm[c(1, 2)] <- a1[c(2, 1)]  # swap two controls: same case/control ordering
out$delong_equal_auc <- list(
  y = y1,
  nonzero_var = c(list(a = a1, b = b1), main),
  zero_var_identical = c(list(a = a1, b = a1), paired_report(y1, a1, a1)),
  zero_var_monotone_transform = c(list(a = a1, b = 2 * a1 + 1), paired_report(y1, a1, 2 * a1 + 1)),
  zero_var_within_class_permuted = c(list(a = a1, b = a1_perm), paired_report(y1, a1, a1_perm)),
  note = paste("pROC delong.paired.test sets z = 0 when d == 0 and sig == 0 (else d/sig);",
               "p = 2*pnorm(-|z|), greater: pnorm(-z), less: pnorm(z); conf.int = d -/+ qnorm(0.975)*sig")
)

## ----------------------------- 2. delong_perfect_vs_constant (sig == 0, d != 0)
y2 <- c(0, 0, 0, 0, 1, 1, 1, 1)
a2 <- 1:8
b2 <- rep(0.5, 8)
rep2 <- paired_report(y2, a2, b2)
ci2 <- capture(ci.auc(mkroc(y2, a2), method = "delong"))
ci2b <- capture(ci.auc(mkroc(y2, b2), method = "delong"))
out$delong_perfect_vs_constant <- c(
  list(y = y2, a = a2, b = b2), rep2,
  list(ci_auc_a = as.numeric(ci2$value), ci_auc_a_warnings = as.list(ci2$warnings),
       ci_auc_b = as.numeric(ci2b$value), ci_auc_b_warnings = as.list(ci2b$warnings)))
# reversed roles (d < 0)
out$delong_perfect_vs_constant$reversed <- paired_report(y2, b2, a2)

## ---------------------------------------------------- 3. delong_matrix_set
set.seed(12)
n3 <- 60
y3 <- sample(rep(c(1L, 0L), c(24, 36)))
shared <- rnorm(n3)
deltas <- c(1.5, 1.0, 0.6, 1.2)
S <- sapply(deltas, function(dl) round(dl * y3 + 0.7 * shared + 0.7 * rnorm(n3), 4))
colnames(S) <- paste0("s", 1:4)
d3 <- write_csv_exact(data.frame(y = y3, S), "g2_matrix.csv")
pairs <- list(c(1, 2), c(1, 3), c(1, 4), c(2, 3), c(2, 4), c(3, 4))
rocs3 <- lapply(1:4, function(k) mkroc(d3$y, d3[[paste0("s", k)]]))
pair_res <- lapply(pairs, function(pr) {
  t <- roc.test(rocs3[[pr[1]]], rocs3[[pr[2]]], method = "delong", paired = TRUE)
  list(pair = paste0("s", pr[1], "_vs_s", pr[2]), i = pr[1], j = pr[2],
       auc_i = as.numeric(auc(rocs3[[pr[1]]])), auc_j = as.numeric(auc(rocs3[[pr[2]]])),
       cov_ij = cov(rocs3[[pr[1]]], rocs3[[pr[2]]], method = "delong"),
       z = unname(t$statistic), p = t$p.value, conf_int = as.numeric(t$conf.int))
})
p6 <- sapply(pair_res, `[[`, "p")
p3 <- p6[1:3]
names(pair_res) <- sapply(pair_res, `[[`, "pair")
out$delong_matrix_set <- list(
  data_file = "tests/golden/g2_matrix.csv", n = n3, n_pos = sum(d3$y),
  generation = "set.seed(12); y = sample(rep(c(1,0), c(24,36))); u = rnorm(60); s_k = round(delta_k*y + 0.7*u + 0.7*rnorm(60), 4), delta = (1.5, 1.0, 0.6, 1.2), s1..s4 generated in order",
  aucs = sapply(rocs3, function(r) as.numeric(auc(r))),
  vars = sapply(rocs3, function(r) var(r, method = "delong")),
  pairs = pair_res,
  pair_order = names(pair_res),
  all_pairs = list(p = p6, holm = p.adjust(p6, "holm"), BH = p.adjust(p6, "BH"),
                   bonferroni = p.adjust(p6, "bonferroni")),
  s1_vs_others = list(pairs = names(pair_res)[1:3], p = p3, holm = p.adjust(p3, "holm"),
                      BH = p.adjust(p3, "BH"), bonferroni = p.adjust(p3, "bonferroni"))
)

## --------------------------------------------------------------- 4. auc_ci
r4 <- rocs3[[1]]
ci_d <- ci.auc(r4, method = "delong")
set.seed(1)
ci_b <- ci.auc(r4, method = "bootstrap", boot.n = 2000, boot.stratified = TRUE, progress = "none")
out$auc_ci <- list(
  data_file = "tests/golden/g2_matrix.csv", score = "s1",
  auc = as.numeric(auc(r4)), var_delong = var(r4, method = "delong"),
  delong = list(lower = ci_d[1], mid = ci_d[2], upper = ci_d[3]),
  bootstrap = list(lower = ci_b[1], median = ci_b[2], upper = ci_b[3], boot_n = 2000, stratified = TRUE,
                   seed = "set.seed(1) immediately before ci.auc",
                   note = "rough reference only; middle value is the MEDIAN of bootstrap AUCs (quantile type 7), not the AUC")
)

## ---------------------------------------------------------------- 5. binom
z975 <- qnorm(0.975)
wilson <- function(x, n, z = z975) {
  ctr <- (x + z^2 / 2) / (n + z^2)
  hw <- z / (n + z^2) * sqrt(x * (n - x) / n + z^2 / 4)
  c(ctr - hw, ctr + hw)
}
xn <- list(c(15, 20), c(0, 12), c(12, 12), c(27, 30), c(3, 25), c(11, 20))
out$binom <- list(
  note = "clopper_pearson = binom.test(x, n)$conf.int (exact, two-sided 95%); wilson = score interval without continuity correction, z = qnorm(0.975), hand formula",
  cases = lapply(xn, function(v) {
    bt <- binom.test(v[1], v[2])
    w <- wilson(v[1], v[2])
    pt <- suppressWarnings(prop.test(v[1], v[2], correct = FALSE))
    stopifnot(isTRUE(all.equal(w, as.numeric(pt$conf.int), tolerance = 1e-12)))
    list(x = v[1], n = v[2], clopper_pearson = as.numeric(bt$conf.int),
         binom_test_p = bt$p.value, wilson = w)
  })
)

## ---------------------------------------------------------------- 6. table1
tab_report <- function(m, fisher = TRUE) {
  cs <- capture(chisq.test(m, correct = FALSE))
  res <- list(table = lapply(seq_len(nrow(m)), function(i) m[i, ]),
              chisq_statistic = unname(cs$value$statistic), chisq_df = unname(cs$value$parameter),
              chisq_p = cs$value$p.value, chisq_expected = lapply(seq_len(nrow(m)), function(i) unname(cs$value$expected[i, ])),
              chisq_warnings = as.list(cs$warnings))
  cy <- suppressWarnings(chisq.test(m, correct = TRUE))
  if (all(dim(m) == 2)) {
    res$chisq_yates_statistic <- unname(cy$statistic)
    res$chisq_yates_p <- cy$p.value
  }
  if (fisher) {
    ft <- fisher.test(m)
    res$fisher_p <- ft$p.value
    if (!is.null(ft$estimate)) {
      res$fisher_or_cond_mle <- unname(ft$estimate)
      res$fisher_or_conf_int <- as.numeric(ft$conf.int)
    }
  }
  res
}
out$table1 <- list(
  note = "tables given row-wise: rows = (ALNM, non-ALNM); chisq.test(correct = FALSE) unless *_yates",
  train_margin = c(list(columns = c("regular", "irregular")), tab_report(matrix(c(33, 65, 69, 85), nrow = 2, byrow = TRUE))),
  train_tic = c(list(columns = c("II", "III")), tab_report(matrix(c(70, 28, 98, 56), nrow = 2, byrow = TRUE))),
  test_margin = c(list(columns = c("regular", "irregular")), tab_report(matrix(c(7, 13, 15, 15), nrow = 2, byrow = TRUE))),
  test_tic = c(list(columns = c("II", "III")), tab_report(matrix(c(14, 6, 15, 15), nrow = 2, byrow = TRUE))),
  two_by_three = tab_report(matrix(c(5, 3, 2, 1, 6, 8), nrow = 2, byrow = TRUE))
)

## ------------------------------------------------------------ 7. lilliefors
set.seed(3); sa <- round(rnorm(30, 50, 10), 1)
set.seed(4); sb <- rexp(25)
set.seed(5); sc <- runif(150)
sd_ <- c(45, 52, 38, 61, 55, 49, 47, 58, 63, 41, 50, 53, 44, 57, 60, 39, 48, 51, 56, 46)
set.seed(6); se <- rnorm(12)
set.seed(7); sf <- rnorm(200)
samples <- list(a = sa, b = sb, c = sc, d = sd_, e = se, f = sf)
long <- data.frame(sample = rep(names(samples), lengths(samples)), value = unlist(samples, use.names = FALSE))
back7 <- write_csv_exact(long, "g2_lillie.csv")
gen7 <- c(a = "set.seed(3); round(rnorm(30, 50, 10), 1)", b = "set.seed(4); rexp(25)",
          c = "set.seed(5); runif(150)", d = "ages (inline)", e = "set.seed(6); rnorm(12)",
          f = "set.seed(7); rnorm(200)")
out$lilliefors <- c(list(data_file = "tests/golden/g2_lillie.csv (long form: sample,value; row order = sample order)"),
  lapply(setNames(names(samples), names(samples)), function(k) {
    x <- back7$value[back7$sample == k]
    lt <- lillie.test(x); sw <- shapiro.test(x)
    list(generation = unname(gen7[k]), n = length(x), D = unname(lt$statistic), p_value = lt$p.value,
         shapiro_W = unname(sw$statistic), shapiro_p = sw$p.value)
  }))

## ------------------------------------------------------- 8. glm_calibration
set.seed(9)
n8 <- 80
p8 <- plogis(rnorm(n8))
y8 <- rbinom(n8, 1, plogis(0.5 + 1.5 * qlogis(p8)))
d8 <- write_csv_exact(data.frame(y = y8, p = p8), "g2_calib.csv")
lp <- qlogis(d8$p)
g_slope <- glm(d8$y ~ lp, family = binomial)
g_int <- glm(d8$y ~ 1, offset = lp, family = binomial)
tight <- glm.control(epsilon = 1e-15, maxit = 200)
g_slope_t <- glm(d8$y ~ lp, family = binomial, control = tight)
g_int_t <- glm(d8$y ~ 1, offset = lp, family = binomial, control = tight)
out$glm_calibration <- list(
  data_file = "tests/golden/g2_calib.csv",
  generation = "set.seed(9); p = plogis(rnorm(80)); y = rbinom(80, 1, plogis(0.5 + 1.5*qlogis(p)))",
  n = n8, n_pos = sum(d8$y),
  default_control = list(
    slope_model_coef = unname(coef(g_slope)), slope_model_se = unname(sqrt(diag(vcov(g_slope)))),
    calibration_slope = unname(coef(g_slope)[2]),
    calibration_intercept = unname(coef(g_int)[1]), calibration_intercept_se = unname(sqrt(vcov(g_int)[1, 1])),
    iterations = c(g_slope$iter, g_int$iter)),
  tight_control = list(
    epsilon = 1e-15,
    slope_model_coef = unname(coef(g_slope_t)), slope_model_se = unname(sqrt(diag(vcov(g_slope_t)))),
    calibration_slope = unname(coef(g_slope_t)[2]),
    calibration_intercept = unname(coef(g_int_t)[1]), calibration_intercept_se = unname(sqrt(vcov(g_int_t)[1, 1])),
    iterations = c(g_slope_t$iter, g_int_t$iter)),
  brier = mean((d8$p - d8$y)^2),
  note = "slope: coef 2 of glm(y ~ qlogis(p), binomial); intercept: glm(y ~ 1, offset = qlogis(p), binomial); default glm epsilon is 1e-8, so compare default_control values at ~1e-7 relative, tight_control values more tightly"
)

## -------------------------------------------------------- 9. unpaired_small
set.seed(21)
ya <- sample(rep(c(1L, 0L), c(7, 11)))
sa9 <- round(rnorm(18) + 1.0 * ya, 4)
yb <- sample(rep(c(1L, 0L), c(9, 16)))
sb9 <- round(rnorm(25) + 0.5 * yb, 4)
da <- write_csv_exact(data.frame(y = ya, s = sa9), "g2_unpaired_a.csv")
db <- write_csv_exact(data.frame(y = yb, s = sb9), "g2_unpaired_b.csv")
ra <- mkroc(da$y, da$s); rb <- mkroc(db$y, db$s)
un <- list()
for (alt in c("two.sided", "greater", "less")) {
  t <- roc.test(ra, rb, method = "delong", paired = FALSE, alternative = alt)
  un[[gsub(".", "_", alt, fixed = TRUE)]] <- list(statistic = unname(t$statistic), df = unname(t$parameter),
                                                  p_value = t$p.value,
                                                  conf_int = if (is.null(t$conf.int)) NULL else as.numeric(t$conf.int))
}
cia <- ci.auc(ra, method = "delong"); cib <- ci.auc(rb, method = "delong")
out$unpaired_small <- c(list(
  data_files = c("tests/golden/g2_unpaired_a.csv", "tests/golden/g2_unpaired_b.csv"),
  generation = "set.seed(21); ya = sample(rep(c(1,0), c(7,11))); sa = round(rnorm(18) + ya, 4); yb = sample(rep(c(1,0), c(9,16))); sb = round(rnorm(25) + 0.5*yb, 4)",
  auc_a = as.numeric(auc(ra)), auc_b = as.numeric(auc(rb)),
  var_a = var(ra, method = "delong"), var_b = var(rb, method = "delong"),
  ci_auc_a = as.numeric(cia), ci_auc_b = as.numeric(cib),
  note = "statistic is pROC's D = (auc_a - auc_b)/sqrt(var_a + var_b), p from t with Welch-Satterthwaite df; pROC gives no conf.int for unpaired DeLong"),
  un)

writeLines(to_json(out), file.path(gdir, "stats_golden2.json"))
cat("wrote", file.path(gdir, "stats_golden2.json"), "\n")
