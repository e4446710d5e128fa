#!/usr/bin/env python
"""Correlated radial densities of any atom with PySCF, written through `qpnn-hpc density`.

    OMP_NUM_THREADS=2 python jobs/atoms/make_densities.py He --basis cc-pVTZ --out tables/
    python jobs/atoms/make_densities.py B --basis aug-cc-pVTZ --out tables/      # open shell (2P)
    python jobs/atoms/make_densities.py li be ne [--out qpnn_hpc/data]          # the shipped tables
    python jobs/atoms/make_densities.py li be ne --regraft                       # only redo the graft

PySCF is optional (``pip install pyscf``); the shipped tables need no PySCF. Per atom
(element symbol, H to Kr, or one of the presets ``RECIPES``: li, be, ne):

* Spins: the ground-state multiplicity of the atom and of its cation from the aufbau
  occupation and Hund's rule (Cr and Cu: 3d5 4s1, 3d10 4s1); ``--spin``, ``--cation-spin``
  (2S) override it (transition-metal cations: give it).
* Method (``--method auto``): FCI (PySCF fci on RHF/ROHF orbitals, D2h symmetry, the
  wavefunction's irrep from the SCF determinant) where the CI vectors fit in
  ``--max-memory`` GB (12 vectors of C(norb, n_alpha) C(norb, n_beta) doubles), else CCSD:
  the relaxed RCCSD density (orbital response included) for closed shells, the unrelaxed
  UCCSD density on UHF orbitals for open shells (stated in ``method``); the cation with the
  same method (UCCSD for an open shell); one electron: the SCF energy is exact in the basis,
  and the cation's energy is 0.
* Basis ``--basis`` (any PySCF name); "aug-cc-pCVXZ" for Li and Be = aug-cc-pVXZ + the core
  functions of cc-pCVXZ (PySCF has none for them).
* Radial density: the AO 1-RDM gives rho, grad rho and Lap rho analytically
  (``eval_ao(deriv=2)``, ``eval_rho(xctype='MGGA', with_lapl=True)``) on a Lebedev sphere
  (194 points) at each radius; rho, rho' = <r_hat . grad rho> and Lap rho are its spherical
  averages. Radial grid r = 0.05, 0.06, ..., 12 bohr (``--r-max``, ``--dr``).
* The columns go to ``{out}/{key}_columns.npz`` (r, rho, drho, lap_rho), then through
  :func:`qpnn_hpc.atoms.importer.make_table` (the ``qpnn-hpc density`` verb) once per gauge:
  the tail diagnosis and graft (automatic, or the preset's r_match from a scan: RECIPES), the
  plot ``{key}_tail.png``, ``{out}/{key}_{ionisation,energy}.npz`` with the provenance, the
  energies and the graft; a summary line per atom.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from functools import reduce
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from qpnn_hpc.atoms.density_verb import DensityConfig  # noqa: E402
from qpnn_hpc.atoms.importer import make_table  # noqa: E402
from qpnn_hpc.atoms.shells import SUBSHELLS  # noqa: E402

# presets: the shipped tables. r_match: the switch radius (on a 0.02 bohr scan for Ne, 0.25 for Li
# and Be) whose grafted series puts the outer half [6, 12] bohr closest to the exact asymptote
# -1/r + l(l+1)/(2 r^2), the auto rule's criterion (qpnn_hpc/atoms/tail.py auto_match): rms 0.20
# (Li), 2.07 (Be) and 0.48 mHa (Ne), where the raw columns' first four derivatives are still those
# of the Coulomb tail (python benchmarks/ne_tail.py --scan). The auto rule's own finer scan over
# its candidates picks Be 4.39 (1.86 mHa), Ne 1.24 (0.42); Li's raw tail it leaves alone.
RECIPES = {
    "li": dict(symbol="Li", method="fci", basis="aug-cc-pCVTZ", r_match=3.0, wfnsym="Ag"),
    "be": dict(symbol="Be", method="fci", basis="aug-cc-pCVTZ", r_match=3.0, wfnsym="Ag"),
    "ne": dict(symbol="Ne", method="ccsd", basis="aug-cc-pwCVQZ", r_match=0.98),
}
BE_FALLBACK = dict(symbol="Be", method="ccsd(t)", basis="aug-cc-pCVQZ", r_match=None)   # the auto graft
ELEMENTS = ("H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se "
            "Br Kr").split()


def pyscf_or_exit():
    import importlib.util
    if importlib.util.find_spec("pyscf") is None:
        sys.exit("make_densities.py needs PySCF, an optional dependency: pip install pyscf "
                 "(the shipped tables in qpnn_hpc/data need no PySCF)")


def unpaired(n_electrons: int) -> int:
    """Unpaired electrons (2S) of the ground state of n electrons by aufbau and Hund's rule."""
    if n_electrons in (24, 29):          # Cr 3d5 4s1, Cu 3d10 4s1
        return {24: 6, 29: 1}[n_electrons]
    left = n_electrons
    for n, l in SUBSHELLS:
        cap = 2 * (2 * l + 1)
        k = min(cap, left)
        left -= k
        if left == 0:
            return min(k, cap - k)
    raise ValueError(f"{n_electrons} electrons: beyond Kr; give --spin")


def radial_grid(r_min=0.05, r_max=12.0, dr=0.01):
    n = int(round((r_max - r_min) / dr)) + 1
    return np.linspace(r_min, r_max, n)


def build_mol(symbol, basis, charge, spin, symmetry=True):
    from pyscf import gto
    return gto.M(atom=f"{symbol} 0 0 0", basis={symbol: basis}, charge=charge, spin=spin,
                 symmetry="D2h" if symmetry else False, verbose=0)


def run_scf(mol, unrestricted=False):
    from pyscf import scf
    mf = (scf.UHF(mol) if unrestricted else scf.RHF(mol) if mol.spin == 0 else scf.ROHF(mol))
    mf.conv_tol = 1e-11
    mf.kernel()
    assert mf.converged, "SCF did not converge"
    return mf


def scf_dm(mf):
    """The SCF AO 1-RDM, alpha + beta (ROHF/UHF give the two spins apart)."""
    dm = np.asarray(mf.make_rdm1())
    return dm[0] + dm[1] if dm.ndim == 3 else dm


def fci_memory_gb(mol) -> float:
    """12 CI vectors of C(norb, n_alpha) C(norb, n_beta) doubles (no symmetry reduction)."""
    na, nb = mol.nelec
    return 12 * 8 * math.comb(mol.nao, na) * math.comb(mol.nao, nb) / 1e9


def fci_energy_dm(mol, want_dm=True, wfnsym=None):
    """FCI energy and AO 1-RDM (alpha + beta); the irrep from the SCF determinant unless given."""
    from pyscf import fci
    mf = run_scf(mol)
    if mol.nelectron == 1:
        return float(mf.e_tot), (scf_dm(mf) if want_dm else None)
    ci = fci.FCI(mf)
    if wfnsym:
        ci.wfnsym = wfnsym
    ci.conv_tol = 1e-10
    ss = 0.5 * mol.spin * (0.5 * mol.spin + 1)
    ci = fci.addons.fix_spin_(ci, ss=ss, shift=0.5)
    e, vec = ci.kernel()
    if not want_dm:
        return float(e), None
    dma, dmb = ci.make_rdm1s(vec, mf.mo_coeff.shape[1], mol.nelec)
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
    """(E_CCSD or E_CCSD(T), AO 1-RDM or None): closed shells RCCSD with the relaxed density;
    open shells UCCSD on UHF with the unrelaxed (Lambda) density."""
    from pyscf import cc
    if mol.nelectron == 1:
        mf = run_scf(mol)
        return float(mf.e_tot), (scf_dm(mf) if want_dm else None)
    open_shell = mol.spin != 0
    mf = run_scf(mol, unrestricted=open_shell)
    mycc = cc.UCCSD(mf) if open_shell else cc.CCSD(mf)
    mycc.conv_tol = 1e-9
    mycc.kernel()
    e = float(mycc.e_tot) + (float(mycc.ccsd_t()) if triples else 0.0)
    if not want_dm:
        return e, None
    mycc.solve_lambda()
    if open_shell:
        dma, dmb = mycc.make_rdm1()
        Ca, Cb = mf.mo_coeff
        return e, Ca @ dma @ Ca.T + Cb @ dmb @ Cb.T
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


def recipe(name: str, args) -> tuple[str, dict]:
    """(key, recipe) for a preset (li, be, ne) or any element symbol with the command's options."""
    key = name.lower()
    if key in RECIPES and not args.basis and args.method == "auto":
        rec = dict(BE_FALLBACK if (key == "be" and args.be_fallback) else RECIPES[key])
    else:
        symbol = next((e for e in ELEMENTS if e.lower() == key), None)
        if symbol is None:
            sys.exit(f"make_densities.py: unknown atom {name!r}; give an element symbol H .. Kr")
        rec = dict(symbol=symbol, method=args.method, basis=args.basis or "cc-pVTZ")
    if args.r_match is not None:
        rec["r_match"] = args.r_match
    return key, complete(rec, args.spin, args.cation_spin)


def complete(rec: dict, spin=None, cation_spin=None) -> dict:
    """``rec`` with Z and the spins (2S) of the atom and its cation (default: :func:`unpaired`)."""
    Z = ELEMENTS.index(rec["symbol"]) + 1
    spin = rec.get("spin", unpaired(Z)) if spin is None else spin
    cation_spin = rec.get("cation_spin", unpaired(Z - 1) if Z > 1 else 0) if cation_spin is None else cation_spin
    return dict(rec, Z=Z, spin=spin, cation_spin=cation_spin)


def energies_and_density(rec: dict, max_memory_gb: float):
    """(E atom, E cation, AO 1-RDM, mol, method text, seconds)."""
    t0 = time.time()
    basis = make_basis(rec["symbol"], rec["basis"])
    mol = build_mol(rec["symbol"], basis, 0, rec["spin"])
    method = rec["method"]
    if method == "auto":
        method = "fci" if fci_memory_gb(mol) <= max_memory_gb else "ccsd"
    if rec["Z"] == 1:
        e_cat = 0.0
    if method == "fci":
        e_atom, dm = fci_energy_dm(mol, wfnsym=rec.get("wfnsym"))
        if rec["Z"] > 1:
            e_cat, _ = fci_energy_dm(build_mol(rec["symbol"], basis, 1, rec["cation_spin"]), want_dm=False)
        text = f"FCI (PySCF fci, D2h) on {'ROHF' if rec['spin'] else 'RHF'} orbitals; cation FCI"
    else:
        triples = method == "ccsd(t)"
        e_atom, dm = ccsd_energy_dm(mol, triples=triples)
        if rec["Z"] > 1:
            e_cat, _ = ccsd_energy_dm(build_mol(rec["symbol"], basis, 1, rec["cation_spin"]), want_dm=False,
                                      triples=triples)
        dens = "unrelaxed UCCSD density (UHF)" if rec["spin"] else "relaxed CCSD density (RCCSD Lambda + orbital response)"
        text = f"{dens}; E = {'CCSD(T)' if triples else 'CCSD'}; cation {'U' if rec['cation_spin'] else 'R'}CCSD" \
               f"{'(T)' if triples else ''}"
    if rec["method"] == "auto":
        text += f" (auto: FCI vectors {fci_memory_gb(mol):.3g} GB against --max-memory {max_memory_gb:g})"
    return e_atom, e_cat, dm, mol, text, time.time() - t0


def tables(key: str, rec: dict, out: Path, columns: Path, e_atom: float, e_cat: float, method: str,
           extra: dict, auto_graft: bool) -> list[dict]:
    """Both gauges' tables through the verb; the preset's graft unless ``auto_graft``."""
    graft = {} if auto_graft else ({} if rec.get("r_match") is None else {"r_match": rec["r_match"]})
    res = []
    for gauge in ("ionisation", "energy"):
        cfg = DensityConfig(input=str(columns), out=str(out / f"{key}_{gauge}.npz"), electrons=float(rec["Z"]),
                            charge=float(rec["Z"]), energy=e_atom, cation_energy=e_cat, gauge=gauge,
                            name=rec["symbol"], method=method, basis=rec["basis"],
                            plot=str(out / f"{key}_tail.png") if gauge == "ionisation" else "", **graft)
        res.append(make_table(cfg, extra_meta=dict(extra, generator="jobs/atoms/make_densities.py")))
    return res


def make_atom(key: str, out: Path, rec: dict, max_memory_gb: float = 4.0, r=None, auto_graft=False) -> dict:
    pyscf_or_exit()
    rec = complete(rec)
    e_atom, e_cat, dm, mol, method, t_qc = energies_and_density(rec, max_memory_gb)
    r = radial_grid() if r is None else r
    rho, drho, lap = radial_density(mol, dm, r)
    columns = out / f"{key}_columns.npz"
    np.savez_compressed(columns, r=r, rho=rho, drho=drho, lap_rho=lap)
    extra = dict(state=f"2S+1 = {rec['spin'] + 1}", nao=int(mol.nao), electrons_dm=float(np.trace(dm @ mol.intor("int1e_ovlp"))),
                 pyscf_seconds=round(t_qc, 1), angular="Lebedev 194, spherical average",
                 radial_grid=f"r = {r[0]:g} .. {r[-1]:g} bohr, {len(r)} points",
                 density_derivatives="rho, rho', Lap rho analytic in the AO basis (eval_rho MGGA, with_lapl)")
    res = tables(key, rec, out, columns, e_atom, e_cat, method, extra, auto_graft)
    summary = dict(atom=rec["symbol"], method=method, basis=rec["basis"], spin=rec["spin"], e_atom=e_atom,
                   e_cation=e_cat, ip=e_cat - e_atom, nao=int(mol.nao), seconds=round(t_qc, 1),
                   tail=res[0]["tail_status"], files=[str(x["table"]) for x in res])
    print(res[0]["line"], flush=True)
    print(json.dumps(summary), flush=True)
    return summary


def regraft(key: str, out: Path, rec: dict, auto_graft=False) -> dict:
    """Redo the graft from ``{key}_columns.npz``, or from the raw columns of an existing table; no PySCF."""
    from qpnn_hpc.atoms import densities as atoms
    columns = out / f"{key}_columns.npz"
    t = atoms.load_table(out / f"{key}_ionisation.npz")
    if not columns.exists():   # tables written before the columns file: their raw columns
        cols = dict(r=t["x"], rho=t.get("density_raw", t["density"]))
        if "drho_raw" in t:
            cols.update(drho=t["drho_raw"], lap_rho=t["lap_rho_raw"])
        elif "kinetic_local_raw" in t:  # rho' as the table has it where its graft left rho alone (below the
            # blend, analytic), else the verb's spline of ln rho; Lap rho keeps the raw k exactly
            from qpnn_hpc.atoms.columns import derivatives
            drho, _, _ = derivatives(t["x"], cols["rho"], "radial")
            g = t["meta"].get("graft") or {}
            drho = np.where(t["x"] < g.get("r_match", np.inf) - g.get("width", 0.0), t["drho"], drho)
            du = drho / cols["rho"]
            cols.update(drho=drho, lap_rho=2 * cols["rho"] * (t["kinetic_local_raw"] + du * du / 4))
        np.savez_compressed(columns, **cols)
    m = t["meta"]
    extra = {k: m[k] for k in ("state", "nao", "electrons_dm", "pyscf_seconds") if k in m}
    res = tables(key, dict(rec, Z=int(m.get("Z", rec.get("Z", 0)))), out, columns, float(t["e_atom"]),
                 float(t["e_cation"]), m["method"], dict(extra, note="re-grafted (--regraft)"), auto_graft)
    print(res[0]["line"], flush=True)
    return res[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("atoms", nargs="+", help="element symbols (H .. Kr) or presets li, be, ne")
    ap.add_argument("--out", default=str(ROOT / "qpnn_hpc" / "data"), help="folder of the tables")
    ap.add_argument("--basis", default=None, help="PySCF basis name (default: the preset's, else cc-pVTZ)")
    ap.add_argument("--method", default="auto", choices=["auto", "fci", "ccsd", "ccsd(t)"],
                    help="auto: FCI where it fits in --max-memory, else CCSD")
    ap.add_argument("--max-memory", type=float, default=4.0, help="GB for the FCI vectors (default 4)")
    ap.add_argument("--spin", type=int, default=None, help="2S of the atom (default: aufbau and Hund's rule)")
    ap.add_argument("--cation-spin", type=int, default=None, help="2S of the cation (default: as --spin)")
    ap.add_argument("--r-max", type=float, default=12.0, help="last radius of the grid (bohr, default 12)")
    ap.add_argument("--dr", type=float, default=0.01, help="radial step (bohr, default 0.01)")
    ap.add_argument("--r-match", type=float, default=None, help="graft radius (default: automatic)")
    ap.add_argument("--auto-graft", action="store_true", help="presets too: the automatic graft, not theirs")
    ap.add_argument("--be-fallback", action="store_true", help="Be: CCSD(T)/aug-cc-pCVQZ, relaxed CCSD density")
    ap.add_argument("--regraft", action="store_true", help="only redo the tail graft of existing tables in --out")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.atoms:
        key, rec = recipe(name, args)
        auto = args.auto_graft or (key not in RECIPES and args.r_match is None)
        if args.regraft:
            regraft(key, out, rec, auto)
        else:
            make_atom(key, out, rec, args.max_memory, r=radial_grid(r_max=args.r_max, dr=args.dr), auto_graft=auto)


if __name__ == "__main__":
    main()
