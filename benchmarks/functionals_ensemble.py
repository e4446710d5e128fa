"""Benchmark: seed 002 CNN trainings per hour, one at a time vs batched ensembles (CPU).

    python benchmarks/functionals_ensemble.py [--epochs 300] [--K 10 50 200] [--single 3]
                                              [--repeats 2] [--cache atoms.npz] [--compare]

The seed's final-training setting: atoms training split (100 systems, solved here with
qpnn_hpc.exact1d; the 81 test systems are scored at the end), 80/20 fit/validation, batch
50, lr 0.00256, T[V]; ``--epochs`` fewer than the seed's 300 for a quick run (the work per
epoch is constant, so the ratios hold).

* one at a time, all threads: one model trained alone by the training loop of
  ``qpnn_hpc.functionals.train`` in the main thread with torch's default intra-op threads
  (both cores): the conventional way, run ``--single`` times.
* one at a time, ``train_batch([spec])``: K = 1 as the library runs it (one thread per model).
* batched: one ``train_batch`` of K specs (repeats 0..K-1), default chunks and workers.

Each measurement is repeated ``--repeats`` times (interleaved) and the fastest is kept: the
machine may be shared. Prints models per hour (scaled to 300 epochs) and the ratio to one
at a time with all threads. ``--compare`` first times one forward + backward step of four
ways to batch K models (one thread, CPU time).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from qpnn_hpc.exact1d.dataset import dataset_specs, solve_system  # noqa: E402
from qpnn_hpc.functionals import cnn, train  # noqa: E402
from qpnn_hpc.functionals.train import FunctionalSpec, Profiles, train_batch  # noqa: E402


def atoms_profiles(cache: str | None) -> Profiles:
    if cache and os.path.exists(cache):
        d = np.load(cache)
        return Profiles(d["x"], {k[6:]: d[k] for k in d.files if k.startswith("train_")},
                        {k[5:]: d[k] for k in d.files if k.startswith("test_")})
    t0 = time.perf_counter()
    res = {s: [solve_system(sp) for sp in dataset_specs("atoms", s)] for s in ("train", "test")}
    prof = Profiles.from_solutions(dataset_specs("atoms", "train")[0].grid(), res["train"], res["test"])
    print(f"solved the atoms dataset (181 systems) in {time.perf_counter() - t0:.1f} s")
    if cache:
        np.savez(cache, x=prof.x, **{f"train_{k}": v for k, v in prof.train.items()},
                 **{f"test_{k}": v for k, v in prof.test.items()})
    return prof


def specs(K: int, epochs: int, offset: int = 0) -> list:
    return [FunctionalSpec("atoms.h5", "atoms", "V", "T", lr=0.00256, batch_size=50, epochs=epochs,
                           validation=0.2, repeat=offset + r) for r in range(K)]


def one_at_a_time_all_threads(prof, n: int, epochs: int) -> float:
    """Seconds per model: the library's training loop for one model, in this thread, all threads."""
    t0 = time.perf_counter()
    for s in specs(n, epochs, offset=10_000):
        parts = [train._partition(s, prof.train["V"].shape[0])]
        fit = parts[0][0]
        scale = train._scale(prof.train["V"][fit], prof.train["T"][fit])[None]
        train._train_chunk([s], parts, scale, prof, "cpu")
    return (time.perf_counter() - t0) / n


def one_at_a_time(prof, n: int, epochs: int) -> float:
    t0 = time.perf_counter()
    for s in specs(n, epochs, offset=20_000):
        train_batch([s], prof)
    return (time.perf_counter() - t0) / n


def batched(prof, K: int, epochs: int, **kw) -> float:
    t0 = time.perf_counter()
    train_batch(specs(K, epochs), prof, **kw)
    return (time.perf_counter() - t0) / K


# --- ways to batch K models, for --compare ------------------------------------------------

def _dense(params, h):
    h = F.relu(torch.baddbmm(params["b3"].unsqueeze(1), h, params["w3"]))
    h = F.relu(torch.baddbmm(params["b4"].unsqueeze(1), h, params["w4"]))
    return torch.baddbmm(params["b5"].unsqueeze(1), h, params["w5"]).squeeze(-1)


def stacked_forward(params, x):
    """Stacked parameters (K, ...): per-model convolutions, dense layers as batched products."""
    w1, b1, w2, b2 = (params[n].unbind(0) for n in ("w1", "b1", "w2", "b2"))
    feats = [F.relu(F.conv1d(F.relu(F.conv1d(x[k].unsqueeze(1), w1[k], b1[k])), w2[k], b2[k])).flatten(1)
             for k in range(x.shape[0])]
    return _dense(params, torch.stack(feats))


def grouped_forward(params, x):
    """Stacked parameters: grouped convolutions (groups = K) on (B, K * channels, L), batched dense layers."""
    K, B, _ = x.shape
    c1, c2 = cnn.FILTERS
    h = x.transpose(0, 1)
    h = F.relu(F.conv1d(h, params["w1"].reshape(K * c1, 1, cnn.WIDTH), params["b1"].reshape(-1), groups=K))
    h = F.relu(F.conv1d(h, params["w2"].reshape(K * c2, c1, cnn.WIDTH), params["b2"].reshape(-1), groups=K))
    return _dense(params, h.reshape(B, K, -1).transpose(0, 1))


def vmap_forward(params, x):
    """Stacked parameters: torch.func.vmap of the single-model forward."""
    return torch.func.vmap(cnn.forward)(params, x)


def compare_implementations(K_values=(1, 8, 32), B=50, L=169, steps=4, repeats=5):
    """CPU ms per model for forward + backward of a batch of B profiles (one thread, best of
    ``repeats``; CPU time is robust to other jobs on the machine)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    for K in K_values:
        members = [cnn.init_parameters(L, torch.Generator().manual_seed(k)) for k in range(K)]
        stacked = {n: torch.stack([m[n] for m in members]).requires_grad_() for n in members[0]}
        for m in members:
            for p in m.values():
                p.requires_grad_()
        x, y = torch.randn(K, B, L), torch.randn(K, B)
        xs, ys = [x[k].clone() for k in range(K)], [y[k].clone() for k in range(K)]

        def separate():
            losses = [((cnn.forward(m, xk) - yk) ** 2).mean() for m, xk, yk in zip(members, xs, ys)]
            torch.stack(losses).sum().backward()

        def stacked_with(f):
            return lambda: ((f(stacked, x) - y) ** 2).mean(1).sum().backward()

        ways = {"separate (chosen)": separate, "stacked conv + bmm": stacked_with(stacked_forward),
                "grouped conv": stacked_with(grouped_forward), "vmap": stacked_with(vmap_forward)}
        best = dict.fromkeys(ways, np.inf)
        for r in range(repeats):
            for name in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
                for t in list(stacked.values()) + [p for m in members for p in m.values()]:
                    t.grad = None
                ways[name]()
                t0 = time.process_time()
                for _ in range(steps):
                    ways[name]()
                best[name] = min(best[name], (time.process_time() - t0) / steps / K)
        print(f"  K = {K:2d}, CPU ms per model and step: "
              + " | ".join(f"{n} {t * 1e3:5.2f}" for n, t in best.items()), flush=True)
    torch.set_num_threads(saved)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--K", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--single", type=int, default=3, help="one-at-a-time runs (per-model time extrapolated)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--chunk", type=int, default=None)
    ap.add_argument("--cache", default=None, help="npz file to keep the solved atoms dataset in")
    ap.add_argument("--compare", action="store_true")
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"epochs {args.epochs}, best of {args.repeats}")
    if args.compare:
        compare_implementations()
    prof = atoms_profiles(args.cache)
    train_batch(specs(2, 2), prof)                      # warm up
    t = {"all threads": np.inf, "train_batch": np.inf, **{K: np.inf for K in args.K}}
    for _ in range(args.repeats):
        t["all threads"] = min(t["all threads"], one_at_a_time_all_threads(prof, args.single, args.epochs))
        t["train_batch"] = min(t["train_batch"], one_at_a_time(prof, args.single, args.epochs))
        for K in args.K:
            t[K] = min(t[K], batched(prof, K, args.epochs, workers=args.workers, chunk=args.chunk))
    base = t["all threads"]
    names = {"all threads": "one at a time, all threads", "train_batch": "one at a time, train_batch"}
    for key, sec in t.items():
        sec300 = sec * 300 / args.epochs
        print(f"{names.get(key, f'batched K = {key}'):>28}: {sec300:6.2f} s per model at 300 epochs, "
              f"{3600 / sec300:6.0f} models/h, x{base / sec:4.2f}", flush=True)


if __name__ == "__main__":
    main()
