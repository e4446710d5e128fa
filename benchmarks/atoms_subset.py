"""jobs/atoms.toml restricted to some atoms, optionally with another budget or graft: the
variants the campaign's comments quote, each a command.

    python benchmarks/atoms_subset.py --atoms ne --epochs 3000 --out results/ne_3000.h5
    python benchmarks/atoms_subset.py --atoms ne --r-match 1.32 --out results/ne_switch132.h5
    python benchmarks/atoms_subset.py --atoms li --out results/li_check.h5

The campaign is jobs/atoms.toml's [defaults] and its systems of --atoms (both gauges), with
train.epochs = --epochs if given. With --r-match the atom's tables are regrafted from their
raw columns at that radius (`make_densities.py --regraft --r-match`) into a scratch folder
laid out as the repository (qpnn_hpc/data/...), and the campaign runs there: the system's
file name, hence every task id and random stream, is the shipped campaign's, so only the table
differs. Runs `mpiexec -n --ranks qpnn-hpc run ... --batch 10`, then prints per system the mean,
RMSE and max |error| of eq. 10 and of eq. 8 (mHa) and the rows with warnings; with --compare,
how many rows (by task id) have the same energy and potential, bit for bit, as in that file.

Measured (2026-11-30, 2 CPU ranks, 1 thread each; mean eq. 10 error, energy / ionisation, mHa), on
the C2-switched tables of commit c08185f (Ne at 1.3 bohr; the C4 tables since: the campaign's
comments in jobs/atoms.toml):
  --atoms ne (the campaign's Ne)           +3.01 / +2.07   (662 s)
  --atoms ne --epochs 3000                 +2.16 / +2.43   (1316 s)
  --atoms ne --r-match 1.32                +2.64 / +1.92   (663 s; v_eff's slope continuous there)
  --atoms li --compare results/atoms.h5    19 of 20 rows bitwise equal, one 2.4e-6 Ha apart (227 s;
                                           the Li tables' rho' was mended after that campaign ran)
On the C4-grafted tables (the series of qpnn_hpc/atoms/tail.py; the shipped Ne switch 0.98 bohr):
  --atoms ne --r-match 1.0                 -0.26 / -0.23   (696 s; the campaign's 0.98: +0.16 / +0.52)
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def campaign_text(atoms, epochs) -> str:
    text = (ROOT / "jobs" / "atoms.toml").read_text()
    head, *blocks = re.split(r"^\[\[systems\]\]\n", text, flags=re.M)
    keep = []
    for b in blocks:
        body = b.split("\n\n")[0]                      # the block, without the comments after it
        if any(f'file = "qpnn_hpc/data/{a}_' in body for a in atoms):
            if epochs is not None:
                body = re.sub(r"^overrides = .*$", "", body, flags=re.M).rstrip("\n")
                body += f"\noverrides = {{ train = {{ epochs = {epochs} }} }}"
            keep.append("[[systems]]\n" + body.rstrip("\n") + "\n")
    if not keep:
        sys.exit(f"atoms_subset.py: jobs/atoms.toml has no system of {atoms}")
    return head.replace('name = "atoms"', 'name = "atoms_subset"') + "\n".join(keep)


def regraft(atoms, r_match, where: Path):
    sys.path.insert(0, str(ROOT / "jobs" / "atoms"))
    import make_densities as md
    data = where / "qpnn_hpc" / "data"
    data.mkdir(parents=True)
    for a in atoms:
        for g in ("ionisation", "energy"):
            (data / f"{a}_{g}.npz").write_bytes((ROOT / "qpnn_hpc" / "data" / f"{a}_{g}.npz").read_bytes())
        md.regraft(a, data, dict(md.RECIPES[a], r_match=r_match))


def summary(path):
    from qpnn_hpc.campaigns import store as results
    t = results.read_table(path)
    files = np.array([s["system"]["file"].split("/")[-1][:-4] for s in t["spec"]])
    for name in sorted(set(files)):
        m = files == name
        e = 1e3 * (t["energy"][m] - t["energy_exact"][m])
        em = 1e3 * (t["energy_metropolis"][m] - t["energy_exact"][m])
        warned = int(sum(bool(w) for w in np.asarray(t["warnings"])[m]))
        print(f"{name:16} n = {m.sum():2}: eq. 10 mean {e.mean():+6.2f} rmse {np.sqrt((e ** 2).mean()):5.2f} "
              f"max {np.abs(e).max():5.2f}; eq. 8 mean {em.mean():+6.2f}; warned {warned}")


def compare(path, other):
    from qpnn_hpc.campaigns import store as results
    a, b = results.read_table(path), results.read_table(other)
    where = {t: i for i, t in enumerate(b["id"])}
    pairs = [(i, where[t]) for i, t in enumerate(a["id"]) if t in where]
    same = sum(a["energy"][i] == b["energy"][j] and np.array_equal(a["potential"][i], b["potential"][j])
               for i, j in pairs)
    diff = max((abs(a["energy"][i] - b["energy"][j]) for i, j in pairs), default=float("nan"))
    print(f"against {other}: {len(pairs)} rows by task id, {same} with the same energy and potential bit for bit; "
          f"max |energy difference| {diff:.2g} Ha")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--atoms", nargs="+", required=True, choices=["li", "be", "ne"])
    ap.add_argument("--epochs", type=int, default=None, help="train.epochs of every system (default: the campaign's)")
    ap.add_argument("--r-match", type=float, default=None, help="regraft the atoms' tables at this radius (bohr)")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--out", required=True, help="results file (resumed if it exists)")
    ap.add_argument("--compare", default=None, help="a results file with rows of the same tasks (e.g. the campaign's)")
    a = ap.parse_args()
    out = Path(a.out).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp) if a.r_match is not None else ROOT
        if a.r_match is not None:
            regraft(a.atoms, a.r_match, where)
        camp = Path(tmp) / "atoms_subset.toml"
        camp.write_text(campaign_text(a.atoms, a.epochs))
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_osc="^ucx",
                   OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        bin_ = Path(sys.executable).parent
        subprocess.run([str(bin_ / "mpiexec"), "-n", str(a.ranks), str(bin_ / "qpnn-hpc"), "run", str(camp),
                        "--out", str(out), "--batch", "10"], cwd=where, env=env, check=True)
    summary(out)
    if a.compare:
        compare(out, a.compare)


if __name__ == "__main__":
    main()
