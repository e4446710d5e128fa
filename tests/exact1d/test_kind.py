"""The solve1d kind (seed 002's 1D datasets) through the one engine: the campaign file, the
results file, 1 vs 2 ranks, kill and resume, reading a dataset back, submit and shards."""

import json

import h5py
import numpy as np
import pytest

from qpnn_hpc.campaigns import files, store
from qpnn_hpc.campaigns.engine import run_campaign
from qpnn_hpc.config import ConfigError
from qpnn_hpc.exact1d import dataset as dataset1d
from qpnn_hpc.exact1d import kind as solve1d
from qpnn_hpc.exact1d.report import write_report

from tests.conftest import ROOT, WRITERS, kill_mid_run, needs_writer, qpnn

JOB = ROOT / "jobs" / "dataset1d.toml"
# A coarse grid and 3 x 3 / 3 training points: 13 atoms and 5 molecules, well under a second to solve.
SMALL = """
kind = "solve1d"
name = "small"
datasets = ["atoms", "molecules"]
[grid]
box = 8.0
points_per_bohr = 3.0
stencil = 7
[atoms]
train_points = 3
[molecules]
train_points = 3
"""
# Long enough to be killed mid-run: seed 002's grid, 59 molecules (30 to 60 ms each).
SLOW = """
kind = "solve1d"
datasets = ["molecules"]
[molecules]
train_points = 30
"""


def _toml(tmp_path, text, name="ds.toml"):
    f = tmp_path / name
    f.write_text(text)
    return f


def _arrays(path):
    with h5py.File(path, "r") as f:
        return {f"{g}/{k}": d[...] for g in ("tasks", "results") for k, d in f[g].items()}


def test_job_file_is_seed_002():
    c = files.load(JOB)
    assert c.kind == "solve1d" and c.name == "dataset1d"
    assert c.config == solve1d.DatasetCampaignConfig()  # the file spells out the defaults
    g = c.config.grid
    assert (g.box, g.points_per_bohr, g.stencil) == (
        dataset1d.DEFAULT_BOX, dataset1d.DEFAULT_POINTS_PER_BOHR, dataset1d.DEFAULT_STENCIL)
    assert c.config.atoms.train_points == dataset1d.ATOM_TRAIN_POINTS == 10
    assert c.config.molecules.train_points == dataset1d.MOLECULE_TRAIN_POINTS == 50
    labels = solve1d.labels(c.config, c.specs)
    expected = []
    for kind in dataset1d.KINDS:
        for split in dataset1d.SPLITS:
            specs = dataset1d.dataset_specs(kind, split)
            expected += specs
            rows = (labels["dataset"] == kind.encode()) & (labels["split"] == split.encode())
            assert [c.specs[i] for i in np.flatnonzero(rows)] == list(specs)
    assert list(c.specs) == expected and len(c.specs) == 100 + 81 + 50 + 49


@pytest.mark.parametrize("text,match", [
    ('colour = "red"\n', r"unknown key.*colour.*valid keys.*atoms, datasets, grid, molecules, name"),
    ('[grid]\nspacing = 0.1\n', r"grid.spacing.*valid keys.*box, points_per_bohr, solve_box, "
                                 r"solve_points_per_bohr, stencil"),
    ('[grid]\nsolve_box = 10.0\n', r"grid: solve_box: must be a number >= box = 14 bohr"),
    ('[grid]\nsolve_box = 24.0\nsolve_points_per_bohr = 28.3\n',
     r"grid: solve_points_per_bohr: solve_box \* solve_points_per_bohr = .* must be an integer"),
    ('[grid]\nsolve_points_per_bohr = -1.0\n', r"grid: solve_points_per_bohr: must be a number > 0"),
    ('[grid]\nsolve_box = "big"\n', r"grid.solve_box: expected float"),
    ('datasets = ["ions"]\n', r"datasets: unknown dataset 'ions'"),
    ('[grid]\nstencil = 4\n', r"grid: stencil: got 4"),
    ('[grid]\nbox = 10.0\npoints_per_bohr = 3.25\n', r"points_per_bohr: box \* points_per_bohr"),
    # issue 14: 7 points for a 13-point stencil were solved and 'done' with E2 of 23-37 Ha
    ('[grid]\nbox = 0.5\n', r"grid: box: box = 0.5 bohr .* 7 grid points .* fewer than the 13-point stencil"),
    ('[atoms]\ntrain_points = 1\n', r"atoms.train_points: must be >= 2"),
    ('datasets = "atoms"\n', r"datasets: expected a list"),
    ('datasets = [\n', r"not valid TOML"),
])
def test_bad_config_is_rejected_and_writes_nothing(tmp_path, text, match):
    f = _toml(tmp_path, 'kind = "solve1d"\n' + text)
    with pytest.raises(ConfigError, match=match):
        files.load(f)
    out = tmp_path / "out.h5"
    p = qpnn("run", f, "--out", out, check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob("out.h5*"))


def test_unknown_kind_names_the_valid_ones(tmp_path):
    f = _toml(tmp_path, 'kind = "cnn"\n')
    p = qpnn("run", f, "--out", tmp_path / "o.h5", check=False)
    assert p.returncode == 2 and "kind: unknown 'cnn'; valid kinds are: trial, solve1d" in p.stderr


@pytest.mark.parametrize("writer", WRITERS)
def test_one_and_two_ranks_match_the_solver(tmp_path, writer):
    """Identical arrays on 1 and 2 ranks, each row equal to solve_system of its spec, the file
    describes itself, resume is a no-op, and the dataset reads back in storage order."""
    needs_writer(writer)
    f = _toml(tmp_path, SMALL)
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    p1 = qpnn("run", f, "--out", one)
    assert "18 tasks, 18 to run" in p1.stdout
    p2 = qpnn("run", f, "--out", two, "--writer", writer, ranks=2)
    assert ("parallel HDF5" if writer == "mpio" else "rank-0 writer") in p2.stdout
    a, b = _arrays(one), _arrays(two)
    for k in a:
        if k not in ("tasks/rank", "tasks/finished", "results/wall_time"):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert (a["tasks/status"] == store.DONE).all() and set(a["tasks/rank"]) == {0}
    assert set(b["tasks/rank"]) <= {0, 1}
    camp = files.load(f)
    for i, spec in enumerate(camp.specs):
        assert a["tasks/id"][i].decode() == spec.spec_id()
        res = dataset1d.solve_system(spec)
        for k in dataset1d.RESULT_PROFILE_KEYS + dataset1d.RESULT_SCALAR_KEYS:  # another process: to rounding
            np.testing.assert_allclose(a[f"results/{k}"][i], res[k], rtol=1e-10, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(a["results/A"], a["results/E1"] - a["results/E2"], atol=1e-15)
    # each row states its accuracy: bound iff A exceeds the grid errors (measured: 4 unbound, the Z = 0.5 atoms
    # and Z = 0.875, alpha = 0.9125; Z = 0.875, alpha = 0.7375 is bound by a hair: A = 36.1 mHa, errors 36.0)
    errors = a["results/E1_grid_error"] + a["results/E2_grid_error"]
    np.testing.assert_array_equal(a["results/bound"], (a["results/A"] > errors).astype("i1"))
    assert a["results/bound"].dtype == np.int8 and a["results/bound"].sum() == 14
    assert (a["results/E1_grid_error"] > 0).all() and (a["results/E2_grid_error"] > 0).all()
    np.testing.assert_allclose(a["results/Eg"], a["results/E2"] - 2 * a["results/E1"], atol=1e-15)
    with h5py.File(one) as h:
        assert h.attrs["kind"] == "solve1d" and h.attrs["format"] == store.FORMAT
        assert h.attrs["gauge"] == "V -> 0 at infinity"
        versions = json.loads(h.attrs["versions"])  # what the solver uses, not torch (issue 13)
        assert "scipy" in versions and "numpy" in versions and "torch" not in versions
        assert not [k for k, v in h.attrs.items() if isinstance(v, str) and "\x00" in v]
        assert "Richardson" in h.attrs["grid_error"] and "16 points" not in h.attrs["grid_error"]
        assert "17 points" in h.attrs["grid_error"] and "(the stored grid)" in h.attrs["solve_grid"]
        assert "phi = sqrt(n2/2)" in h.attrs["kohn_sham"]
        assert h["results/bound"].attrs["description"].startswith("1 if A > E1_grid_error")
        assert h["results/v_xc"].attrs["units"] == "Hartree" and h["results/ks_x_max"].attrs["units"] == "bohr"
        assert h["results/n1"].attrs["description"].startswith("ground-state density")
        assert h["results/E1"].attrs["units"] == "Hartree"
    data = dataset1d.read(one, "molecules")
    np.testing.assert_array_equal(data["x"], camp.specs[0].grid())
    assert data["train"]["n1"].shape == (3, 25) and data["test"]["E1"].shape == (2,)
    np.testing.assert_array_equal(data["train"]["parameters"][:, 2], [2.0, 4.0, 6.0])
    assert data["train"]["v_xc"].shape == (3, 25) and data["train"]["bound"].shape == (3,)
    worst = data["accuracy"]["train"]
    assert worst["rows"] == 3 and worst["max_E2_grid_error"] == data["train"]["E2_grid_error"].max() > 0
    (tmp_path / "report").mkdir()
    md = write_report(one, store.read_table(one), tmp_path / "report").read_text()  # the worst case, per split
    assert "| atoms | train | 9 | 3 |" in md and "| atoms | test | 4 | 1 |" in md and "molecules_v_xc.png" in md
    # a second run resumes: nothing to run, nothing rewritten
    p = qpnn("run", f, "--out", one)
    assert "0 to run" in p.stdout
    np.testing.assert_array_equal(_arrays(one)["tasks/finished"], a["tasks/finished"])
    s = qpnn("status", one)
    assert "solve1d campaign 'small', 18 tasks: 0 pending, 18 done, 0 failed" in s.stdout


def test_file_of_another_config_is_refused_untouched(tmp_path):
    other = _toml(tmp_path, SMALL.replace("stencil = 7", "stencil = 5"), "other.toml")
    out = tmp_path / "out.h5"
    run_campaign(other, out, progress=False)
    before = out.read_bytes()
    p = qpnn("run", _toml(tmp_path, SMALL), "--out", out, check=False)
    assert p.returncode == 2 and "belongs to another campaign" in p.stderr
    assert out.read_bytes() == before


def test_read_refuses_other_files(tmp_path):
    trial = tmp_path / "trial.h5"
    run_campaign(ROOT / "jobs" / "tiny.toml", trial, progress=False)
    with pytest.raises(ConfigError, match=r"dataset: .* is a 'trial' results file, not a 1D dataset"):
        dataset1d.read(trial, "atoms")
    old = tmp_path / "old.h5"
    with h5py.File(old, "w") as h:  # a dataset file written before the one engine
        h.attrs["format"] = "qpnn_hpc.dataset1d/1"
        h.create_dataset("train/status", data=np.ones(3, dtype="i1"))
    for verb in (("status", old), ("report", old, "--out", tmp_path / "rep")):
        p = qpnn(*verb, check=False)
        assert p.returncode == 2 and "format qpnn_hpc.dataset1d/1" in p.stderr, p.stderr
        assert "qpnn-hpc run jobs/dataset1d.toml" in p.stderr and "Traceback" not in p.stderr


def _done(path):
    with h5py.File(path, "r") as f:
        return int((f["tasks/status"][:] != store.PENDING).sum())


@pytest.mark.parametrize("writer", WRITERS)
def test_kill_and_resume(tmp_path, writer):
    """SIGKILL of the whole 2-rank run mid-campaign, run again: every system done exactly once,
    rows finished before the kill kept as they were, the rest equal to the solver."""
    needs_writer(writer)
    f = _toml(tmp_path, SLOW)
    out = tmp_path / "molecules.h5"
    kill_mid_run(["run", f, "--out", out, "--quiet", "--writer", writer], lambda: _done(out))
    before = _arrays(out)  # readable after the kill
    done = before["tasks/status"] == store.DONE
    n_before = int(done.sum())
    assert 3 <= n_before < 59
    p = qpnn("run", f, "--out", out, "--writer", writer, ranks=2)
    assert f"59 tasks, {59 - n_before} to run" in p.stdout
    after = _arrays(out)
    assert (after["tasks/status"] == store.DONE).all()
    specs = files.load(f).specs
    assert [i.decode() for i in after["tasks/id"]] == [s.spec_id() for s in specs]
    for k in ("tasks/finished", "tasks/rank", "results/E1", "results/n2"):  # not run again
        np.testing.assert_array_equal(after[k][done], before[k][done])
    for i in np.flatnonzero(~done)[:3]:  # rows done after the kill equal a fresh solve
        res = dataset1d.solve_system(specs[i])
        for k in ("E1", "E2", "n1", "n2"):
            np.testing.assert_allclose(after[f"results/{k}"][i], res[k], rtol=1e-10, atol=1e-12)


def test_submit_local_and_array_merge_equal_one_rank_run(tmp_path):
    """The dataset through `submit --executor local` and through a 2-shard array + merge:
    every array of the file identical to a 1-rank `qpnn-hpc run` (times and ranks aside)."""
    f = _toml(tmp_path, SMALL)
    ref = tmp_path / "ref.h5"
    qpnn("run", f, "--out", ref, "--quiet")
    local = tmp_path / "local.h5"
    p = qpnn("submit", f, "--out", local, "--executor", "local", "--time", "5", timeout=300)
    assert "finished" in p.stdout
    arr = tmp_path / "arr.h5"
    qpnn("submit", f, "--out", arr, "--executor", "local", "--array", "2", "--time", "5", timeout=300)
    shards = sorted(tmp_path.glob("arr.shard*-of-2.h5"))
    assert len(shards) == 2
    qpnn("merge", *shards, "--out", arr)
    a = _arrays(ref)
    for other in (local, arr):
        b = _arrays(other)
        assert set(a) == set(b)
        for k in a:
            if k not in ("tasks/finished", "results/wall_time", "tasks/rank"):
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{other.name}: {k}")


def test_worst_grid_errors_are_root_attributes_after_a_run_and_a_merge(tmp_path):
    """Issue 13: root attributes state the measured worst case over the done rows (NaN at
    creation, written when the run or the merge ends): the maxima of the rows' columns."""
    f = _toml(tmp_path, SMALL)
    out = tmp_path / "d.h5"
    run_campaign(f, out, progress=False)
    with h5py.File(out, "r") as h:
        attrs = {k: h.attrs[k] for k in solve1d.SUMMARY}
        e1, e2, bound = (h[f"results/{k}"][:] for k in ("E1_grid_error", "E2_grid_error", "bound"))
    assert attrs["max_E1_grid_error"] == e1.max() > 0 and attrs["max_E2_grid_error"] == e2.max()
    assert attrs["max_E2_grid_error_bound"] == e2[bound == 1].max()
    assert attrs["unbound_rows"] == (bound == 0).sum() > 0
    camp = files.load(f)
    for k in (0, 1):  # two shards (as an array's jobs), merged
        run_campaign(f, tmp_path / f"s{k}.h5", progress=False, tasks=solve1d_shard(camp, k))
    with h5py.File(tmp_path / "s0.h5", "r") as h:  # a shard: the worst case of its own rows
        assert h.attrs["max_E1_grid_error"] <= attrs["max_E1_grid_error"]
    qpnn("merge", tmp_path / "s0.h5", tmp_path / "s1.h5", "--out", tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as h:
        assert {k: h.attrs[k] for k in solve1d.SUMMARY} == attrs


def solve1d_shard(camp, k):
    from qpnn_hpc.campaigns.shards import shard_tasks
    return shard_tasks(camp, k, 2)
