"""structnoise.evaluation.store: nothing lost, nothing mixed, damage found and recomputed."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from evaluation_helpers import make_experiment, same_rows

from structnoise.evaluation.store import ResultStore, read_sealed, write_atomic

TESTS = Path(__file__).parent



@pytest.fixture(scope="module")
def reference(digits_data):
    exp = make_experiment(structures=("none", "full", "isotropic"))
    return exp.run(*digits_data)


def test_write_atomic_leaves_a_whole_file_or_none(tmp_path):
    path = tmp_path / "rows.csv"
    write_atomic(str(path), lambda fh: fh.write(b"first"))

    def broken(fh):
        fh.write(b"half of the sec")
        raise KeyboardInterrupt("killed mid-write")

    with pytest.raises(KeyboardInterrupt):
        write_atomic(str(path), broken)
    assert path.read_text() == "first"            # the old file, whole
    assert os.listdir(tmp_path) == ["rows.csv"]   # no temporary file left behind


def test_every_network_is_stored_as_it_finishes(digits_data, reference, tmp_path):
    exp = make_experiment(structures=("none", "full", "isotropic"), store=tmp_path)
    rows = exp.run(*digits_data)
    same_rows(rows, reference)
    root = tmp_path / exp.config_hash_
    assert len(list((root / "networks").glob("*.csv"))) == len(exp.plan_)
    assert [p.name for p in (root / "bases").iterdir()] == ["seed0.pt"]
    again = make_experiment(structures=("none", "full", "isotropic"), store=tmp_path)
    same_rows(again.run(*digits_data), reference)
    assert again.n_networks_trained_ == 0


def test_damaged_files_are_named_recomputed_and_the_rows_unchanged(digits_data, reference,
                                                                   tmp_path):
    exp = make_experiment(structures=("none", "full", "isotropic"), store=tmp_path)
    exp.run(*digits_data)
    root = tmp_path / exp.config_hash_
    networks = sorted((root / "networks").glob("*.csv"))
    # a half-written row (as an older, appending store could leave), a file
    # with no rows, a torn base network, and a temporary file of a killed run
    text = networks[0].read_text()
    networks[0].write_text(text[: len(text) * 2 // 3])
    networks[1].write_text("")
    (root / "bases" / "seed0.pt").write_bytes(b"PK\x03\x04 not a whole zip archive")
    (root / "networks" / ".tmp-killed").write_text("seed,noise")
    again = make_experiment(structures=("none", "full", "isotropic"), store=tmp_path)
    with pytest.warns(RuntimeWarning, match="is damaged") as record:
        rows = again.run(*digits_data)
    named = " ".join(str(w.message) for w in record)
    assert networks[0].name in named and networks[1].name in named and "seed0.pt" in named
    assert again.n_networks_trained_ == 3  # the base network and the two damaged ones
    same_rows(rows, reference)
    assert not rows.accuracy.isna().any()
    assert not (root / "networks" / ".tmp-killed").exists()


def test_in_memory_store_round_trips_the_types():
    store = ResultStore(None, "abc")
    assert not store.persistent and store.load_base(0) is None
    assert store.load_network(("missing",)) is None


_KILLED_RUN = textwrap.dedent("""
    import sys, time
    from evaluation_helpers import digits, make_experiment
    digits_data = digits()
    exp = make_experiment(structures=("none", "full", "isotropic"), seeds=(0, 1),
                          store=sys.argv[1])
    print("ready", flush=True)
    t0 = time.perf_counter()
    rows = exp.run(*digits_data)
    rows.to_csv(sys.argv[2], index=False)
    print("work", time.perf_counter() - t0, flush=True)
""")


def _run(store, out, env):
    return subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(store), str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_runs_killed_at_random_points_finish_with_the_uninterrupted_rows(tmp_path):
    """SIGKILL a run at least 5 times at random points, rerun to the end: same rows."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    proc = _run(tmp_path / "straight", tmp_path / "straight.csv", env)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    work = float(out.split("work")[1])  # seconds of the run itself, imports excluded
    store = tmp_path / "killed"
    n_files = 2 + 10  # two base networks and ten networks

    def stored():
        return len(list(store.glob("*/bases/*.pt"))) + len(list(store.glob("*/networks/*.csv")))

    rng = np.random.default_rng(0)
    kills, tries, progress = 0, 0, []
    while kills < 6 and tries < 12:
        tries += 1
        proc = _run(store, tmp_path / "killed.csv", env)
        assert proc.stdout.readline().strip() == "ready"
        # a random point of the work: once a random number of files is stored,
        # then a random delay (into the next base network, pairs, retraining or
        # evaluation in flight)
        # targets spread over the run: the k-th kill lands in its k-th sixth
        target = int((kills + rng.uniform()) * (n_files - 1) / 6)
        deadline = time.perf_counter() + 10 * work + 30
        while stored() < target and proc.poll() is None and time.perf_counter() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, work / n_files))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            kills += 1
            progress.append(stored())
        else:  # it finished before the kill
            proc.communicate(timeout=60)
            break
    assert kills >= 5, f"only {kills} runs were killed in {tries} tries"
    # what is stored never goes back: a kill loses only the work in flight
    assert progress == sorted(progress)
    proc = _run(store, tmp_path / "killed.csv", env)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    straight = pd.read_csv(tmp_path / "straight.csv")
    resumed = pd.read_csv(tmp_path / "killed.csv")
    assert len(resumed) == len(straight)
    assert not resumed.duplicated(["seed", "noise_label", "structure", "trace_scale",
                                   "eval_label", "eval_protocol"]).any()
    assert not resumed.accuracy.isna().any()
    same_rows(resumed.fillna({"eval_strength_unit": ""}),
              straight.fillna({"eval_strength_unit": ""}))
    print(f"kill test: {kills} kills, stored files (of {n_files}) after each: {progress}, "
          f"uninterrupted run {work:.1f} s")


def test_written_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "a.csv"
    write_atomic(str(path), lambda fh: fh.write(b"x"))
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~mask


def _one_row_store(tmp_path):
    from structnoise.evaluation import COLUMNS

    store = ResultStore(str(tmp_path), "abc")
    row = dict.fromkeys(COLUMNS, 0) | {"eval_label": "fgsm", "eval_protocol": "eot",
                                       "n_images": 20, "accuracy": 0.05}
    store.save_network(("k",), [row])
    return store, row


def test_a_file_cut_at_any_byte_of_its_last_line_is_detected(tmp_path):
    """A cut inside the last accuracy field once read back as 0.0 instead of 0.05."""
    store, row = _one_row_store(tmp_path)
    (path,) = (tmp_path / "abc" / "networks").glob("*.csv")
    whole = path.read_bytes()
    last_line = whole.rstrip(b"\n").rfind(b"\n") + 1
    data_line = whole[:last_line - 1].rstrip(b"\n").rfind(b"\n") + 1
    for cut in range(data_line, len(whole)):  # the last row and the seal line
        store.save_network(("k",), [row])
        path.write_bytes(whole[:cut])
        with pytest.warns(RuntimeWarning, match=f"{path.name} is damaged"):
            assert store.load_network(("k",), 1) is None, cut
        assert not path.exists(), cut  # removed: the network is computed again
    # an altered digit, the length unchanged: the checksum finds it
    store.save_network(("k",), [row])
    path.write_bytes(whole.replace(b",0.05,", b",0.00,"))
    with pytest.warns(RuntimeWarning, match="checksum does not match"):
        assert store.load_network(("k",), 1) is None
    store.save_network(("k",), [row])
    rows, _, _ = store.load_network(("k",), 1)
    assert rows.accuracy.tolist() == [0.05]


def test_a_cut_network_file_is_recomputed_by_the_next_run(digits_data, reference, tmp_path):
    exp = make_experiment(structures=("none", "full", "isotropic"), store=tmp_path)
    exp.run(*digits_data)
    root = tmp_path / exp.config_hash_
    path = sorted((root / "networks").glob("*.csv"))[0]
    path.write_bytes(path.read_bytes()[:-30])  # into the seal line
    again = make_experiment(structures=("none", "full", "isotropic"), store=tmp_path)
    with pytest.warns(RuntimeWarning, match=f"{path.name} is damaged"):
        rows = again.run(*digits_data)
    assert again.n_networks_trained_ == 1
    same_rows(rows, reference)


def test_a_damaged_base_whose_networks_are_all_stored_is_named_and_trained_again(
        digits_data, reference, tmp_path):
    exp = make_experiment(structures=("none", "full", "isotropic"), store=tmp_path)
    exp.run(*digits_data)
    base = tmp_path / exp.config_hash_ / "bases" / "seed0.pt"
    whole = base.read_bytes()
    base.write_bytes(whole[:len(whole) // 2])
    again = make_experiment(structures=("none", "full", "isotropic"), store=tmp_path)
    with pytest.warns(RuntimeWarning, match="seed0.pt is damaged"):
        rows = again.run(*digits_data)
    assert again.n_networks_trained_ == 1  # the base alone: every network was stored
    assert base.read_bytes() == whole  # trained again to the same weights
    same_rows(rows, reference)


_STACK_RUN = textwrap.dedent("""
    import sys, time
    import structnoise.evaluation.stacked as stacked

    step = stacked._train_step

    def slow_step(*args):  # slow enough for a kill to land inside the retraining
        time.sleep(0.02)
        return step(*args)

    stacked._train_step = slow_step
    import torch
    from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
    from structnoise.evaluation import Experiment
    from structnoise.evaluation.presets import _digits28
    from structnoise.models import PaperCNN
    from structnoise.sources import GaussianNoise

    net = NoisyNeuralNetClassifier(PaperCNN, optimizer=torch.optim.Adam, lr=1e-3, batch_size=64,
                                   train_split=None, noise_ensemble=2, verbose=0)
    exp = Experiment(net, "body.tanh2", [GaussianNoise(0.3)], [GaussianNoise(0.3)],
                     noise=StructuredNoiseFitter(shrinkage=None, reg_covar=1e-4),
                     protocols=("paper",), seeds=(0,), base_epochs=1, noise_epochs=5,
                     engine="stacked", store=sys.argv[1], verbose=0)
    rows = exp.run(*_digits28(320, 40)())
    rows.to_csv(sys.argv[2], index=False)
""")


@pytest.mark.slow
def test_kills_inside_a_seeds_stacked_retraining_make_progress(tmp_path):
    """SIGKILL inside the retraining, after one more finished epoch each time: no kill loses
    a finished epoch, and the rerun ends with the rows of a run never killed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]))

    def run(store, out):
        return subprocess.Popen([sys.executable, "-c", _STACK_RUN, str(store), str(out)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    proc = run(tmp_path / "straight", tmp_path / "straight.csv")
    assert proc.wait(timeout=600) == 0, proc.communicate()[1]
    store = tmp_path / "killed"

    def epoch():
        paths = list(store.glob("*/checkpoints/stack-seed0.pt"))
        if not paths:
            return -1
        # read, not through a ResultStore: opening one clears the run's temporary files
        try:
            state = torch.load(io.BytesIO(read_sealed(str(paths[0]))), weights_only=True)
        except (OSError, ValueError):  # replaced between the glob and the read
            return -1
        return state["epoch"]

    reached = []
    for target in (0, 1, 2):
        proc = run(store, tmp_path / "killed.csv")
        deadline = time.perf_counter() + 300
        while epoch() < target and proc.poll() is None and time.perf_counter() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before its kill"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        reached.append(epoch())
    # each rerun started from the last checkpoint and finished one more epoch
    assert reached == sorted(reached) and reached[-1] >= 2 and len(set(reached)) == 3
    proc = run(store, tmp_path / "killed.csv")
    assert proc.wait(timeout=600) == 0, proc.communicate()[1]
    assert epoch() == -1  # removed once the seed's networks are stored
    same_rows(pd.read_csv(tmp_path / "killed.csv").fillna({"eval_strength_unit": ""}),
              pd.read_csv(tmp_path / "straight.csv").fillna({"eval_strength_unit": ""}))
