"""The 1D datasets as an MPI campaign: config, file identity, 1 vs 2 ranks, kill and resume."""

import h5py
import numpy as np
import pytest

from qpnn_hpc import dataset1d
from qpnn_hpc import dataset_campaign as dc
from qpnn_hpc.config import ConfigError

from .conftest import ROOT, WRITERS, kill_mid_run, needs_writer, qpnn

JOB = ROOT / "jobs" / "dataset1d.toml"
# A coarse grid and 3 x 3 / 3 training points: 13 atoms and 5 molecules, well under a second to solve.
SMALL = """
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
datasets = ["molecules"]
[molecules]
train_points = 30
"""


def _same(a, b, msg):
    if np.asarray(a).dtype.kind == "f":
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=msg)
    else:
        np.testing.assert_array_equal(a, b, err_msg=msg)


def _toml(tmp_path, text, name="ds.toml"):
    f = tmp_path / name
    f.write_text(text)
    return f


def _read(path):
    with h5py.File(path, "r") as f:
        out = {k: f.attrs[k] for k in f.attrs}
        out["x"] = f["x"][:]
        for split in dc.SPLITS:
            out[split] = {k: d[...] for k, d in f[split].items()}
    return out


def test_job_file_is_seed_002():
    c = dc.load(JOB)
    assert c == dc.DatasetCampaignConfig()  # the file spells out the defaults
    assert c.datasets == dataset1d.KINDS == dc.KINDS and dc.SPLITS == dataset1d.SPLITS
    assert (c.grid.box, c.grid.points_per_bohr, c.grid.stencil) == (
        dataset1d.DEFAULT_BOX, dataset1d.DEFAULT_POINTS_PER_BOHR, dataset1d.DEFAULT_STENCIL)
    assert c.atoms.train_points == dataset1d.ATOM_TRAIN_POINTS == 10
    assert c.molecules.train_points == dataset1d.MOLECULE_TRAIN_POINTS == 50
    counts = {p.kind: [len(p.specs[s]) for s in dc.SPLITS] for p in dc.plan(c, "out")}
    assert counts == {"atoms": [100, 81], "molecules": [50, 49]}
    for p in dc.plan(c, "out"):
        for s in dc.SPLITS:
            assert p.specs[s] == dataset1d.dataset_specs(p.kind, s)


@pytest.mark.parametrize("text,match", [
    ('colour = "red"\n', r"unknown key.*colour.*valid keys.*atoms, datasets, grid, molecules"),
    ('[grid]\nspacing = 0.1\n', r"grid.spacing.*valid keys.*box, points_per_bohr, stencil"),
    ('datasets = ["ions"]\n', r"datasets: unknown dataset 'ions'"),
    ('[grid]\nstencil = 4\n', r"grid: stencil: got 4"),
    ('[grid]\nbox = 10.0\npoints_per_bohr = 3.25\n', r"points_per_bohr: box \* points_per_bohr"),
    ('[atoms]\ntrain_points = 1\n', r"atoms.train_points: must be >= 2"),
    ('datasets = "atoms"\n', r"datasets: expected a list"),
    ('datasets = [\n', r"not valid TOML"),
])
def test_bad_config_is_rejected_and_writes_nothing(tmp_path, text, match):
    f = _toml(tmp_path, text)
    with pytest.raises(ConfigError, match=match):
        dc.load(f)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=match):
        dc.run_dataset_campaign(f, out)
    assert not out.exists()


def test_bad_config_from_the_command_line(tmp_path):
    f = _toml(tmp_path, '[molecules]\ntrain_points = 50\nr_max = 8.0\n')
    out = tmp_path / "out"
    p = qpnn("dataset", f, "--out", out, check=False)
    assert p.returncode == 2 and "molecules.r_max" in p.stderr and "train_points" in p.stderr
    assert "Traceback" not in p.stderr and not out.exists()


@pytest.mark.parametrize("writer", WRITERS)
def test_one_and_two_ranks_match_the_serial_writer(tmp_path, writer):
    """Same content as dataset1d.write_dataset, identical arrays on 1 and 2 ranks, resume is a no-op."""
    needs_writer(writer)
    f = _toml(tmp_path, SMALL)
    one, two = tmp_path / "one", tmp_path / "two"
    p1 = qpnn("dataset", f, "--out", one)
    assert "18 systems, 18 to solve" in p1.stdout
    p2 = qpnn("dataset", f, "--out", two, "--writer", writer, ranks=2)
    assert ("parallel HDF5" if writer == "mpio" else "rank-0 writer") in p2.stdout
    for kind in dc.KINDS:
        ref = dataset1d.write_dataset(tmp_path / f"serial_{kind}.h5", kind, box=8.0, points_per_bohr=3.0,
                                      stencil=7, train_points=3)
        a, b, s = _read(one / f"{kind}.h5"), _read(two / f"{kind}.h5"), _read(ref)
        assert a["config_hash"] == b["config_hash"] and "torch" in a["versions"]
        assert a["gauge"] == "V -> 0 at infinity"
        for k in s:  # every attribute and array of the serial file, the same
            if k not in dc.SPLITS:
                np.testing.assert_array_equal(a[k], s[k], err_msg=k)
        for split in dc.SPLITS:
            specs = dataset1d.dataset_specs(kind, split, 8.0, 3.0, 7, 3)
            ids = [x.spec_id().encode() for x in specs]
            for run in (a, b):
                assert list(run[split]["spec_id"]) == ids  # every system present, once, in order
                assert (run[split]["status"] == dc.DONE).all()
            for k in s[split]:
                # 1 and 2 ranks (same environment): bit for bit; the serial writer in this
                # process (BLAS threads may differ): to rounding
                np.testing.assert_array_equal(a[split][k], b[split][k], err_msg=f"{kind}/{split}/{k}")
                _same(a[split][k], s[split][k], f"{kind}/{split}/{k}")
            assert set(a[split]["rank"]) == {0}
        assert set(np.concatenate([b[s]["rank"] for s in dc.SPLITS])) <= {0, 1}
    with h5py.File(two / "atoms.h5") as h:
        assert h["train/n1"].attrs["description"].startswith("ground-state density")
        assert h["train/parameters"].attrs["columns"] == "Z,alpha,r"
    # a second run resumes: nothing to solve, nothing rewritten
    finished = _read(one / "atoms.h5")["train"]["finished"]
    p = qpnn("dataset", f, "--out", one)
    assert "0 to solve" in p.stdout
    np.testing.assert_array_equal(_read(one / "atoms.h5")["train"]["finished"], finished)


def test_file_of_another_config_is_refused_untouched(tmp_path):
    other = _toml(tmp_path, SMALL.replace("stencil = 7", "stencil = 5"), "other.toml")
    out = tmp_path / "out"
    dc.run_dataset_campaign(other, out, progress=False)
    (out / "atoms.h5").unlink()  # molecules.h5 of the other config stays
    before = (out / "molecules.h5").read_bytes()
    p = qpnn("dataset", _toml(tmp_path, SMALL), "--out", out, check=False)
    assert p.returncode == 2 and "molecules.h5" in p.stderr and "belongs to another configuration" in p.stderr
    assert (out / "molecules.h5").read_bytes() == before
    assert not (out / "atoms.h5").exists()  # checked before anything is created
    (out / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ConfigError, match="not a readable HDF5 file"):
        dc.check_belongs(dc.DatasetPlan("atoms", {}, {}, out / "junk.h5"))


def _done(path):
    with h5py.File(path, "r") as f:
        return sum(int((f[f"{s}/status"][:] != dc.PENDING).sum()) for s in dc.SPLITS)


@pytest.mark.parametrize("writer", WRITERS)
def test_kill_and_resume(tmp_path, writer):
    """SIGKILL of the whole 2-rank run mid-campaign, run again: every system done exactly once,
    rows finished before the kill kept as they were, the rest equal to the serial solver."""
    needs_writer(writer)
    f = _toml(tmp_path, SLOW)
    out_dir = tmp_path / "out"
    out = out_dir / "molecules.h5"
    kill_mid_run(["dataset", f, "--out", out_dir, "--quiet", "--writer", writer], lambda: _done(out))
    before = _read(out)  # readable after the kill
    done_before = {s: before[s]["status"] == dc.DONE for s in dc.SPLITS}
    n_before = sum(int(d.sum()) for d in done_before.values())
    assert 3 <= n_before < 59
    p = qpnn("dataset", f, "--out", out_dir, "--writer", writer, ranks=2)
    assert f"59 systems, {59 - n_before} to solve" in p.stdout
    after = _read(out)
    for s in dc.SPLITS:
        assert (after[s]["status"] == dc.DONE).all()
        specs = dataset1d.dataset_specs("molecules", s, train_points=30)
        assert list(after[s]["spec_id"]) == [x.spec_id().encode() for x in specs]
        d = done_before[s]
        for k in ("finished", "rank", "E1", "n2"):  # not run again
            np.testing.assert_array_equal(after[s][k][d], before[s][k][d])
        # every row equals a fresh solve (spot check a few rows done after the kill)
        for i in np.flatnonzero(~d)[:3]:
            res = dataset1d.solve_system(specs[i])
            for k in ("E1", "E2", "n1", "n2"):
                _same(after[s][k][i], res[k], k)
