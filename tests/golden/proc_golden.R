# Golden values from R's pROC for tests/test_stats_proc.py.
# Run from the repository root:  Rscript tests/golden/proc_golden.R
# Writes tests/golden/proc_golden.json. R is not a test dependency; the JSON is committed.
suppressMessages(library(pROC))
fmt <- function(x) sprintf("%.17g", x)
out <- list(pROC_version = as.character(packageVersion("pROC")), R_version = R.version.string)

one <- function(y, a, b) {
  r1 <- roc(y, a, levels = c(0, 1), direction = "<", quiet = TRUE)
  r2 <- roc(y, b, levels = c(0, 1), direction = "<", quiet = TRUE)
  ci1 <- ci.auc(r1, method = "delong")
  t2 <- roc.test(r1, r2, method = "delong", paired = TRUE)
  tg <- roc.test(r1, r2, method = "delong", paired = TRUE, alternative = "greater")
  tl <- roc.test(r1, r2, method = "delong", paired = TRUE, alternative = "less")
  best <- coords(r1, "best", best.method = "youden", ret = c("threshold", "sensitivity", "specificity"), transpose = FALSE)
  S <- cov(r1, r2, method = "delong")
  list(
    auc_a = fmt(as.numeric(auc(r1))), auc_b = fmt(as.numeric(auc(r2))),
    var_a = fmt(var(r1, method = "delong")), var_b = fmt(var(r2, method = "delong")),
    cov_ab = fmt(S),
    ci_a = fmt(as.numeric(ci1)[c(1, 3)]),
    z = fmt(unname(t2$statistic)), p = fmt(t2$p.value),
    p_greater = fmt(tg$p.value), p_less = fmt(tl$p.value),
    diff_ci = fmt(as.numeric(t2$conf.int)),
    best_threshold = fmt(best$threshold), best_sen = fmt(best$sensitivity), best_spe = fmt(best$specificity)
  )
}

data(aSAH)
out$aSAH <- one(as.integer(aSAH$outcome == "Poor"), aSAH$s100b, aSAH$ndka)
out$aSAH$wfns <- one(as.integer(aSAH$outcome == "Poor"), aSAH$wfns, aSAH$s100b)
for (name in c("ties", "small")) {
  d <- read.csv(file.path("tests/golden", paste0(name, ".csv")))
  out[[name]] <- one(d$y, d$a, d$b)
}
d <- read.csv(gzfile("tests/golden/large.csv.gz"))
t0 <- Sys.time()
out$large <- one(d$y, d$a, d$b)
out$large$seconds_roc_test_R <- as.numeric(difftime(Sys.time(), t0, units = "secs"))

u1 <- read.csv("tests/golden/unpaired1.csv"); u2 <- read.csv("tests/golden/unpaired2.csv")
ra <- roc(u1$y, u1$s, levels = c(0, 1), direction = "<", quiet = TRUE)
rb <- roc(u2$y, u2$s, levels = c(0, 1), direction = "<", quiet = TRUE)
tu <- roc.test(ra, rb, method = "delong", paired = FALSE)
out$unpaired <- list(auc_a = fmt(as.numeric(auc(ra))), auc_b = fmt(as.numeric(auc(rb))),
                     statistic = fmt(unname(tu$statistic)), df = fmt(unname(tu$parameter)),
                     p = fmt(tu$p.value))
# aSAH values for the documentation-style example (s100b): export the data too
write.csv(data.frame(y = as.integer(aSAH$outcome == "Poor"), s100b = aSAH$s100b, ndka = aSAH$ndka,
                     wfns = as.integer(aSAH$wfns)), "tests/golden/aSAH.csv", row.names = FALSE)
writeLines(jsonlite_like <- paste0("{\n", paste(sprintf('  "%s": %s', names(out), sapply(out, function(v) {
  if (is.list(v)) paste0("{", paste(sprintf('"%s": %s', names(v), sapply(v, function(x) {
    if (is.list(x)) paste0("{", paste(sprintf('"%s": [%s]', names(x), sapply(x, function(z) paste(z, collapse = ", "))), collapse = ", "), "}")
    else if (is.character(x) && length(x) == 1 && is.na(suppressWarnings(as.numeric(x)))) sprintf('"%s"', x)
    else paste0("[", paste(x, collapse = ", "), "]")
  })), collapse = ", "), "}") else sprintf('"%s"', v)
})), collapse = ",\n"), "\n}"), "tests/golden/proc_golden.json")
