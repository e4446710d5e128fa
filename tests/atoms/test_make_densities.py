"""jobs/atoms/make_densities.py: any atom with PySCF (optional), through `qpnn-hpc density`."""
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qpnn_hpc.atoms import densities as atoms

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "jobs/atoms/make_densities.py"
HAS_PYSCF = importlib.util.find_spec("pyscf") is not None


def script():
    spec = importlib.util.spec_from_file_location("make_densities", SCRIPT)
    md = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(md)
    return md


def test_ground_state_spins():
    """2S of the ground state by aufbau and Hund's rule: H 2S, He 1S, B 2P, C 3P, N 4S, O 3P,
    F 2P, Ne 1S, Cr 7S (3d5 4s1), Fe 5D, Cu 2S (3d10 4s1), Kr 1S."""
    md = script()
    z_2s = {1: 1, 2: 0, 5: 1, 6: 2, 7: 3, 8: 2, 9: 1, 10: 0, 24: 6, 26: 4, 29: 1, 36: 0}
    assert {z: md.unpaired(z) for z in z_2s} == z_2s
    rec = md.complete(dict(symbol="O", method="auto", basis="cc-pVDZ"))
    assert (rec["Z"], rec["spin"], rec["cation_spin"]) == (8, 2, 3)     # O 3P, O+ 4S


@pytest.mark.parametrize("atom", [a for a in atoms.ATOMS if atoms.table_path(a).exists()])
def test_regraft_through_the_verb_reproduces_the_shipped_tables(tmp_path, atom):
    """--regraft (no PySCF): the raw columns of a shipped table through `make_table` with the
    preset's graft give the shipped table back (k to 1e-9 1/bohr^2; measured 6e-13), with the
    verb's provenance added."""
    for gauge in atoms.GAUGES:
        shutil.copy(atoms.table_path(atom, gauge), tmp_path)
    p = subprocess.run([sys.executable, str(SCRIPT), atom, "--regraft", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for gauge in atoms.GAUGES:
        old, new = atoms.load_table(atom, gauge), atoms.load_table(tmp_path / f"{atom}_{gauge}.npz")
        np.testing.assert_allclose(new["kinetic_local"], old["kinetic_local"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(new["density"], old["density"], rtol=1e-12)
        assert new["energy"] == old["energy"] and new["gauge"] == gauge and new["tail_status"] == "grafted"
        assert new["meta"]["generator"] == "jobs/atoms/make_densities.py" and "sha256" in new["meta"]["source"]
    assert (tmp_path / f"{atom}_tail.png").exists()


@pytest.mark.skipif(HAS_PYSCF, reason="PySCF is installed here")
def test_without_pyscf_a_clear_error(tmp_path):
    p = subprocess.run([sys.executable, str(SCRIPT), "He", "--basis", "cc-pVDZ", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and p.stderr.strip().splitlines() == [
        "make_densities.py needs PySCF, an optional dependency: pip install pyscf "
        "(the shipped tables in qpnn_hpc/data need no PySCF)"]


@pytest.mark.skipif(not HAS_PYSCF, reason="PySCF is optional: pip install pyscf")
def test_helium_fci(tmp_path):
    """He/cc-pVDZ (FCI chosen by memory; a few seconds): E = -2.887595, IP = 0.893971 Ha
    (PySCF 2.14 here), tables in both gauges, the tail grafted automatically."""
    md = script()
    s = md.make_atom("he", tmp_path, md.complete(dict(symbol="He", method="auto", basis="cc-pVDZ")),
                     auto_graft=True)
    assert s["e_atom"] == pytest.approx(-2.887595, abs=2e-6) and s["ip"] == pytest.approx(0.893971, abs=2e-6)
    assert s["method"].startswith("FCI") and s["tail"] == "grafted"
    t = atoms.load_table(tmp_path / "he_ionisation.npz")
    assert t["meta"]["atom"] == "He" and t["meta"]["basis"] == "cc-pVDZ" and t["energy"] == pytest.approx(-s["ip"])
