"""The evaluation report: files, self-contained HTML, edge cases, validation and the ROC maths."""

from __future__ import annotations

import base64
import dataclasses
import html
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import Normalize
from PIL import Image
from sklearn import metrics as skm

from piade.evaluation.report import ReportData, write_report
from piade.evaluation.report.figures import (
    _map_figure,
    _map_scale,
    _pick_examples,
    _reconstruction_figure,
    _roc,
)
from piade.evaluation.report.html import page as _html

FIGURES = ("reconstructions", "anomaly_maps", "roc", "score_histogram", "vector_lengths")
ODD_PATH = "data/<odd&name>.png"
METRICS: dict[str, float | int | str | None] = {
    "image_auroc": 0.987654,
    "pixel_auroc": None,
    "n_normal": 6,
    "model": "runs/<best>.piade",
}


def synthetic(
    n_normal: int = 6,
    n_anomalous: int = 6,
    height: int = 32,
    width: int = 32,
    vectors: int = 2,
    masks: bool = True,
    groups: bool = True,
    seed: int = 0,
) -> ReportData:
    """Noisy grey images; anomalous ones carry a bright square, its mask, and a map high on it."""
    rng = np.random.default_rng(seed)
    n = n_normal + n_anomalous
    labels = np.r_[np.zeros(n_normal, int), np.ones(n_anomalous, int)]
    truth = np.zeros((n, height, width), dtype=bool)
    side = max(2, min(height, width) // 4)
    for i in range(n_normal, n):
        y, x = rng.integers(0, height - side), rng.integers(0, width - side)
        truth[i, y : y + side, x : x + side] = True
    background = rng.integers(60, 120, size=(n, height, width, 3), dtype=np.uint8)
    images = background.copy()
    images[truth] = 250
    maps = rng.random((n, height, width)) * 0.2 + truth  # (N, H, W)
    scores = maps.max(axis=(1, 2)) + rng.random(n) * 0.01
    lengths = rng.random((n, vectors)) * 0.3 + 0.4 + 0.2 * labels[:, None]  # (N, J)
    paths = [f"data/img_{i:03d}.png" for i in range(n)]
    if n:
        paths[-1] = ODD_PATH
    return ReportData(
        images=images,
        reconstructions=background,
        anomaly_maps=maps,
        labels=labels,
        scores=scores,
        threshold=0.21,
        lengths=lengths,
        paths=paths,
        masks=truth if masks else None,
        groups=(["good"] * n_normal + ["square"] * n_anomalous) if groups else None,
    )


def assert_figures(out: Path) -> None:
    """Every figure exists and is a non-blank PNG of a readable size."""
    for name in FIGURES:
        with Image.open(out / f"{name}.png") as image:
            assert image.format == "PNG"
            assert 300 <= image.width <= 2000 and 200 <= image.height <= 2000, (name, image.size)
            pixels = np.asarray(image.convert("RGB"))
        assert pixels.std() > 5, f"{name}.png looks blank"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportData]:
    data = synthetic()
    page = write_report(
        tmp_path_factory.mktemp("report") / "new", data, metrics=METRICS, title="Run <1> & co"
    )
    return page, data


def test_writes_every_figure_and_the_page(report: tuple[Path, ReportData]) -> None:
    page, _ = report
    assert page.name == "report.html" and page.is_file()
    assert_figures(page.parent)


def test_html_is_self_contained_and_embeds_the_figures(report: tuple[Path, ReportData]) -> None:
    page, _ = report
    text = page.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 5
    assert 'src="http' not in text and "<script" not in text.lower() and "<link" not in text
    embedded = {base64.b64decode(b) for b in re.findall(r"base64,([A-Za-z0-9+/=]+)", text)}
    assert embedded == {(page.parent / f"{name}.png").read_bytes() for name in FIGURES}


def test_html_shows_metrics_and_escapes_data(report: tuple[Path, ReportData]) -> None:
    text = report[0].read_text(encoding="utf-8")
    assert "0.9877" in text and "n/a" in text and ">6<" in text
    assert "runs/&lt;best&gt;.piade" in text and "<best>" not in text
    assert "data/&lt;odd&amp;name&gt;.png" in text and ODD_PATH not in text
    assert "Run &lt;1&gt; &amp; co" in text and "<1>" not in text


def test_top_table_is_sorted_and_capped() -> None:
    data = synthetic(n_normal=20, n_anomalous=10)
    text = _html(data, "t", {}, [])
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td>", text)
    assert [int(rank) for rank, _ in rows] == list(range(1, 21))
    ranked = [data.paths[i] for i in np.argsort(-data.scores, kind="stable")[:20]]
    assert [path for _, path in rows] == [html.escape(p) for p in ranked]
    assert text.count(">above<") == int((np.sort(data.scores)[-20:] > data.threshold).sum())


@pytest.mark.parametrize(
    "options",
    [
        {"n_anomalous": 0},  # only normal images: ROC undefined, all-false masks
        {"n_normal": 0, "masks": False, "vectors": 1, "groups": False},
        {"height": 8, "width": 12, "vectors": 1, "masks": False, "n_normal": 3, "n_anomalous": 1},
    ],
    ids=["only-normal", "only-anomalous-J1-no-masks", "tiny-non-square"],
)
def test_edge_cases_still_write_every_figure(tmp_path: Path, options: dict[str, int]) -> None:
    data = synthetic(**options)  # type: ignore[arg-type]
    page = write_report(tmp_path, data, metrics={"image_auroc": None}, title="edge", max_examples=3)
    assert_figures(tmp_path)
    assert page.read_text(encoding="utf-8").count("data:image/png;base64,") == 5


def test_reports_written_from_threads_are_identical(tmp_path: Path) -> None:
    data = synthetic(n_normal=3, n_anomalous=3, height=8, width=8)
    with ThreadPoolExecutor(max_workers=2) as pool:
        pages = list(
            pool.map(
                lambda d: write_report(d, data, metrics={}, title="t"),
                [tmp_path / "a", tmp_path / "b"],
            )
        )
    for name in FIGURES:
        assert (pages[0].parent / f"{name}.png").read_bytes() == (
            pages[1].parent / f"{name}.png"
        ).read_bytes()
    assert pages[0].read_text(encoding="utf-8") == pages[1].read_text(encoding="utf-8")


@pytest.mark.parametrize("examples", [8, 40])
def test_grids_stay_under_2000_px_wide(examples: int) -> None:
    data = synthetic(n_normal=examples, n_anomalous=examples, height=16, width=48)
    blocks = _pick_examples(data, examples)
    norm = Normalize(*_map_scale(data))
    for fig in (_reconstruction_figure(data, blocks), _map_figure(data, blocks, norm)):
        assert fig.get_figwidth() * fig.dpi <= 2000  # constrained layout keeps the figure size


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("images", lambda d: d.images.astype(np.float32)),
        ("reconstructions", lambda d: d.reconstructions[:, :, :-1]),
        ("anomaly_maps", lambda d: d.anomaly_maps[..., None]),
        ("anomaly_maps", lambda d: np.full_like(d.anomaly_maps, np.nan)),
        ("labels", lambda d: d.labels[:-1]),
        ("labels", lambda d: d.labels * 2),
        ("scores", lambda d: d.scores[1:]),
        ("lengths", lambda d: d.lengths[:, 0]),
        ("masks", lambda d: d.masks[:, :-1]),
        ("paths", lambda d: d.paths[:-1]),
        ("groups", lambda d: ["good"]),
        ("threshold", lambda d: float("nan")),
    ],
)
def test_bad_fields_raise_naming_the_field(field: str, bad: object) -> None:
    data = synthetic()
    with pytest.raises(ValueError, match=rf"ReportData\.{field}\b"):
        dataclasses.replace(data, **{field: bad(data)})  # type: ignore[operator]


def test_empty_input_and_bad_max_examples_raise(tmp_path: Path) -> None:
    data = synthetic()
    with pytest.raises(ValueError, match="at least one image"):
        dataclasses.replace(
            data,
            images=data.images[:0],
            reconstructions=data.reconstructions[:0],
            anomaly_maps=data.anomaly_maps[:0],
            labels=data.labels[:0],
            scores=data.scores[:0],
            lengths=data.lengths[:0],
            paths=[],
            masks=None,
            groups=None,
        )
    with pytest.raises(ValueError, match="max_examples"):
        write_report(tmp_path, data, metrics={}, title="t", max_examples=0)


@pytest.mark.parametrize("seed", range(5))
def test_roc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=200)
    labels[:2] = [0, 1]
    scores = rng.integers(0, 6, size=200) + 0.5 * labels * rng.random(200).round(1)  # many ties
    fpr, tpr, auroc = _roc(labels, scores)
    ref_fpr, ref_tpr, _ = skm.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert auroc == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)


def test_roc_hand_made_cases() -> None:
    fpr, tpr, auroc = _roc(np.array([0, 1, 0, 1]), np.ones(4))  # one tie group: the diagonal
    assert fpr.tolist() == [0, 1] and tpr.tolist() == [0, 1] and auroc == 0.5
    assert _roc(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.9]))[2] == 1.0
    assert _roc(np.array([1, 1, 0]), np.array([0.1, 0.2, 0.9]))[2] == 0.0


def test_examples_are_the_top_anomalies_and_a_spread_of_normals() -> None:
    data = synthetic(n_normal=10, n_anomalous=10)
    (_, normal), (_, anomalous) = _pick_examples(data, 4)
    normal_scores = data.scores[data.labels == 0]
    assert data.scores[normal].tolist() == sorted(data.scores[normal].tolist())
    assert data.scores[normal[0]] == normal_scores.min()
    assert data.scores[normal[-1]] == normal_scores.max()
    assert anomalous.tolist() == np.argsort(-data.scores)[:4].tolist()
    assert [b.tolist() for _, b in _pick_examples(data, 4)] == [normal.tolist(), anomalous.tolist()]


def test_map_scale_tops_at_the_normal_99th_percentile() -> None:
    data = synthetic()
    low, high = _map_scale(data)
    assert low == 0.0
    assert high == pytest.approx(np.percentile(data.anomaly_maps[data.labels == 0], 99))
    assert high < data.anomaly_maps[data.labels == 1].max()


def test_vector_table_counts_decoded_vectors_per_class(tmp_path: Path) -> None:
    data = dataclasses.replace(synthetic(), decoded=np.r_[np.zeros(6, int), [1, 1, 0, 0, 0, 0]])
    text = write_report(tmp_path, data, metrics=METRICS, title="t").read_text(encoding="utf-8")
    table = text.split("<h2>Instantiation vectors</h2>")[1].split("</table>")[0]
    normal, anomalous = table.split("<tr><th>normal</th>")[1].split("<tr><th>anomalous</th>")
    assert normal.count("6 of 6") == 1 and "0 of 6" in normal
    assert "4 of 6" in anomalous and "2 of 6" in anomalous
    median = np.median(data.lengths[:6, 0])
    assert f"{median:.4f}" in normal
    without = write_report(tmp_path / "no", synthetic(), metrics=METRICS, title="t")
    assert "Instantiation vectors" not in without.read_text(encoding="utf-8")


def test_group_table_counts_flagged_images_per_defect_type(tmp_path: Path) -> None:
    data = synthetic()  # 6 good, 6 "square"; scores of the squares are about 1, threshold 0.21
    groups = ["good"] * 6 + ["square"] * 3 + ["<dot>"] * 3
    data = dataclasses.replace(data, groups=groups, scores=np.r_[data.scores[:9], [0.0, 0.0, 9.0]])
    text = write_report(tmp_path, data, metrics=METRICS, title="t").read_text(encoding="utf-8")
    table = text.split("<h2>By group</h2>")[1].split("</table>")[0]
    rows = table.split("<tr><th>")[2:]
    assert rows[0].startswith("good</th><td>normal</td><td>6</td><td>0 (0%)</td><td>n/a</td>")
    assert rows[1].startswith("square</th><td>anomalous</td><td>3</td><td>3 (100%)</td><td>1.0000")
    assert rows[2].startswith("&lt;dot&gt;</th><td>anomalous</td><td>3</td><td>1 (33%)</td>")
    without = write_report(tmp_path / "no", synthetic(groups=False), metrics=METRICS, title="t")
    assert "By group" not in without.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "values",
    [
        "equal-float32",  # every length 1.0000 in float32, one ulp apart (issue #12's grey run)
        "constant",
        "nan",
    ],
)
def test_degenerate_values_still_draw_every_figure(tmp_path: Path, values: str) -> None:
    data = synthetic(n_normal=4, n_anomalous=4, height=16, width=16)
    n = len(data.labels)
    if values == "equal-float32":
        one = np.float32(1.0)
        column = np.where(np.arange(n) % 2, one, np.nextafter(one, np.float32(0)))
        data = dataclasses.replace(data, lengths=np.stack([column, column], axis=1))
    elif values == "constant":
        data.scores[:] = 0.25
        data.lengths[:] = 0.5
    else:
        data.scores[0] = np.nan
        data.lengths[:, 1] = np.nan
    page = write_report(tmp_path, data, metrics={"image_auroc": None}, title="degenerate")
    assert_figures(tmp_path)
    assert page.read_text(encoding="utf-8").count("data:image/png;base64,") == 5


def test_a_figure_that_fails_leaves_the_others_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import piade.evaluation.report.figures

    def broken(data: ReportData) -> None:
        raise ValueError("bins exploded")

    monkeypatch.setattr(piade.evaluation.report.figures, "_roc_figure", broken)
    page = write_report(tmp_path, synthetic(), metrics={"image_auroc": 0.5}, title="partial")
    assert "could not draw roc.png (ValueError: bins exploded)" in caplog.text
    assert page.read_text(encoding="utf-8").count("data:image/png;base64,") == 5
    with Image.open(tmp_path / "roc.png") as image:
        assert image.width >= 300
    for name in (n for n in FIGURES if n != "roc"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_each_figure_is_rendered_once_as_an_rgb_png(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving a figure renders it, so checking it by drawing first would render it twice."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    draws = []
    real = FigureCanvasAgg.draw

    def counted(canvas: FigureCanvasAgg) -> None:
        draws.append(canvas.figure)
        real(canvas)

    monkeypatch.setattr(FigureCanvasAgg, "draw", counted)
    write_report(tmp_path, synthetic(), metrics={"image_auroc": 0.5}, title="once")
    assert len(draws) == len(FIGURES) == len({id(fig) for fig in draws})
    for name in FIGURES:
        with Image.open(tmp_path / f"{name}.png") as image:
            assert image.mode == "RGB", name  # the figures are opaque: no alpha channel stored
