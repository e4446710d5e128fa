"""The package layout: each subpackage imports only what its ``__init__`` docstring allows
(module-level and function-level imports alike), so there are no import cycles; the
campaign engine finds the kinds by name (campaigns.kinds.REGISTRY), never by import."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "qpnn_hpc"
BASE = {"config", "stats", "parallel", "reports", "__init__", "__version__"}
# subpackage -> what it may import besides the base (None: the whole package, for the CLI)
ALLOWED = {
    "base": set(),
    "atoms": {"campaigns"},                          # the atoms report reads results files
    "inverse": {"atoms", "campaigns"},                # tabulated densities; its kind plugs in
    "exact1d": {"campaigns"},
    "functionals": {"campaigns", "exact1d"},          # reads the 1D datasets
    "campaigns": set(),
    "cluster": {"campaigns"},
    "cli": None,
}


def _unit(path: Path) -> str:
    rel = path.relative_to(PKG).parts
    if len(rel) == 1:
        name = rel[0][:-3]
        return "base" if name in BASE else name
    return rel[0]


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qpnn_hpc"):
            parts = node.module.split(".")
            if len(parts) == 1:  # from qpnn_hpc import x
                yield from (a.name for a in node.names)
            else:
                yield parts[1]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("qpnn_hpc."):
                    yield a.name.split(".")[1]


def test_subpackages_import_only_what_they_may():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        unit = _unit(path)
        allowed = ALLOWED.get(unit, set())
        if allowed is None:
            continue
        for target in _imports(path):
            t = "base" if target in BASE else target
            if t not in ({"base", unit} | allowed):
                bad.append(f"{path.relative_to(PKG)} imports qpnn_hpc.{target}")
    assert not bad, "\n".join(bad)


def test_every_subpackage_says_what_lives_there_and_what_it_may_import():
    for init in PKG.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "import" in doc and len(doc.splitlines()) <= 3, init
