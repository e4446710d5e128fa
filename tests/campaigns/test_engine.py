"""Campaign files, the HDF5 results file, real 2-rank mpiexec runs, kill and resume."""

import h5py
import numpy as np
import pytest

from qpnn_hpc.campaigns import files as campaign
from qpnn_hpc.campaigns import store as results
from qpnn_hpc.config import ConfigError
from qpnn_hpc.campaigns.engine import work_units

from tests.conftest import ROOT, WRITERS, kill_mid_run, needs_writer, qpnn

TINY = ROOT / "jobs" / "tiny.toml"


def test_expand_tiny_campaign():
    c = campaign.load(TINY)
    assert len(c.specs) == 2 * 3 * 2
    assert len({s.id for s in c.specs}) == len(c.specs)
    assert [s.seed for s in c.specs[:2]] == [0, 1]
    assert campaign.load(TINY).hash == c.hash


def test_grid_expands_and_work_units_batch_seeds(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text(TINY.read_text() + '\n[grid]\n"train.lr" = [1e-3, 3e-3]\n"loss.anchor_weight" = [1.0, 10.0]\n')
    c = campaign.load(f)
    assert len(c.specs) == 2 * 3 * 4 * 2
    assert {s.train.lr for s in c.specs} == {1e-3, 3e-3}
    units = work_units(c.plugin, c.specs, np.zeros(len(c.specs)), batch=2)
    assert len(units) == len(c.specs) // 2
    assert all(c.specs[u[0]].seed == 0 and c.specs[u[1]].seed == 1 for u in units)


def test_overrides_and_grid_change_a_preset_field_by_field(tmp_path):
    """model = "seed001" then a grid over model.widths: the preset's other fields stay."""
    from qpnn_hpc.inverse.models import SEED001
    f = tmp_path / "p.toml"
    f.write_text('name = "p"\nmethods = ["mpnn"]\n[defaults]\nmodel = "seed001"\n'
                 '[[systems]]\nname = "hydrogen"\noverrides = { model = { residual = false } }\n'
                 '[grid]\n"model.widths" = [[8, 8]]\n')
    (s,) = campaign.load(f).specs
    assert s.model.widths == (8, 8) and not s.model.residual
    assert s.model.init_scale == SEED001.init_scale and s.model.activation == SEED001.activation


def test_grid_value_that_is_a_table_changes_only_its_fields(tmp_path):
    """Issue 14: `train = [{epochs = 10}, ...]` replaced the whole [defaults.train] (lr fell
    back to TrainConfig's 1e-3); a table value now changes the fields it names."""
    f = tmp_path / "t.toml"
    f.write_text(TINY.read_text().replace("[[systems]]", "[grid]\ntrain = [{epochs = 10}, {epochs = 12}]\n\n"
                                                         "[[systems]]", 1))
    specs = campaign.load(f).specs
    assert {s.train.epochs for s in specs} == {10, 12}
    assert {s.train.lr for s in specs} == {3e-3} and {s.train.points for s in specs} == {200}


@pytest.mark.parametrize("text,match", [
    ('colour = "red"\n', "unknown key.*colour.*valid keys.*defaults"),
    ('trials = "three"\n', "trials: expected an integer"),
    ('[grid]\n"train.lr" = []\n', "grid.train.lr: empty list"),
    ('[grid]\n"train.learning_rate" = [1e-3]\n', "train.learning_rate.*valid keys"),
    ('[defaults.train]\nepochs = -1\n', "train.epochs: must be > 0"),
    ('[defaults.loss]\nanchor_weight = inf\n', r"loss.anchor_weight: got inf; give a finite number"),
    ('[defaults]\nseed = 7\n', r"defaults.seed: set by the campaign; use trials = N"),
    ('[defaults]\nmethod = "qpnn"\n', r"defaults.method: set by the campaign; use methods"),
    ('[grid]\n"seed" = [1, 2]\n', r"grid.seed: set by the campaign; use trials = N"),
])
def test_bad_campaign_file_is_rejected(tmp_path, text, match):
    base = 'name = "bad"\nmethods = ["mpnn"]\n'
    sys_table = '\n[[systems]]\nname = "hydrogen"\n'
    body = (base + text + sys_table) if not text.startswith("[") else (base + sys_table + text)
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(ConfigError, match=match):
        campaign.load(f)
    out = tmp_path / "r.h5"
    p = qpnn("run", f, "--out", out, check=False)
    assert p.returncode == 2 and "error" in p.stderr and "Traceback" not in p.stderr
    assert not out.exists() and not list(tmp_path.glob("r.h5*"))


def test_out_in_a_file_is_refused_on_every_rank(tmp_path):
    (tmp_path / "afile").write_text("")
    p = qpnn("run", TINY, "--out", tmp_path / "afile" / "r.h5", ranks=2, check=False, timeout=120)
    assert p.returncode == 2 and "--out: folder" in p.stderr and "not a folder" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_unexpected_error_on_one_rank_aborts_all(tmp_path):
    """An error that is not bad input, on rank 1 only, while rank 0 waits in a collective
    call: qpnn-hpc prints it and aborts every rank instead of hanging (the fault is injected:
    a full disk cannot be had here)."""
    import subprocess
    import sys
    from tests.conftest import mpi_env, mpiexec
    script = tmp_path / "fault.py"
    script.write_text(
        "import sys\nfrom mpi4py import MPI\nfrom qpnn_hpc import cli\n"
        "def run(args):\n"
        "    if MPI.COMM_WORLD.Get_rank() == 1:\n"
        "        raise OSError('disk quota exceeded (injected)')\n"
        "    MPI.COMM_WORLD.barrier()\n"
        "    return 0\n"
        "cli._run = run\n"
        "sys.exit(cli.main(['run', 'c.toml', '--out', 'r.h5']))\n")
    p = subprocess.run([mpiexec(), "-n", "2", "--oversubscribe", sys.executable, str(script)], capture_output=True,
                       text=True, timeout=120, env=mpi_env(), cwd=ROOT)
    assert p.returncode != 0
    assert "rank 1: unexpected error, aborting all ranks" in p.stderr and "disk quota exceeded" in p.stderr


def test_long_failure_reason_is_cut_on_a_character(tmp_path):
    """reason holds 255 bytes: a multi-byte character across the cut is dropped whole, so
    the file stays readable (status, report)."""
    c = campaign.load(TINY)
    out = tmp_path / "r.h5"
    results.create(out, c)
    reason = "x" * 254 + "\u2013 a dash across byte 255"
    w = results.Writer(out)
    w.write(0, {"status": "failed", "reason": reason}, 0, 0.0)
    w.close()
    t = results.read_table(out)
    assert t["reason"][0] == "x" * 254 and t["status"][0] == results.FAILED


def test_output_of_another_campaign_is_refused(tmp_path):
    other = tmp_path / "other.toml"
    other.write_text(TINY.read_text().replace("trials = 2", "trials = 1"))
    out = tmp_path / "r.h5"
    results.create(out, campaign.load(other))
    before = out.read_bytes()
    p = qpnn("run", TINY, "--out", out, check=False)
    assert p.returncode == 2 and "belongs to another campaign" in p.stderr
    assert out.read_bytes() == before


def test_results_file_describes_itself(tmp_path):
    out = tmp_path / "r.h5"
    qpnn("run", TINY, "--out", out, "--quiet")
    t = results.read_table(out)
    assert (t["status"] == results.DONE).all()
    assert t["campaign_name"] == "tiny" and "torch" in t["versions"] and "Hartree" in t["units"]
    with h5py.File(out) as f:
        assert f["results/energy"].attrs["units"] == "Hartree"
    # exact energies of the systems and sane estimates
    np.testing.assert_allclose(t["energy_exact"], np.where(t["system"] == "hydrogen", -0.5, 0.5))
    assert np.all(np.isfinite(t["energy"])) and np.all(np.isfinite(t["rhat"]))
    # a second run resumes: nothing pending, nothing recomputed
    finished = t["finished"].copy()
    p = qpnn("run", TINY, "--out", out)
    assert "0 to run" in p.stdout
    np.testing.assert_array_equal(results.read_table(out)["finished"], finished)
    s = qpnn("status", out)
    assert "12 done" in s.stdout and "0 pending" in s.stdout
    rep = tmp_path / "report"
    qpnn("report", out, "--out", rep)
    md = (rep / "report.md").read_text()
    assert "| hydrogen / mpnn" in md and md.count("| 2 | 0 | 0 |") == 6
    assert len(list(rep.glob("*.png"))) == 6


@pytest.mark.parametrize("writer", WRITERS)
def test_two_ranks_give_the_same_numbers_as_one(tmp_path, writer):
    needs_writer(writer)
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    qpnn("run", TINY, "--out", one, "--quiet")
    qpnn("run", TINY, "--out", two, "--quiet", "--writer", writer, ranks=2)
    a, b = results.read_table(one), results.read_table(two)
    assert (b["status"] == results.DONE).all()
    assert set(b["rank"]) == {0, 1}  # both ranks worked
    assert list(a["id"]) == list(b["id"])
    for key in ("energy", "eps", "loss_curve", "potential", "energy_err", "rhat"):
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("victim", ["one-rank", "all"])
def test_kill_and_resume(tmp_path, writer, victim):
    """SIGKILL mid-campaign, run again: every task done exactly once, finished rows kept."""
    needs_writer(writer)
    out = tmp_path / "r.h5"

    def rows_done():
        with h5py.File(out, "r") as f:
            return int((f["tasks/status"][:] != 0).sum())

    kill_mid_run(["run", TINY, "--out", out, "--quiet", "--writer", writer], rows_done, victim=victim)
    before = results.read_table(out)  # readable after the kill
    done_before = before["status"] != results.PENDING
    assert 3 <= done_before.sum() < len(done_before)
    qpnn("run", TINY, "--out", out, "--quiet", "--writer", writer, ranks=2)
    after = results.read_table(out)
    assert (after["status"] == results.DONE).all()
    # rows finished before the kill were not run again
    np.testing.assert_array_equal(after["finished"][done_before], before["finished"][done_before])
    np.testing.assert_array_equal(after["energy"][done_before], before["energy"][done_before])
    # and the resumed rows equal an uninterrupted run
    ref = tmp_path / "ref.h5"
    qpnn("run", TINY, "--out", ref, "--quiet")
    np.testing.assert_array_equal(results.read_table(ref)["energy"], after["energy"])


def test_chains_of_one_task_spread_over_ranks(tmp_path):
    """--chains-over-ranks: 2 ranks share each task's evaluation chain blocks; one energy,
    error bar and R-hat from all chains, identical to the 1-process run."""
    f = tmp_path / "blocks.toml"
    f.write_text(TINY.read_text().replace('trials = 2', 'trials = 1').replace(
        'grid_points = 21 }', 'grid_points = 21, chain_blocks = 3 }'))
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    qpnn("run", f, "--out", one, "--quiet")
    qpnn("run", f, "--out", two, "--quiet", "--chains-over-ranks", ranks=2)
    a, b = results.read_table(one), results.read_table(two)
    assert (b["status"] == results.DONE).all()
    for key in ("energy_metropolis", "energy_err", "rhat", "acceptance", "energy", "potential"):
        np.testing.assert_array_equal(a[key], b[key])
    assert np.all(b["energy_err"] > 0)


@pytest.mark.parametrize("fault", ["training on rank 0", "evaluation on rank 1"])
def test_chains_over_ranks_survive_a_failed_unit(tmp_path, fault):
    """--chains-over-ranks: a unit that raises on one rank (injected: in rank 0's training,
    or in rank 1's share of the evaluation chains) is recorded failed, and the ranks stay in
    step for the next units instead of hanging or mixing units."""
    import subprocess
    import sys
    from tests.conftest import mpi_env, mpiexec
    f = tmp_path / "blocks.toml"
    f.write_text(TINY.read_text().replace('trials = 2', 'trials = 1').replace(
        'grid_points = 21 }', 'grid_points = 21, chain_blocks = 3 }'))
    out = tmp_path / "r.h5"
    where, rank = ("inverse.trial", 0) if fault.startswith("training") else ("inverse.chains", 1)
    target = "fit" if where == "inverse.trial" else "block_stats"
    script = tmp_path / "fault.py"
    script.write_text(
        "import sys\nfrom mpi4py import MPI\n"
        f"import qpnn_hpc.{where} as mod\nfrom qpnn_hpc.campaigns.engine import run_campaign\n"
        f"real, calls = mod.{target}, []\n"
        "def faulty(*a, **k):\n"
        "    calls.append(1)\n"
        f"    if MPI.COMM_WORLD.Get_rank() == {rank} and len(calls) == 1:\n"
        "        raise OSError('injected fault')\n"
        "    return real(*a, **k)\n"
        f"mod.{target} = faulty\n"
        f"run_campaign({str(f)!r}, {str(out)!r}, progress=False, writer='rank0', chains_over_ranks=True)\n")
    p = subprocess.run([mpiexec(), "-n", "2", "--oversubscribe", sys.executable, str(script)], capture_output=True,
                       text=True, timeout=240, env=mpi_env(), cwd=ROOT)
    assert p.returncode == 0, p.stderr
    t = results.read_table(out)
    failed = t["status"] == results.FAILED
    assert failed.sum() == 1 and (t["status"][~failed] == results.DONE).all()
    assert "injected fault" in t["reason"][failed][0]

