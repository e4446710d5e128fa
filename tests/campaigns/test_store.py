"""qpnn_hpc.campaigns.store and files: layout of every kind, refusals, pinned task ids, and
results files written before the one engine (format qpnn_hpc.results/1)."""
import shutil

import h5py
import numpy as np
import pytest

from qpnn_hpc.campaigns import files, kinds, shards, store
from qpnn_hpc.config import ConfigError

from tests.conftest import ROOT, qpnn

V1 = ROOT / "tests" / "campaigns" / "data" / "results_v1_tiny.h5"  # jobs/tiny.toml, written by 19fb4d8


@pytest.mark.parametrize("job,n,campaign_hash,first,last", [
    ("demo", 18, "015a4f8740605117", "b066324476ca53cd", "42812459a2f023aa"),  # demo.toml changed (issue 12)
    ("tiny", 12, "418bbe900f410f40", "861c82be3c54e67e", "7e3079af937bd8f2"),
    ("mpnn_table1", 60, "7cf5af3eb3c9affe", "6f5c65ae35829ace", "d50a592b8902e38e"),  # issue 12: hydrogen ln|x|, 4000 epochs, lr 3e-3
    ("atoms", 60, "b6669d22d4b54cbc", "b178f2be9dcf6d4e", "3ecd4e63d5ec0665"),  # issue 12: Ne at its table anchor, one start
])
def test_task_ids_of_the_campaign_files_are_unchanged(job, n, campaign_hash, first, last, monkeypatch):
    """Pinned from the code before the one engine (19fb4d8): the same ids, so results files
    written then still belong to these campaigns and resume."""
    monkeypatch.chdir(ROOT)  # atom table paths are relative to the repository root
    c = files.load(ROOT / "jobs" / f"{job}.toml")
    assert c.kind == "trial" and len(c.specs) == n and c.hash == campaign_hash
    assert (files.task_id(c.specs[0]), files.task_id(c.specs[-1])) == (first, last)


def test_every_registered_kind_loads_and_describes_its_columns():
    for name in kinds.REGISTRY:
        k = kinds.get(name)
        assert k.name == name and callable(k.run) and callable(k.columns)
    with pytest.raises(ConfigError, match="kind: unknown 'x'; valid kinds are: trial, solve1d"):
        kinds.get("x")


def test_layout_of_a_new_file(tmp_path):
    c = files.load(ROOT / "jobs" / "tiny.toml")
    out = tmp_path / "r.h5"
    store.create(out, c)
    with h5py.File(out) as f:
        assert f.attrs["format"] == store.FORMAT and f.attrs["kind"] == "trial"
        assert f.attrs["campaign_hash"] == c.hash and f.attrs["n_tasks"] == 12
        assert set(f["tasks"]) == {"id", "spec", "status", "reason", "rank", "finished", "system", "method"}
        assert f["results/energy"].attrs["units"] == "Hartree" and f["results/wall_time"].attrs["units"] == "s"
        assert f["results/loss_curve"].shape == (12, max(s.train.epochs for s in c.specs))
        assert (f["tasks/status"][:] == store.PENDING).all() and np.isnan(f["results/energy"][:]).all()
    w = store.Writer(out)
    w.write(3, {"status": "done", "reason": "", "energy": -0.5, "loss_curve": np.ones(4)}, rank=1, wall_time=2.0)
    w.close()
    t = store.read_table(out)
    assert t["status"][3] == store.DONE and t["energy"][3] == -0.5 and t["rank"][3] == 1
    assert t["loss_curve"][3, :4].tolist() == [1.0] * 4 and np.isnan(t["loss_curve"][3, 4:]).all()
    assert t["wall_time"][3] == 2.0 and t["system"][3] in ("harmonic_oscillator", "hydrogen")


@pytest.mark.parametrize("content", [b"", b"not hdf5 at all", None])
def test_files_that_are_not_results_are_refused_in_one_line(tmp_path, content):
    path = tmp_path / "x.h5"
    if content is None:
        with h5py.File(path, "w") as f:
            f["a"] = 1
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match="results: .*(not a readable HDF5 file|not a qpnn_hpc results file)"):
        store.read_table(path)


def test_results_file_of_format_1_is_read_merged_and_resumed(tmp_path):
    """A trial results file written before the one engine: status, report and merge read it,
    and a run of the same campaign resumes it (three rows made pending again here)."""
    s = qpnn("status", V1)
    assert "trial campaign 'tiny', 12 tasks: 0 pending, 12 done" in s.stdout
    qpnn("report", V1, "--out", tmp_path / "rep")
    assert "| hydrogen / mpnn" in (tmp_path / "rep" / "report.md").read_text()
    old = tmp_path / "old.h5"
    shutil.copy(V1, old)
    with h5py.File(old, "r+") as f:
        f["tasks/status"][[1, 5, 9]] = store.PENDING
        before = {k: f[k][...] for k in ("tasks/finished", "results/energy")}
    p = qpnn("run", ROOT / "jobs" / "tiny.toml", "--out", old)
    assert "12 tasks, 3 to run" in p.stdout
    t = store.read_table(old)
    assert (t["status"] == store.DONE).all() and t["format"] == "qpnn_hpc.results/1"
    keep = np.ones(12, bool)
    keep[[1, 5, 9]] = False
    np.testing.assert_array_equal(t["finished"][keep], before["tasks/finished"][keep])
    np.testing.assert_array_equal(t["energy"][keep], before["results/energy"][keep])
    assert np.all(t["finished"][~keep] > before["tasks/finished"][~keep])
    # merge: the v1 file with a shard written now
    merged = tmp_path / "m.h5"
    assert shards.merge([V1], merged)["done"] == 12
