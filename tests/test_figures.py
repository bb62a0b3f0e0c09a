"""Every public figure of ``alnm_core.report.plots`` rendered from small synthetic inputs shaped as
the notebooks pass them, and read back: drawn text boxes must not overlap, legends must not cover
data, the figures fit an A4 text column (``alnm_core.report.legibility``). Plus the specific
stumbles of issue 22: the k-fold split chart, grid lines through confusion-matrix numbers, the
nomogram's ticks, Grad-CAM panels without a raw crop or colour scale, the participant flow."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alnm_core import stats as S
from alnm_core.radiomics_models import nomogram_points
from alnm_core.report import legibility as L
from alnm_core.report import plots

plots.use_theme()
RNG_SEED = 7


# ----------------------------------------------------------------------------- synthetic inputs

def cohort_frame(n: int = 120, seed: int = RNG_SEED) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    y = (r.random(n) < 0.35).astype(int)
    return pd.DataFrame({"patient_id": [f"P{i:04d}" for i in range(n)], "alnm": y,
                         "age": r.normal(52, 10, n).round(), "tumor_size_cm": r.gamma(4, 0.5, n).round(1)})


def kfold_splits(n: int = 120, seed: int = RNG_SEED) -> pd.DataFrame:
    c = cohort_frame(n, seed)
    split = np.where(np.arange(n) % 5 == 0, "test", "dev")
    fold = np.full(n, -1)
    fold[split == "dev"] = np.arange((split == "dev").sum()) % 5
    return pd.DataFrame({"patient_id": c.patient_id, "label": c.alnm, "split": split, "fold": fold})


def holdout_splits(n: int = 120, seed: int = RNG_SEED) -> pd.DataFrame:
    c = cohort_frame(n, seed)
    split = np.select([np.arange(n) % 5 == 0, np.arange(n) % 5 == 1], ["test", "val"], "train")
    return pd.DataFrame({"patient_id": c.patient_id, "label": c.alnm, "split": split, "fold": -1})


MODELS = {"T2WI": "CNN T2WI", "DWI": "CNN DWI", "DCE": "CNN DCE",  # names as long as the report's
          "ensemble": "Multiparametric (weighted fusion)",
          "clinical": "Clinical baseline (logistic: age, size, margin, TIC)"}


def predictions_frame(n: int = 60, seed: int = RNG_SEED) -> pd.DataFrame:
    """Test-set predictions: good, middling, below-chance (as DCE in the demo) and near-perfect models."""
    r = np.random.default_rng(seed)
    y = (r.random(n) < 0.35).astype(int)
    logit = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    return pd.DataFrame({"patient_id": [f"T{i:03d}" for i in range(n)], "label": y,
                         "T2WI": logit(1.6 * y + r.normal(0, 1, n) - 0.8),
                         "DWI": np.clip(0.55 + 0.1 * y + r.normal(0, 0.08, n), 0, 1),
                         "DCE": np.clip(0.2 - 0.05 * y + r.normal(0, 0.08, n), 0, 1),
                         "ensemble": logit(2.4 * y + r.normal(0, 1, n) - 1.2),
                         "clinical": logit(0.6 * y + r.normal(0, 0.8, n) - 0.6)})


def roc_curves(frame: pd.DataFrame, cols=MODELS) -> dict:
    out = {}
    for col, name in cols.items():
        c = S.roc_curve(frame.label, frame[col])
        out[name] = (c.fpr[::-1], c.sensitivity[::-1], S.auc(frame.label, frame[col]))
    return out


def nomogram_coefs() -> pd.DataFrame:
    """A clinical-radiomics refit as ``radiomics_models`` writes it: a dominant rad-score, small
    coefficients for age, margin and TIC type (the narrow axes that crowded into a blob)."""
    rows = [("(intercept)", -0.7, np.nan, np.nan, np.nan, np.nan), ("age", 0.05, 52.0, 10.0, 28, 79),
            ("size", 0.3, 2.0, 0.8, 0.6, 4.9), ("irregular", 0.08, 0.6, 0.49, 0, 1),
            ("tic_III", -0.06, 0.3, 0.46, 0, 1), ("rad_score", 1.1, 0.0, 1.2, -3.1, 2.9)]
    return pd.DataFrame([{"model": "clinical_radiomics", "term": t, "coef": c, "mean": m, "sd": s,
                          "dev_min": lo, "dev_max": hi} for t, c, m, s, lo, hi in rows])


def crops_and_heat(n: int = 6, size: int = 64, seed: int = RNG_SEED):
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    crops = np.stack([np.clip(np.exp(-((xx - .5) ** 2 + (yy - .5) ** 2) / .05) + r.normal(0, .1, (size, size)), 0, 1)
                      for _ in range(n)]).astype(np.float16)
    heat = np.stack([np.exp(-((xx - r.uniform(.3, .7)) ** 2 + (yy - .4) ** 2) / .03) for _ in range(n)])
    return crops, heat / heat.max(axis=(1, 2), keepdims=True)


def qc_views():
    from alnm_core.roi import QcView

    r = np.random.default_rng(RNG_SEED)
    out = []
    for seq, shape, aspect in (("T2WI", (120, 160), 1.0), ("DWI", (64, 80), 1.25), ("DCE", (128, 128), 1.0)):
        img = r.random(shape)
        mask = np.zeros(shape, bool)
        mask[shape[0] // 3: shape[0] // 2, shape[1] // 3: shape[1] // 2] = True
        out.append(QcView(image=img, mask=mask, box=(shape[0] // 3 - 4, shape[0] // 2 + 4, shape[1] // 3 - 4,
                                                       shape[1] // 2 + 4),
                          crop=r.random((64, 64)),
                          title=f"P0001 · {seq} · largest tumour slice · slice 12 · 0.70 x 0.70 mm",
                          aspect=aspect))
    return out


def history(epochs: int = 30, seed: int = 0) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    e = np.arange(1, epochs + 1)
    h = pd.DataFrame({"epoch": e, "train_loss": 0.7 * np.exp(-e / 12) + r.normal(0, .01, epochs) + .1,
                      "val_loss": 0.6 + r.normal(0, .02, epochs),
                      "train_auc": 1 - 0.5 * np.exp(-e / 8), "val_auc": np.clip(.6 + r.normal(0, .05, epochs), 0, 1)})
    h["selected"] = h.epoch == int(h.val_auc.idxmax()) + 1
    return h


def unit_patients(seed: int = RNG_SEED) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    rows = []
    for rep in (0, 1):
        for fold in range(5):
            for part, n in (("oof", 20), ("test", 24)):
                y = (r.random(n) < .35).astype(int)
                rows += [{"repeat": rep, "fold": fold, "split": part, "label": int(v),
                          "prob": float(np.clip(.4 + .2 * v + r.normal(0, .2), 0, 1))} for v in y]
    y = (r.random(24) < .35).astype(int)  # the final refit, scoring the test set
    rows += [{"repeat": -1, "fold": -1, "split": "test", "label": int(v),
              "prob": float(np.clip(.4 + .25 * v + r.normal(0, .2), 0, 1))} for v in y]
    return pd.DataFrame(rows)


def coefficient_frame() -> pd.DataFrame:
    names = ["original_glszm_SmallAreaLowGrayLevelEmphasis_DCE", "original_firstorder_Kurtosis_T2WI",
             "original_shape_Sphericity_DWI", "original_glcm_Idmn_T2WI", "original_gldm_DependenceVariance_DCE",
             "original_firstorder_90Percentile_DWI", "original_shape_Maximum2DDiameterSlice_T2WI"]
    coef = [0.41, -0.22, 0.18, -0.05, 0.31, 0.09, -0.12]
    return pd.DataFrame({"model": "radiomics_all", "term": ["(intercept)"] + names, "coef": [-0.6] + coef,
                         "selected_in": [np.nan, 10, 7, 9, 3, 10, 6, 8], "n_fits": [np.nan] + [10] * 7})


def tic_frame() -> tuple[np.ndarray, pd.DataFrame]:
    r = np.random.default_rng(RNG_SEED)
    t = np.array([0, 1, 2, 3, 4, 5, 6]) * 1.1
    rows = []
    for i in range(40):
        tic = ["I", "II", "III"][i % 3]
        late = {"I": .3, "II": 0, "III": -.3}[tic]
        curve = np.r_[0, 1.2, 1.3, 1.3 + late * .3, 1.3 + late * .6, 1.3 + late * .8, 1.3 + late] + r.normal(0, .03, 7)
        rows.append({"tic": tic, "curve": curve, "alnm": int(r.random() < .35)})
    return t, pd.DataFrame(rows)


def figures() -> dict:
    """Every public figure function of ``plots`` with realistic inputs (name -> a thunk)."""
    test = predictions_frame()
    crops, heat = crops_and_heat()
    ups = ["rep0-fold0", "rep0-fold1", "rep0-fold2", "rep0-fold3", "rep0-fold4"]
    rel = {name: S.reliability_table(test.label, test[col], n_bins=5)
           for col, name in list(MODELS.items())[3:] + [("T2WI", "CNN T2WI")]}
    dca = {name: S.net_benefit(test.label, test[col], np.arange(5, 96) / 100)
           .rename(columns={"model": "net_benefit"}) for col, name in MODELS.items()}
    raw = [np.random.default_rng(i).gamma(2 + i, 80 * (i + 1), 4000) for i in range(3)]
    normed = [(x - x.min()) / (x.max() - x.min()) for x in raw]
    times, tic = tic_frame()
    rad_cols = {"ensemble": "Multiparametric (weighted fusion)", "T2WI": "Radiomics: all sequences",
                "DWI": "Clinical-radiomics (nomogram)", "clinical": "Clinical baseline (logistic: age, size, margin, TIC)"}
    panels = {"Multiparametric": roc_curves(test, rad_cols)}
    panels.update({s: {f"CNN {s}": roc_curves(test, {s: s})[s], f"radiomics {s}": roc_curves(test, {"clinical": s})[s]}
                   for s in ("T2WI", "DWI", "DCE")})
    return {
        "distributions_by_group": lambda: plots.distributions_by_group(
            cohort_frame(), [("age", "age (years)"), ("tumor_size_cm", "tumour size (cm)")]),
        "probabilities_by_class": lambda: plots.probabilities_by_class(
            test, MODELS, thresholds={"CNN T2WI": .42, "CNN DWI": .0, MODELS["clinical"]: .31}),
        "patient_flow kfold": lambda: plots.patient_flow(kfold_splits()),
        "patient_flow holdout": lambda: plots.patient_flow(holdout_splits()),
        "roi_qc_panel": lambda: plots.roi_qc_panel(qc_views()),
        "crop_gallery": lambda: plots.crop_gallery(
            np.concatenate([crops, crops, crops])[:16], [f"P{i:04d} · {i % 2}" for i in range(16)], ncols=8),
        "histograms_before_after": lambda: plots.histograms_before_after(raw, normed, ["T2WI", "DWI", "DCE"]),
        "tic_curves": lambda: plots.tic_curves(times, tic),
        "learning_curves": lambda: plots.learning_curves(history()),
        "learning_curves_units": lambda: plots.learning_curves_units(
            {u: history(seed=i) for i, u in enumerate(ups)} | {"final (all development)": history(seed=9).assign(val_auc=np.nan)}),
        "fold_spread_figure": lambda: plots.fold_spread_figure(unit_patients(), "T2WI"),
        "confusion_matrix_figure": lambda: plots.confusion_matrix_figure(14, 9, 7, 30, "T2WI · test"),
        "heatmap_gallery": lambda: plots.heatmap_gallery(
            crops, heat, [f"P{i:04d} y={i % 2} p=0.{60 + i}" for i in range(6)], ncols=6),
        "roc_figure": lambda: plots.roc_figure(roc_curves(test), "Test set"),
        "reliability_figure": lambda: plots.reliability_figure(rel),
        "decision_curve_figure": lambda: plots.decision_curve_figure(dca),
        "roc_panels": lambda: plots.roc_panels(panels),
        "coefficient_figure": lambda: plots.coefficient_figure(coefficient_frame(), "Radiomics: all sequences"),
        "nomogram_figure": lambda: plots.nomogram_figure(nomogram_points(nomogram_coefs())),
        "participant_flow": lambda: plots.participant_flow(*flow_inputs()[:3], notes=flow_inputs()[3]),
        "tune_figure": lambda: plots.tune_figure(tune_trials(), "attention_mil_T2WI"),
        "tune_figure nested, loss": lambda: plots.tune_figure(
            pd.concat([tune_trials(6).assign(scope=f"rep0-fold{k}") for k in range(3)]), "slice_vote_DWI",
            lower_is_better=True),
        "attention_gallery": lambda: plots.attention_gallery(attention_rows()),
        "participant_flow one group, nobody excluded": lambda: plots.participant_flow(
            40, [("ROI extraction", "", 0)], {"external cohort": (40, 13)}),
    }


def tune_trials(n: int = 12, seed: int = RNG_SEED) -> pd.DataFrame:
    """A paper-grid search as ``tune`` writes it: learning rate x batch size, two pruned trials."""
    r = np.random.default_rng(seed)
    lr = np.array([1e-3, 1e-4, 1e-5, 1e-6] * 3)[:n]
    state = np.where(np.arange(n) % 5 == 4, "pruned", "complete")
    score = np.clip(0.75 - 0.05 * np.abs(np.log10(lr) + 4) + r.normal(0, 0.03, n), 0, 1)
    return pd.DataFrame({"trial": np.arange(n), "state": state,
                         "score": np.where(state == "complete", score, np.nan),
                         "last_value": score, "param_lr": lr,
                         "param_batch_size": np.repeat([16, 32, 64], 4)[:n]})


def attention_rows(seed: int = RNG_SEED) -> list:
    """Three patients' bags (4, 7 and 12 slices) with attention weights summing to 1."""
    r = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate((4, 7, 12)):
        w = r.dirichlet(np.ones(n))
        rows.append((f"P{i:04d} · ALNM {i % 2} · p = 0.{55 + i}", r.random((n, 48, 48)),
                     np.arange(3, 3 + n), w))
    return rows


def flow_inputs():
    """A cohort of 132: 12 excluded at ROI extraction for four causes, 3 kept with imputed
    radiomics features, then development (k-fold) and test."""
    excl = [("ROI extraction", "DWI: mask is empty on every slice", 5),
            ("ROI extraction", "DCE: series has a single phase; cannot build a time-intensity curve", 4),
            ("ROI extraction", "T2WI: image and mask grids differ", 2),
            ("ROI extraction", "T2WI: unreadable DICOM (transfer syntax not supported)", 1)]
    groups = {"development (5-fold)": (96, 34), "test": (24, 9)}
    return 132, excl, groups, [("radiomics features", "DCE: texture undefined on a 1-voxel ROI; features imputed", 3)]


FIGURES = figures()


def test_every_public_figure_function_is_covered():
    defined = {n for n, f in vars(plots).items() if callable(f) and not n.startswith("_")
               and getattr(f, "__module__", "") == plots.__name__}
    assert defined <= set(plots.__all__), f"public but not in plots.__all__: {sorted(defined - set(plots.__all__))}"
    public = set(plots.__all__) - {"use_theme"}
    covered = {k.split()[0] for k in FIGURES}
    assert public <= covered, f"figure functions without a legibility test: {sorted(public - covered)}"


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_is_legible(name):
    L.assert_legible(FIGURES[name]())


# ------------------------------------------------------------------------- the checker can fail

def _fig(w=4.0, h=3.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), layout="constrained")
    return fig, fig.subplots()


def test_checker_finds_overlapping_texts_and_passes_rotated_neighbours():
    fig, ax = _fig()
    ax.set_xticks(range(12), [f"label number {i}" for i in range(12)])
    assert any(p.kind == "text overlap" for p in L.check_figure(fig))
    fig, ax = _fig()
    ax.set_xticks(range(6), [f"label {i}" for i in range(6)], rotation=45, ha="right")
    assert L.check_figure(fig) == []


def test_checker_finds_a_legend_on_data_and_names_the_free_corner():
    fig, ax = _fig()
    ax.plot([0, 1], [0, 1], label="rising diagonal")
    ax.legend(loc="center")
    (p,) = [p for p in L.check_figure(fig) if p.kind == "legend covers data"]
    assert "lower right" in p.detail or "upper left" in p.detail
    fig, ax = _fig()
    ax.plot([0, 1], [0, 1], label="rising diagonal")
    L.place_legend(ax)
    assert L.check_figure(fig) == []


def test_checker_finds_lines_through_text_but_not_grid_under_a_bar():
    fig, ax = _fig()
    ax.plot([0, 1], [0.5, 0.5], label="level")
    ax.text(0.5, 0.5, "struck", ha="center", va="center")
    assert [p.kind for p in L.check_figure(fig)] == ["line through text"]
    fig, ax = _fig()
    ax.grid(True)
    ax.barh([0], [10], height=0.8)
    ax.set_xticks([0, 2, 4, 5, 6, 8, 10])
    ax.text(5, 0, "inside the bar", ha="center", va="center", color="white")
    assert L.check_figure(fig) == []


def test_checker_flags_wide_figures_and_cut_text():
    fig, ax = _fig(9, 3)
    ax.text(1.2, 0.5, "beyond the right edge of the figure", transform=ax.transAxes)
    kinds = {p.kind for p in L.check_figure(fig)}
    assert {"figure too wide", "text outside figure"} <= kinds


# --------------------------------------------------------------------- the stumbles of issue 22

def _drawn_texts(fig):
    return [t.get_text() for _, t, _ in L.render(fig).texts]


def test_patient_flow_draws_development_and_test_under_kfold_with_events():
    splits = kfold_splits()
    fig = plots.patient_flow(splits)
    drawn = L.render(fig)
    ax = fig.axes[0]
    bars = [p for _, p in drawn.patches if p.axes is ax and type(p).__name__ == "Rectangle" and p.get_width() > 0
            and p is not ax.patch and p.get_height() < 1]
    assert sum(p.get_width() for p in bars) == len(splits)  # every patient in a drawn bar
    labels = [t.get_text() for _, t, _ in drawn.texts]
    dev = splits[splits.split == "dev"]
    assert any(lab.startswith("development (5-fold)") and f"{len(dev)} patients, {int(dev.label.sum())} ALNM" in lab
               for lab in labels)
    test = splits[splits.split == "test"]
    assert any(f"{len(test)} patients, {int(test.label.sum())} ALNM" in lab for lab in labels)


def test_patient_flow_draws_an_unknown_partition_and_rejects_bad_labels():
    s = holdout_splits()
    s.loc[s.index[:7], "split"] = "external"
    assert any(t.startswith("external\n7 patients") for t in _drawn_texts(plots.patient_flow(s)))
    s.loc[s.index[3], "label"] = 2
    with pytest.raises(ValueError, match="P0003"):
        plots.patient_flow(s)


def test_confusion_matrix_numbers_are_not_struck_by_grid_lines():
    fig = plots.confusion_matrix_figure(14, 9, 7, 30, "T2WI · test")
    assert not [p for p in L.check_figure(fig) if p.kind == "line through text"]
    assert {"14", "9", "7", "30"} <= set(_drawn_texts(fig))


def test_nomogram_every_axis_has_readable_labels():
    pts = nomogram_points(nomogram_coefs())
    fig = plots.nomogram_figure(pts)
    drawn = L.render(fig)
    ax = fig.axes[0]
    rows = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    by_row: dict[str, list[str]] = {}
    for _, t, _ in drawn.texts:
        if t in ax.texts:
            row = min(rows, key=lambda r: abs(rows[r] - (t.get_position()[1] - 0.18)))
            by_row.setdefault(row, []).append(t.get_text())
    assert set(by_row) == set(rows), f"rows without labels: {set(rows) - set(by_row)}"
    assert all(len(v) >= 2 for v in by_row.values()), by_row
    assert sorted(by_row["TIC type III"]) == ["no", "yes"] and sorted(by_row["irregular margin"]) == ["no", "yes"]
    assert L.check_figure(fig) == []


def test_gradcam_panels_show_the_raw_crop_and_a_labelled_colour_scale(tmp_path):
    from alnm_core.report.saliency import gradcam_png

    crops, heat = crops_and_heat(1)
    path = gradcam_png(crops[0], heat[0], "P0001 · T2WI · predicted P(ALNM) = 0.71", tmp_path / "g.png")
    from matplotlib.image import imread

    img = imread(path)
    assert img.shape[1] >= 800 and img.shape[0] >= 500, img.shape  # was about 190 x 210
    fig = plots.heatmap_gallery(crops, heat, ["P0001"], ncols=1)
    drawn = L.render(fig)
    rgba = np.asarray(fig.canvas.buffer_rgba())[::-1, :, :3].astype(int)  # rows from the bottom
    images = [ax for ax in fig.get_axes() if ax.images]
    assert len(images) == 2
    def panel(ax):
        b = ax.get_window_extent(drawn.renderer)
        return rgba[int(b.y0) + 3:int(b.y1) - 3, int(b.x0) + 3:int(b.x1) - 3]
    raw, overlay = sorted(images, key=lambda a: a.get_position().x0)
    assert np.ptp(panel(raw), axis=2).max() <= 2  # grey: the crop as the network sees it
    assert np.ptp(panel(overlay), axis=2).max() > 60  # coloured: the heatmap over it
    texts = " ".join(" ".join(t.get_text() for _, t, _ in drawn.texts).split())
    assert "Grad-CAM" in texts and "0 = none" in texts  # the colour bar says what it shows
    assert L.check_figure(fig) == []


def test_participant_flow_draws_every_count_and_reason():
    n, excl, groups, notes = flow_inputs()
    fig = plots.participant_flow(n, excl, groups, notes=notes)
    text = "\n".join(_drawn_texts(fig)).replace("\n   ", " ")
    assert "n = 132" in text and "Excluded at ROI extraction: n = 12" in text
    assert "mask is empty on every slice (n = 5)" in text and "n = 120" in text
    assert "n = 96" in text and "ALNM: 34 (35%)" in text and "ALNM: 9 (38%)" in text
    assert "kept, n = 3" in text


def test_participant_flow_refuses_counts_that_lose_patients():
    with pytest.raises(ValueError, match="132 patients less 12 excluded leaves 120, but the groups hold 119"):
        plots.participant_flow(132, flow_inputs()[1], {"development": (95, 34), "test": (24, 9)})


def test_flow_from_run_counts_patients_once_and_strips_paths():
    from alnm_core.report.flow import flow_from_run

    splits = kfold_splits(40)
    excl = [{"patient_id": "P0001", "sequence": "DWI", "reason": "/data/DOE_JOHN/dwi: slice 12: mask is empty",
             "file": "/data/DOE_JOHN/dwi"},
            {"patient_id": "P0001", "sequence": "DCE", "reason": "single phase"},
            {"patient_id": "P0002", "sequence": "DWI", "reason": "/data/ROE_JANE/dwi: slice 3: mask is empty"}]
    fc = flow_from_run(splits, excl, radiomics_exclusions=[{"patient_id": "P0005", "sequence": "T2WI",
                                                            "reason": "texture undefined"}])
    assert fc.n_cohort == 40 and fc.exclusions == [("ROI extraction", "DWI: slice N: mask is empty", 2)]
    assert sum(n for n, _ in fc.groups.values()) == 38 and list(fc.groups)[0] == "development (5-fold)"
    assert fc.notes == [("radiomics features", "T2WI: texture undefined (imputed)", 1)]
    text = " ".join(_drawn_texts(plots.participant_flow(*fc[:3], notes=fc.notes)))
    assert "DOE" not in text and "ROE" not in text
    fc = flow_from_run(splits, [])
    assert fc.exclusions == [("ROI extraction", "", 0)] and fc.n_cohort == 40
    assert "Excluded at ROI extraction: n = 0" in _drawn_texts(plots.participant_flow(*fc[:3]))


def test_install_check_warns_about_every_printed_figure(tmp_path):
    undo = L.install_check()
    try:
        fig, ax = _fig(9, 3)
        with pytest.warns(L.FigureLegibilityWarning, match="figure too wide"):
            fig.savefig(tmp_path / "wide.png")
        ok = plots.confusion_matrix_figure(1, 2, 3, 4, "fine")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error", L.FigureLegibilityWarning)
            ok.savefig(tmp_path / "ok.png")
    finally:
        undo()
