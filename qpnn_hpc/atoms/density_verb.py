"""The ``qpnn-hpc density`` verb: its options (:class:`DensityConfig`) and its parser.

Imports neither numpy nor the inversion until the verb runs (the CLI sets the BLAS
threads before numpy loads); the work is :func:`qpnn_hpc.atoms.importer.make_table`.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from qpnn_hpc.config import check, field

DEFAULT_TOL = 0.03          # Hartree: abs(v_eff - v_A) counted as following the asymptote (qpnn_hpc.atoms.tail)
DEFAULT_MIN_LENGTH = 1.0    # bohr: the shortest stretch that counts as following
GEOMETRIES = ("radial", "line")
GAUGES = ("ionisation", "energy", "unknown")
FLAGGED = ("untrusted", "unchecked")      # tail states every campaign using the table is warned about


@dataclass(frozen=True)
class DensityConfig:
    input: str = field(help="columns file: .npz, .csv/.txt (header line optional) or .h5")
    out: str = field(help="the table to write (.npz)")
    geometry: str = field("radial", help='"radial" (r, spherical 3D) or "line" (x, 1D, centred at x = 0)')
    electrons: Optional[float] = field(None, help="electron count N (default: the integral of n, rounded)")
    charge: Optional[float] = field(None, help="nuclear charge Z (default N: neutral)")
    ip: Optional[float] = field(None, help="ionisation potential (Hartree); default E(cation) - E when both known")
    energy: Optional[float] = field(None, help="total energy E of the N-electron state (Hartree)")
    cation_energy: Optional[float] = field(None, help="total energy of the N-1-electron cation (Hartree; "
                                                      "0 for one electron)")
    gauge: Optional[str] = field(None, help='"ionisation" (mu = -IP; default with an IP), "energy" (mu = E) or '
                                            '"unknown" (mu = 0; default without gauge data)')
    columns: Optional[str] = field(None, help='which column is which: "x=r,n=rho" (named) or "x,n,dn" (order)')
    group: Optional[str] = field(None, help="HDF5 group holding the columns (default: the file's root)")
    name: Optional[str] = field(None, help="atom or system name (meta.atom, the report's row; default the "
                                           "input's stem)")
    method: str = field("", help="where the density comes from (free text, e.g. 'FCI/cc-pVQZ, PySCF')")
    basis: str = field("", help="basis set, if any (free text)")
    graft: bool = field(True, help="graft the tail where it stops following the asymptote")
    r_match: Optional[float] = field(None, help="matching radius of the graft: ln n and its first four "
                                                "derivatives continuous there (bohr; default: from the diagnosis)")
    outer_l: Optional[int] = field(None, help="radial: angular momentum l of the outermost shell, whose "
                                              "centrifugal l(l+1)/(2 r^2) is in v_eff's asymptote (default: by "
                                              "aufbau for N: 0 for H-Be, 1 for B-Ne, ...)")
    tail_tol: float = field(DEFAULT_TOL, help="Hartree: abs(v_eff - asymptote) counted as following it")
    min_length: float = field(DEFAULT_MIN_LENGTH, help="bohr: the shortest stretch that counts as "
                                                             "following the asymptote")
    anchor: Optional[float] = field(None, help="gauge anchor r0 (bohr; default radially 2, or 0.5 past "
                                               "a graft's r_match within 0.5 of it; on a line the densest point)")
    plot: Optional[str] = field(None, help="the diagnostic PNG (default <out stem>_tail.png; '' for none)")

    def __post_init__(self):
        check(self.geometry in GEOMETRIES, "geometry", f"{self.geometry!r}: use radial or line")
        check(self.gauge is None or self.gauge in GAUGES, "gauge", f"{self.gauge!r}: use one of {', '.join(GAUGES)}")
        check(Path(self.out).suffix == ".npz", "out", f"{self.out!r}: the table is an .npz file; end it in .npz")
        check(self.electrons is None or self.electrons > 0, "electrons", "must be > 0")
        check(self.charge is None or self.charge > 0, "charge", "must be > 0")
        check(self.ip is None or self.ip > 0, "ip", f"must be > 0 Hartree, got {self.ip}")
        check(self.tail_tol > 0, "tail_tol", "must be > 0 Hartree")
        check(self.min_length > 0, "min_length", "must be > 0 bohr")
        check(self.r_match is None or self.r_match > 0, "r_match", "must be > 0 bohr (a distance from the centre)")
        check(self.outer_l is None or (self.outer_l in range(4) and self.geometry == "radial"), "outer_l",
              f"{self.outer_l!r}: give 0 (s), 1 (p), 2 (d) or 3 (f), and only for the radial geometry "
              "(a line has no angular momentum)")


# ----------------------------------------------------------------------------- the verb

def _cli(args) -> int:
    keys = [f for f in DensityConfig.__dataclass_fields__ if f not in ("input", "out")]
    opts = {k: getattr(args, k) for k in keys}
    cfg = DensityConfig(input=args.input, out=args.out, **opts)
    check(args.trials > 0, "trials", "must be > 0")
    check(args.epochs > 0, "epochs", "must be > 0")
    from qpnn_hpc.atoms.importer import make_table, write_campaign
    res = make_table(cfg)
    print(res["line"])
    if res["tail_status"] in FLAGGED:
        print(f"qpnn-hpc density: warning: {res['table']} has an {res['tail_status']} tail; campaigns using it "
              "are flagged", file=sys.stderr)
    if args.campaign:
        p = write_campaign(args.campaign, args.out, cfg.geometry, res["x"], args.trials, args.epochs)
        print(f"qpnn-hpc density: campaign {p}: qpnn-hpc run {p} --out {p.with_suffix('.h5')}")
    return 0


EPILOG = """examples:
  # a radial density from a quantum chemistry code, r, rho columns, with the energies
  qpnn-hpc density he.csv --electrons 2 --energy -2.90372 --cation-energy -2.0 --out he.npz --campaign he.toml
  # hydrogen-like, only the IP known; graft radius chosen by hand, no plot
  qpnn-hpc density h.txt --columns x,n --electrons 1 --ip 0.5 --r-match 6 --plot '' --out h.npz
  # a 1D density from HDF5 datasets x, n1 in group "train", energy gauge
  qpnn-hpc density data.h5 --group train --columns x=x,n=n1 --geometry line --electrons 1 --energy -0.5 \\
      --gauge energy --out line.npz
"""


def add_parser(subparsers) -> None:
    """Register ``qpnn-hpc density INPUT --out TABLE.npz [options]``."""
    import argparse
    h = {f: DensityConfig.__dataclass_fields__[f].metadata["help"] for f in DensityConfig.__dataclass_fields__}
    p = subparsers.add_parser(
        "density", help="turn your own density (columns) into a table campaigns accept, grafting its tail",
        description="Bring your own density: read x or r, n (optionally n', Lap n, an exact v) from .npz, "
                    ".csv/.txt or HDF5; compute missing derivatives (quintic spline of ln n); invert it "
                    "(v_eff = mu + Lap sqrt(n)/(2 sqrt(n))); find where the tail stops following the "
                    "asymptote -z/r and graft it there; write the table, a diagnostic PNG and one line "
                    "saying what was done. Hartree atomic units.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help=h["input"])
    p.add_argument("--out", required=True, help=h["out"])
    p.add_argument("--geometry", default="radial", choices=GEOMETRIES, help=h["geometry"])
    p.add_argument("--columns", default=None, help=h["columns"] + "; default: by name (x/r, n/rho/density, "
                   "dn/drho, lap/lap_rho, v) or, without names, x,n[,dn[,lap]]")
    p.add_argument("--group", default=None, help=h["group"])
    g = p.add_argument_group("the system and its gauge data")
    g.add_argument("--electrons", type=float, default=None, help=h["electrons"])
    g.add_argument("--charge", type=float, default=None, help=h["charge"])
    g.add_argument("--ip", type=float, default=None, help=h["ip"])
    g.add_argument("--energy", type=float, default=None, help=h["energy"])
    g.add_argument("--cation-energy", type=float, default=None, help=h["cation_energy"])
    g.add_argument("--gauge", default=None, choices=GAUGES, help=h["gauge"])
    g.add_argument("--anchor", type=float, default=None, help=h["anchor"])
    g.add_argument("--name", default=None, help=h["name"])
    g.add_argument("--method", default="", help=h["method"])
    g.add_argument("--basis", default="", help=h["basis"])
    t = p.add_argument_group("the tail")
    t.add_argument("--no-graft", dest="graft", action="store_false",
                   help="diagnose only: a tail that does not follow the asymptote is marked untrusted")
    t.add_argument("--r-match", type=float, default=None, help=h["r_match"])
    t.add_argument("--outer-l", type=int, default=None, help=h["outer_l"])
    t.add_argument("--tail-tol", type=float, default=DEFAULT_TOL, help=h["tail_tol"] + " (default %(default)s)")
    t.add_argument("--min-length", type=float, default=DEFAULT_MIN_LENGTH,
                   help=h["min_length"] + " (default %(default)s)")
    t.add_argument("--plot", default=None, help=h["plot"])
    c = p.add_argument_group("a starter campaign")
    c.add_argument("--campaign", default=None, metavar="FILE.toml",
                   help="also write a trial campaign on the table (the jobs/atoms.toml recipe)")
    c.add_argument("--trials", type=int, default=3, help="its trials (default 3)")
    c.add_argument("--epochs", type=int, default=500, help="its training epochs (default 500)")
    p.set_defaults(fn=_cli)
