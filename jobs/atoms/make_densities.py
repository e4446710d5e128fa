#!/usr/bin/env python
"""Correlated radial densities of Li (2S), Be (1S) and Ne (1S) with PySCF (seed 000 atoms).

    OMP_NUM_THREADS=2 python jobs/atoms/make_densities.py li be ne [--out qpnn_hpc/data]

PySCF is an optional dependency (``pip install pyscf``); the tables it writes ship with
the package, so users and CI never need it. Per atom (see ``RECIPES``):

* Li: FCI (D2h, wfnsym Ag, doublet) on ROHF orbitals; cation Li+ FCI.
* Be: FCI (D2h, Ag, singlet) on RHF orbitals; cation Be+ FCI (6 min on one loaded core
  here). ``--be-fallback`` uses CCSD(T)/aug-cc-pCVQZ energies with the relaxed CCSD
  density instead (recorded in ``method``).
* Ne: relaxed CCSD density (orbital response included, the density of the CCSD energy
  functional as in analytic gradients); energies CCSD; cation Ne+ UCCSD on UHF.
* Basis "aug-cc-pCVXZ" for Li/Be = aug-cc-pVXZ + the core functions of cc-pCVXZ
  (the shells of cc-pCVXZ not in cc-pVXZ: PySCF has no aug-cc-pCVXZ for Li and Be).

Radial density: the 1-RDM in the AO basis gives rho, grad rho and Lap rho analytically
(``eval_ao(deriv=2)``, ``eval_rho(xctype='MGGA', with_lapl=True)``) on a Lebedev sphere of
each radius; rho, rho' = <r_hat . grad rho> and Lap rho are spherical averages.
Radial grid r = 0.05, 0.06, ..., 12 bohr (dr = 0.01).

Tail graft (``qpnn_hpc.atoms.graft_tail``): beyond the matching radius r_match (per atom,
below) ln rho is blended (quintic C2 step on [r_match - 1, r_match + 1]) into
exp(a0 + 2 beta ln r - 2 kappa r + a1/r), kappa = sqrt(2 IP), beta = 1/kappa - 1, IP from
the same method's cation energy; a0, a1 fitted to ln rho on the window. The Gaussian tail
decays too fast and makes v_eff oscillate at large r; the basis is trustworthy up to about
the r_match below (physics-reference: Li QZ good to 10, Be to 6-8; Ne oscillates beyond
~1.5 bohr, so its graft starts early).

Writes ``{out}/{atom}_{energy,ionisation}.npz`` (see ``qpnn_hpc.atoms``) and prints a summary.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from functools import reduce
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from qpnn_hpc.atoms import densities as atoms  # noqa: E402

RECIPES = {
    "li": dict(symbol="Li", Z=3, spin=1, method="fci", basis="aug-cc-pCVTZ", r_match=7.0),
    "be": dict(symbol="Be", Z=4, spin=0, method="fci", basis="aug-cc-pCVTZ", r_match=5.0,
               width=1.0, fit_window=(4.0, 6.0)),
    "ne": dict(symbol="Ne", Z=10, spin=0, method="ccsd", basis="aug-cc-pwCVQZ", r_match=1.75,
               width=0.75, fit_window=(1.0, 4.0)),
}
CATION_SPIN = {"li": 0, "be": 1, "ne": 1}
BE_FALLBACK = dict(symbol="Be", Z=4, spin=0, method="ccsd(t)", basis="aug-cc-pCVQZ", r_match=5.5)


def radial_grid(r_min=0.05, r_max=12.0, dr=0.01):
    n = int(round((r_max - r_min) / dr)) + 1
    return np.linspace(r_min, r_max, n)


def make_basis(symbol: str, name: str):
    """PySCF basis dict entry. aug-cc-pCVXZ (absent for Li, Be) = aug-cc-pVXZ + core shells."""
    from pyscf import gto
    low = name.lower()
    if low.startswith("aug-cc-pcv"):
        x = low[len("aug-cc-pcv"):]
        aug = gto.basis.load(f"aug-cc-pv{x}", symbol)
        cv = gto.basis.load(f"cc-pcv{x}", symbol)
        v = gto.basis.load(f"cc-pv{x}", symbol)
        extra = [sh for sh in cv if sh not in v]
        return aug + extra
    return gto.basis.load(low, symbol)


def build_mol(symbol, basis, charge, spin, symmetry=True):
    from pyscf import gto
    return gto.M(atom=f"{symbol} 0 0 0", basis={symbol: basis}, charge=charge, spin=spin,
                 symmetry="D2h" if symmetry else False, verbose=0)


def run_scf(mol):
    from pyscf import scf
    mf = scf.RHF(mol) if mol.spin == 0 else scf.ROHF(mol)
    mf.conv_tol = 1e-11
    mf.kernel()
    assert mf.converged, "SCF did not converge"
    return mf


def fci_energy_dm(mol, want_dm=True):
    """FCI (D2h, Ag) energy and AO 1-RDM (alpha + beta)."""
    from pyscf import fci
    mf = run_scf(mol)
    ci = fci.FCI(mf)
    ci.wfnsym = "Ag"
    ci.conv_tol = 1e-10
    ss = 0.5 * mol.spin * (0.5 * mol.spin + 1)
    ci = fci.addons.fix_spin_(ci, ss=ss, shift=0.5)
    e, vec = ci.kernel()
    if not want_dm:
        return float(e), None
    norb = mf.mo_coeff.shape[1]
    nelec = mol.nelec
    dma, dmb = ci.make_rdm1s(vec, norb, nelec)
    C = mf.mo_coeff
    return float(e), C @ (dma + dmb) @ C.T


def relaxed_ccsd_dm(mycc):
    """Relaxed (orbital-response) CCSD 1-RDM in the AO basis, alpha + beta, for RCCSD
    without frozen orbitals: the density of the CCSD Lagrangian used by analytic
    gradients (pyscf.grad.ccsd.grad_elec, without its derivative-integral parts)."""
    from pyscf import lib
    from pyscf.cc import ccsd_rdm
    from pyscf.grad import ccsd as gccsd
    mol = mycc.mol
    t1, t2, l1, l2 = mycc.t1, mycc.t2, mycc.l1, mycc.l2
    d1 = ccsd_rdm._gamma1_intermediates(mycc, t1, t2, l1, l2)
    doo, dov, dvo, dvv = d1
    fdm2 = lib.H5TmpFile()
    d2 = ccsd_rdm._gamma2_outcore(mycc, t1, t2, l1, l2, fdm2, True)
    C = mycc.mo_coeff
    nao, nmo = C.shape
    nocc = int(np.count_nonzero(mycc.mo_occ > 0))
    gccsd._rdm2_mo2ao(mycc, d2, C, fdm2)
    diagidx = np.arange(nao)
    diagidx = diagidx * (diagidx + 1) // 2 + diagidx
    Imat = np.zeros((nao, nao))
    blksize = max(1, int(max(2000, mycc.max_memory) * .5e6 / 8 / (nao ** 3 * 2.5)))
    ip1 = 0
    for b0, b1, nf in gccsd._shell_prange(mol, 0, mol.nbas, blksize):
        ip0, ip1 = ip1, ip1 + nf
        dm2buf = gccsd._load_block_tril(fdm2["dm2"], ip0, ip1, nao)
        dm2buf[:, :, diagidx] *= .5
        eri0 = mol.intor("int2e", aosym="s2kl", shls_slice=(b0, b1, 0, mol.nbas, 0, mol.nbas, 0, mol.nbas))
        Imat += lib.einsum("ipx,iqx->pq", eri0.reshape(nf, nao, -1), dm2buf)
    Imat = reduce(np.dot, (C.T, Imat, mycc._scf.get_ovlp(), C)) * -1
    dm1mo = np.zeros((nmo, nmo))
    dm1mo[:nocc, :nocc] = doo + doo.T
    dm1mo[nocc:, nocc:] = dvv + dvv.T
    dm1 = reduce(np.dot, (C, dm1mo, C.T))
    vhf = mycc._scf.get_veff(mol, dm1) * 2
    Xvo = reduce(np.dot, (C[:, nocc:].T, vhf, C[:, :nocc]))
    Xvo += Imat[:nocc, nocc:].T - Imat[nocc:, :nocc]
    dm1mo += gccsd._response_dm1(mycc, Xvo, None)
    hf_dm1 = mycc._scf.make_rdm1(mycc.mo_coeff, mycc.mo_occ)
    return reduce(np.dot, (C, dm1mo, C.T)) + hf_dm1


def ccsd_energy_dm(mol, want_dm=True, triples=False):
    """(E_CCSD or E_CCSD(T), relaxed CCSD AO 1-RDM or None). Open shells: UHF/UCCSD, no dm."""
    from pyscf import cc, scf
    if mol.spin == 0:
        mf = run_scf(mol)
        mycc = cc.CCSD(mf)
    else:
        mf = scf.UHF(mol)
        mf.conv_tol = 1e-11
        mf.kernel()
        mycc = cc.UCCSD(mf)
        want_dm = False
    mycc.conv_tol = 1e-9
    mycc.kernel()
    e = float(mycc.e_tot)
    if triples:
        e += float(mycc.ccsd_t())
    if not want_dm:
        return e, None
    mycc.solve_lambda()
    return e, relaxed_ccsd_dm(mycc)


def radial_density(mol, dm, r, n_ang=194, chunk=200):
    """Spherical averages of rho, d rho/dr and Lap rho at radii r (analytic in the AOs)."""
    from pyscf.dft import gen_grid, numint
    ang = gen_grid.MakeAngularGrid(n_ang)
    u, w = ang[:, :3], ang[:, 3] / ang[:, 3].sum()
    rho = np.empty_like(r); drho = np.empty_like(r); lap = np.empty_like(r)
    for i0 in range(0, len(r), chunk):
        rr = r[i0:i0 + chunk]
        coords = (rr[:, None, None] * u[None]).reshape(-1, 3)
        ao = numint.eval_ao(mol, coords, deriv=2)
        out = numint.eval_rho(mol, ao, dm, xctype="MGGA", with_lapl=True)
        n = len(rr)
        rho_c = out[0].reshape(n, -1)
        grad = out[1:4].reshape(3, n, -1)
        radial = np.einsum("xna,ax->na", grad, u)
        rho[i0:i0 + n] = rho_c @ w
        drho[i0:i0 + n] = radial @ w
        lap[i0:i0 + n] = out[4].reshape(n, -1) @ w
    return rho, drho, lap


def make_atom(key: str, out: Path, recipe: dict, r=None) -> dict:
    t0 = time.time()
    rec = dict(recipe)
    basis = make_basis(rec["symbol"], rec["basis"])
    mol = build_mol(rec["symbol"], basis, 0, rec["spin"])
    cat = build_mol(rec["symbol"], basis, 1, CATION_SPIN[key])
    if rec["method"] == "fci":
        e_atom, dm = fci_energy_dm(mol)
        e_cat, _ = fci_energy_dm(cat, want_dm=False)
        method = "FCI (PySCF fci, D2h, Ag) on %s orbitals; cation FCI" % ("ROHF" if rec["spin"] else "RHF")
    elif rec["method"] == "ccsd":
        e_atom, dm = ccsd_energy_dm(mol)
        e_cat, _ = ccsd_energy_dm(cat, want_dm=False)
        method = "relaxed CCSD density (RCCSD Lambda + orbital response); E = CCSD; cation UCCSD/UHF"
    else:  # ccsd(t)
        e_atom, dm = ccsd_energy_dm(mol, triples=True)
        e_cat, _ = ccsd_energy_dm(cat, want_dm=False, triples=True)
        method = "relaxed CCSD density; E = CCSD(T); cation UCCSD(T)/UHF"
    t_qc = time.time() - t0
    nel = float(np.trace(dm @ mol.intor("int1e_ovlp")))
    r = radial_grid() if r is None else r
    rho, drho, lap = radial_density(mol, dm, r)
    return write_atom(key, out, rec, mol, r, rho, drho, lap, e_atom, e_cat, method, nel, t_qc, t0)


def write_atom(key, out, rec, mol_or_nao, r, rho, drho, lap, e_atom, e_cat, method, nel, t_qc, t0,
               note=""):
    """Graft the tail (``rec``: r_match, width, fit_window) and write both gauges' tables."""
    ip = e_cat - e_atom
    rho_g, drho_g, lap_g, graft = atoms.graft_tail(r, rho, drho, lap, ip, rec["r_match"],
                                                   width=rec.get("width", 1.0),
                                                   fit_window=rec.get("fit_window"))
    nao = mol_or_nao if isinstance(mol_or_nao, int) else int(mol_or_nao.nao)
    meta = dict(atom=rec["symbol"], state={"li": "2S", "be": "1S", "ne": "1S"}[key], Z=rec["Z"],
                method=method, basis=rec["basis"] + (" (= aug-cc-pVXZ + core shells of cc-pCVXZ)"
                                                     if rec["basis"].lower().startswith("aug-cc-pcv")
                                                     and rec["symbol"] in ("Li", "Be") else ""),
                nao=nao, electrons_dm=nel, pyscf_seconds=round(t_qc, 1),
                radial_grid="r = 0.05 .. 12 bohr, dr = 0.01", angular="Lebedev 194, spherical average",
                derivatives="rho, rho', Lap rho analytic in the AO basis (eval_rho MGGA, with_lapl)",
                graft=graft, generator="jobs/atoms/make_densities.py")
    if note:
        meta["note"] = note
    # the raw (ungrafted) columns too, for plots, checks and a later re-graft
    paths = atoms.write_tables(out / key, r, rho_g, drho_g, lap_g, e_atom, e_cat, meta)
    for p in paths:
        with np.load(p) as d:
            data = {k: d[k] for k in d.files}
        data["density_raw"], data["drho_raw"], data["lap_rho_raw"] = rho, drho, lap
        data["kinetic_local_raw"] = atoms.kinetic_local(r, rho, drho, lap)
        np.savez_compressed(p, **data)
    k = atoms.kinetic_local(r, rho_g, drho_g, lap_g)
    rb, vb = atoms.barrier(r, -ip + 0.5 * k)
    summary = dict(atom=key, e_atom=e_atom, e_cation=e_cat, ip=ip, nao=nao, electrons=nel,
                   barrier_r=rb, barrier_v_ionisation=vb, seconds=round(time.time() - t0, 1),
                   files=[str(p) for p in paths])
    print(json.dumps(summary), flush=True)
    return summary


def regraft(key: str, out: Path, rec: dict) -> dict:
    """Re-graft an existing table (its raw columns) with ``rec``'s graft; no PySCF."""
    from scipy.interpolate import CubicSpline
    t = atoms.load_table(out / f"{key}_ionisation.npz")
    r, rho = t["x"], t["density_raw"]
    if "drho_raw" in t:
        drho, lap = t["drho_raw"], t["lap_rho_raw"]
        note = "re-grafted (--regraft) from the raw columns"
    else:  # tables written before the raw rho', Lap rho were stored: rho' from a spline of ln rho
        du = CubicSpline(r, np.log(rho))(r, 1)
        drho, lap = rho * du, 2 * rho * (t["kinetic_local_raw"] + du * du / 4)
        note = ("re-grafted (--regraft) from a table without the raw rho', Lap rho: rho' from a "
                "cubic spline of ln rho_raw (dr = 0.01), Lap rho from the raw kinetic_local")
    m = t["meta"]
    return write_atom(key, out, rec, int(m["nao"]), r, rho, drho, lap, t["e_atom"], t["e_cation"],
                      m["method"], m["electrons_dm"], m["pyscf_seconds"], time.time(), note=note)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("atoms", nargs="+", choices=sorted(RECIPES))
    ap.add_argument("--out", default=str(ROOT / "qpnn_hpc" / "data"))
    ap.add_argument("--be-fallback", action="store_true", help="Be: CCSD(T)/aug-cc-pCVQZ, relaxed CCSD density")
    ap.add_argument("--regraft", action="store_true", help="only redo the tail graft of existing tables in --out")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for key in args.atoms:
        rec = BE_FALLBACK if (key == "be" and args.be_fallback) else RECIPES[key]
        (regraft if args.regraft else make_atom)(key, out, rec)


if __name__ == "__main__":
    main()
