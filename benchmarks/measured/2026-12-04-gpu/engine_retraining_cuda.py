"""Retraining N networks one epoch on MNIST, sequential vs stacked, on the GPU.
The project's benchmarks/perf_engine.retraining with the net moved to the device and MNIST data.
Usage (from the project root): python engine_retraining_cuda.py DEVICE N_TRAIN COUNTS"""
import sys
import time

sys.path.insert(0, "benchmarks")
import perf_engine as pe

device, n_train = sys.argv[1], int(sys.argv[2])
counts = tuple(int(c) for c in sys.argv[3].split(","))
_net = pe._net
pe._net = lambda ensemble=2: _net(ensemble).set_params(device=device)

def _data(n_train, n_test):
    from structnoise.datasets import load_mnist
    X, y, Xt, yt = load_mnist()
    return X[:n_train], y[:n_train], Xt[:n_test], yt[:n_test]
pe._data = _data
t = time.time()
rows = pe.retraining(n_train, counts, repeats=2)
pe.print_table(rows, f"Retraining N networks one epoch on {n_train} MNIST images, {device}")
print(f"total {time.time() - t:.1f} s")
