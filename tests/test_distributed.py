"""--strategy mirrored and multiworker really train on several replicas, on the CPU.

TensorFlow can only split the CPU into logical devices, or join a multi-worker cluster, before it initialises,
and this test session's TensorFlow is long initialised: each run is a fresh Python process.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest

from common import paths
from common.score_models import OUTPUT
from tests.conftest import TINY_SCORE

REPO_ROOT = paths.REPO_ROOT
TINY_DENSE = ["--arch", "dense", "--latent-dim", "16", "--epochs", "2", "--pca-segments", "64", "--batch-size", "16",
              "--preview-seconds", "0"]

# Runs scripts' main() in one process, first splitting the CPU into --cpus logical devices, and prints how
# many replicas each Keras fit() really ran on.
RUNNER = textwrap.dedent("""
    import json, sys
    import tensorflow as tf

    cpus = int(sys.argv[1])
    if cpus > 1:
        tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                                   [tf.config.LogicalDeviceConfiguration()] * cpus)
    import keras
    original_fit = keras.Model.fit

    def reporting_fit(model, *args, **kwargs):
        print(f"fit of {model.name} on {model.distribute_strategy.num_replicas_in_sync} replicas", flush=True)
        return original_fit(model, *args, **kwargs)

    keras.Model.fit = reporting_fit
    for script, argv in json.loads(sys.argv[2]):
        __import__(script).main(argv)
""")


def start(runs, cpus=1, env=None):
    """A Python process running [(script module, argv), ...] through RUNNER, stdout and stderr together."""
    environment = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    environment.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", **(env or {}))
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(cpus), json.dumps(runs)], cwd=REPO_ROOT,
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process, timeout=240):
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"timed out after {timeout} s:\n{output[-3000:]}")
    return process.returncode, output


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def model_files(models_dir):
    return sorted(path.name for path in models_dir.glob("*.keras"))


def test_mirrored_strategy_trains_autoencoder_and_score_model_on_two_cpu_replicas(pipeline, tmp_path):
    # The score model trains beside a copy of the session's autoencoder, which made its score dataset.
    score_models = tmp_path / "score-models"
    score_models.mkdir()
    for name in ("autoencoder.json", "encoder.keras", "decoder.keras"):
        shutil.copy(pipeline["models"] / name, score_models / name)
    data = ["--data-dir", str(pipeline["data"])]
    status, output = finish(start([
        ("autoencode", data + ["--models-dir", str(tmp_path / "ae-models"), "--strategy", "mirrored"] + TINY_DENSE),
        ("conv1d_creater", data + ["--models-dir", str(score_models), "--strategy", "mirrored", "--filters", "8"]
         + TINY_SCORE),
    ], cpus=2))
    assert status == 0, output[-3000:]
    assert "dense autoencoder: " in output and ", 2 replicas" in output
    assert "fit of autoencoder on 2 replicas" in output and "fit of conv1d on 2 replicas" in output
    assert model_files(tmp_path / "ae-models") == ["autoencoder.keras", "decoder.keras", "encoder.keras"]
    assert "conv1d.keras" in model_files(score_models)
    record = json.loads(paths.model_record_path(score_models, "conv1d").read_text())
    assert record["args"]["strategy"] == "mirrored" and record["output"] == OUTPUT
    assert record["validation_ranking"]["model"]["queries"] > 0


def test_two_multiworker_processes_train_together_and_only_the_chief_saves(pipeline, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        argv = ["--data-dir", str(pipeline["data"]), "--models-dir", str(tmp_path / f"worker{index}"),
                "--strategy", "multiworker"] + TINY_DENSE
        workers.append(start([("autoencode", argv)], env={"TF_CONFIG": config}))
    results = [finish(worker) for worker in workers]
    for status, output in results:
        assert status == 0, output[-3000:]
        assert "fit of autoencoder on 2 replicas" in output  # one CPU replica on each of the two workers
    # Worker 0 is the chief: it saves the model and its record; worker 1 trained the same model but kept nothing.
    chief, other = tmp_path / "worker0", tmp_path / "worker1"
    assert model_files(chief) == ["autoencoder.keras", "decoder.keras", "encoder.keras"]
    record = json.loads(paths.model_record_path(chief, "autoencoder").read_text())
    assert record["args"]["strategy"] == "multiworker" and record["epochs_run"] >= 1
    assert model_files(other) == [] and not paths.model_record_path(other, "autoencoder").exists()
    assert "the chief saves the model" in results[1][1]
