"""The functional kind through the one engine: campaign files, bad input in one line, 1 and 2
ranks, the weights kept and used, the report, and the pipeline (dataset -> grid -> final)."""
import shutil

import numpy as np
import pytest

from qpnn_hpc.campaigns import files, store
from qpnn_hpc.campaigns.engine import run_campaign
from qpnn_hpc.cluster import pipeline
from qpnn_hpc.config import ConfigError

from tests.conftest import ROOT, qpnn

# A small molecules dataset (8 training r, 7 test) on seed 002's grid: a few seconds to solve.
DATASET = 'kind = "solve1d"\nname = "mol8"\ndatasets = ["molecules"]\n[molecules]\ntrain_points = 8\n'
GRID = """kind = "functional"
name = "grid"
dataset = "{data}"
systems = ["molecules"]
inputs = ["n", "V"]
targets = ["E", "T", "A", "Eg"]
repeats = 2
[train]
epochs = 4
validation = 0.25
[grid]
lr = [0.001, 0.003]
batch_size = [3, 6]
"""
FINAL = """kind = "functional"
name = "final"
dataset = "{data}"
systems = ["molecules"]
inputs = ["n"]
targets = ["E", "T", "A", "Eg"]
repeats = 2
keep_weights = 1
best_from = "{grid}"
[train]
epochs = 6
validation = 0.0
lr = 0.002
batch_size = 4
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("fn")
    (d / "dataset.toml").write_text(DATASET)
    data = d / "mol8.h5"
    run_campaign(d / "dataset.toml", data, progress=False)
    (d / "grid.toml").write_text(GRID.format(data=data))
    (d / "final.toml").write_text(FINAL.format(data=data, grid=d / "grid.h5"))
    return d


def test_the_seed_protocol_files_expand(monkeypatch):
    monkeypatch.chdir(ROOT)
    grid = files.load(ROOT / "jobs" / "functionals" / "grid.toml")
    assert grid.kind == "functional" and len(grid.specs) == 2 * 2 * 4 * 25 * 2
    assert {(s.lr, s.batch_size) for s in grid.specs} == {
        (lr, b) for lr in (0.00032, 0.00064, 0.00128, 0.00256, 0.00512) for b in (1, 10, 25, 50, 100)}
    assert {s.epochs for s in grid.specs} == {200} and {s.validation for s in grid.specs} == {0.2}
    # units: one ensemble per (system, input, batch size): 4 targets x 5 lr x 2 repeats = 40 models
    keys = {grid.plugin.batch_key(s) for s in grid.specs}
    assert len(keys) == 2 * 2 * 5
    p = pipeline.load(ROOT / "jobs" / "functionals" / "pipeline.toml")
    assert [s.name for s in p.stages] == ["dataset", "grid", "final"]


@pytest.mark.parametrize("text,match", [
    ('targets = ["E", "mu"]\n', r"targets: unknown 'mu'; use any of \['E', 'T', 'A', 'Eg'\]"),
    ('inputs = ["rho"]\n', r"inputs: unknown 'rho'"),
    ('[train]\ntarget = "E"\n', r"train.target: set by the campaign; use targets"),
    ('[grid]\nlearning_rate = [0.1]\n', r"unknown key.*learning_rate.*valid keys"),
    ('[train]\nvalidation = 1.5\n', r"validation: fraction held out must be in \[0, 1\)"),
    ('best_from = "nowhere.h5"\n', r"best_from: no such file 'nowhere.h5'"),
])
def test_bad_campaign_is_one_line(tmp_path, text, match):
    f = tmp_path / "bad.toml"
    f.write_text('kind = "functional"\nname = "b"\ndataset = "d.h5"\n' + text)
    with pytest.raises(ConfigError, match=match):
        files.load(f)
    p = qpnn("run", f, "--out", tmp_path / "o.h5", check=False)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_a_dataset_file_of_the_wrong_kind_is_one_line(tmp_path, work):
    trial = tmp_path / "trial.h5"
    shutil.copy(ROOT / "tests" / "campaigns" / "data" / "results_v1_tiny.h5", trial)
    f = tmp_path / "c.toml"
    f.write_text(GRID.format(data=trial))
    p = qpnn("run", f, "--out", tmp_path / "o.h5", check=False, ranks=2, timeout=120)  # every rank hears it
    assert p.returncode == 2 and "is a 'trial' results file, not a 1D dataset" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and not list(tmp_path.glob("o.h5*"))


def test_grid_then_final_then_report(work, tmp_path):
    """The grid search on 1 and 2 ranks (same numbers to float rounding), the final training
    with the grid's best added, the weights kept and reloaded, and the report's sections."""
    from qpnn_hpc.functionals import predict
    grid, grid2 = work / "grid.h5", tmp_path / "grid2.h5"
    qpnn("run", work / "grid.toml", "--out", grid, "--quiet")
    qpnn("run", work / "grid.toml", "--out", grid2, "--quiet", ranks=2)
    a, b = store.read_table(grid), store.read_table(grid2)
    assert (a["status"] == store.DONE).all() and set(b["rank"]) == {0, 1}
    np.testing.assert_allclose(a["val_curve"], b["val_curve"], rtol=1e-4)
    qpnn("run", work / "final.toml", "--out", work / "final.h5", "--quiet")
    t = store.read_table(work / "final.h5")
    assert (t["status"] == store.DONE).all()
    assert set(t["choice"]) <= {"fixed", "best"} and "best" in set(t["choice"])
    # the first repeat of each configuration kept its weights: rebuild one and predict the test split
    i = int(np.flatnonzero(t["weights_index"] >= 0)[0])
    f = predict.load(work / "final.h5", i)
    from qpnn_hpc.exact1d.dataset import read
    d = read(t["dataset"], "molecules")
    key = {"n": "n1", "V": "V"}[t["input"][i]]
    np.testing.assert_allclose(f.predict(d["test"][key], d["x"]), t["test_pred"][i][:7], rtol=1e-5, atol=1e-7)
    rep = tmp_path / "rep"
    qpnn("report", work / "final.h5", "--out", rep)
    md = (rep / "report.md").read_text()
    for section in ("Table 1", "configuration: best", "Gauge-invariant hybrids", "Grid search (Fig. 8)",
                    "Sensitivity", "S_E / S_T"):
        assert section in md, section
    assert {p.name for p in rep.glob("*.png")} >= {"mae_molecules.png", "grid_search.png", "tv_kde.png"}


def _pipeline(path, work, grid_out, report):
    """A two-stage pipeline: the module's dataset (out d.h5), then its grid search."""
    path.write_text(f"""name = "p"
[[stages]]
name = "dataset"
campaign = "{work / 'dataset.toml'}"
out = "d.h5"
[[stages]]
name = "grid"
campaign = "{work / 'grid.toml'}"
out = "{grid_out}"
after = ["dataset"]
report = "{report}"
""")


def test_pipeline_runs_in_order_skips_complete_stages_and_shows_status(work, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _pipeline(tmp_path / "p.toml", work, work / "grid_p.h5", "grid_report")
    shutil.copy(work / "mol8.h5", tmp_path / "d.h5")  # the dataset stage is complete: skipped
    p = qpnn("pipeline", tmp_path / "p.toml", cwd=tmp_path)
    assert "stage dataset complete, skipped" in p.stdout and "stage grid: report written" in p.stdout
    again = qpnn("pipeline", tmp_path / "p.toml", cwd=tmp_path)
    assert "stage grid complete, skipped" in again.stdout and "to run" not in again.stdout
    s = qpnn("status", tmp_path / "p.toml", cwd=tmp_path).stdout
    assert "stage dataset: d.h5: complete" in s and "stage grid (after dataset)" in s
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[[stages]]\nname = "x"\ncampaign = "c.toml"\nout = "o.h5"\nafter = ["y"]\n')
    p = qpnn("pipeline", bad, check=False)
    assert p.returncode == 2 and "stages[0].after: 'y' is not a stage before 'x'" in p.stderr


def test_failed_trainings_exit_3_and_retry_failed_runs_them_again(work, tmp_path):
    """A learning rate that makes the loss non-finite: the rows are failed with the reason,
    `run` exits 3 (some tasks failed), a plain rerun runs nothing, --retry-failed reruns them."""
    f = tmp_path / "diverge.toml"
    f.write_text(GRID.format(data=work / "mol8.h5").replace("lr = [0.001, 0.003]", "lr = [1e12]")
                 .replace('targets = ["E", "T", "A", "Eg"]', 'targets = ["T"]'))
    out = tmp_path / "d.h5"
    p = qpnn("run", f, "--out", out, check=False)
    assert p.returncode == 3 and "task(s) failed" in p.stderr and "--retry-failed" in p.stderr
    t = store.read_table(out)
    assert (t["status"] == store.FAILED).all() and all("non-finite training loss" in r for r in t["reason"])
    s = qpnn("status", out).stdout
    assert "failed" in s and "T[n] on molecules, lr 1e+12" in s
    assert "0 to run" in qpnn("run", f, "--out", out, check=False).stdout
    again = qpnn("run", f, "--out", out, "--retry-failed", check=False)
    assert f"{len(t['status'])} to run" in again.stdout and again.returncode == 3


def test_pipeline_submit_runs_the_stages_in_order_and_records_their_jobs(work, tmp_path, monkeypatch):
    """`pipeline --submit` with the local executor: one job per incomplete stage, in order, each
    recorded beside its results file; status shows the stage's job; the report is written by
    the job of the stage that has one."""
    monkeypatch.chdir(tmp_path)
    _pipeline(tmp_path / "p.toml", work, "g.h5", "g_report")
    p = qpnn("pipeline", tmp_path / "p.toml", "--submit", "--executor", "local", "--time", "10", cwd=tmp_path,
             timeout=600)
    assert "stage dataset: job" in p.stdout and "stage grid: job" in p.stdout, p.stdout
    assert (tmp_path / "g_report" / "report.md").exists()
    for out in ("d.h5", "g.h5"):
        assert store.status_counts(tmp_path / out)["pending"] == 0
        rec = (tmp_path / f"{out}.jobs.json").read_text()
        assert '"pipeline": "p"' in rec and '"state": "COMPLETED"' in rec
    s = qpnn("status", tmp_path / "p.toml", cwd=tmp_path).stdout
    assert "stage grid (after dataset): g.h5: complete" in s and "(local): COMPLETED" in s
    again = qpnn("pipeline", tmp_path / "p.toml", "--submit", "--executor", "local", cwd=tmp_path)
    assert "stage dataset: complete, skipped" in again.stdout and "stage grid: complete, skipped" in again.stdout


def test_a_cell_above_the_seed_says_by_how_many_standard_errors():
    from qpnn_hpc.functionals.report import above_seed
    assert above_seed([0.5e-3, 0.7e-3], (1.0, 0.5)) == ""  # mean 0.6 mHa, below the seed's 1.0
    # mean 3 mHa, sample std 1.414 over 2 repeats; the seed 1 +- 0.5 over 10:
    # SE = sqrt(1.414^2 / 2 + 0.5^2 / 10) = 1.012, (3 - 1) / 1.012 = 1.98
    assert above_seed([2e-3, 4e-3], (1.0, 0.5)) == " (above: 2.0 SE)"
