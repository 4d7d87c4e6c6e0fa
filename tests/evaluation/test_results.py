"""The results table is built from the eval/speed JSON files alone, with the numbers as written."""

import json

from conftest import run_script
from vaelab.evaluation import results


def test_training_speed_parses_what_fit_prints():
    out = "…\ntrained 60 epochs in 612.4 s (10.21 s/epoch, 5879 samples/s)\nsaved models/x_vae.h5\n"
    assert results.training_speed(out) == {"epochs": 60, "seconds": 612.4, "samples_per_s": 5879}
    assert results.training_speed("nothing") is None


def test_table_from_eval_files(tmp_path):
    base = {"dataset": "mnist_binarized", "model": "bin_a", "params": {"epochs": 130}, "test_images": 10000,
            "elbo_nats": -90.5, "reconstruction_nats": 65.25, "kl_nats": 25.25, "k": 5000, "iwae_nll_nats": 86.125,
            "iwae_bits_per_dim": 0.1585, "binary_data": True, "fid": 3.5, "fid_samples": 10000,
            "fid_train_vs_test": 0.25, "classifier_accuracy_reconstructions": 0.97}
    (tmp_path / "bin_a_eval.json").write_text(json.dumps(base))
    (tmp_path / "bin_a_speed.json").write_text(json.dumps({"samples_per_s": 4321}))
    grey = {**base, "dataset": "mnist", "model": "ld_2", "binary_data": False, "k": 100, "fid": None}
    (tmp_path / "ld_2_eval.json").write_text(json.dumps(grey))
    subset = {**base, "test_images": 2000, "k": 1000, "fid": None}
    (tmp_path / "bin_a_eval_k1000_first2000.json").write_text(json.dumps(subset))
    cifar = {**base, "dataset": "cifar10", "model": "c_dmol", "binary_data": False, "k": 100, "fid": None,
             "likelihood": "discretized_logistic_log_likelihood", "iwae_nll_nats": 9000.0}
    (tmp_path / "c_dmol_eval.json").write_text(json.dumps(cifar))
    table = results.markdown_table(results.table_rows(tmp_path))
    assert "| cifar10 | c_dmol | 130 | 10000 | 90.50 = 65.25 + 25.25 | 9000.00 (k = 100) | 0.1585 |" in table  # no mark
    assert "discrete likelihoods" not in table  # no Gaussian row, no ‡ note
    fashion = {**cifar, "dataset": "fashion_mnist", "model": "f", "likelihood": "gaussian_log_likelihood(sigma=0.2)"}
    (tmp_path / "f_eval.json").write_text(json.dumps(fashion))
    with_fashion = results.markdown_table(results.table_rows(tmp_path))
    assert "9000.00 (k = 100) ‡ | – |" in with_fashion and "‡ a Gaussian density" in with_fashion
    (tmp_path / "f_eval.json").unlink()
    table = "\n".join(line for line in table.splitlines() if "c_dmol" not in line)
    lines = table.splitlines()
    assert lines[2].startswith("| mnist | ld_2 | 130 | 10000 | 90.50 = 65.25 + 25.25 | 86.12 (k = 100) † |")
    assert lines[3].startswith("| mnist_binarized | bin_a | 130 | 2000 | 90.50 = 65.25 + 25.25 | 86.12 (k = 1000) |")
    assert lines[3].endswith("| – | 0.9700 | 4321 |")  # the model's speed file serves every row of it
    assert lines[4] == ("| mnist_binarized | bin_a | 130 | 10000 | 90.50 = 65.25 + 25.25 | 86.12 (k = 5000) | "
                        "0.1585 | 3.50 (0.25), n = 10000 | 0.9700 | 4321 |")
    assert "cross-entropy, not a likelihood" in table


def test_dry_run_lists_the_commands(capsys):
    assert run_script("make_results.py", "--dry-run", "--data-dir", "D") == 0
    out = capsys.readouterr().out
    assert out.count("== ") == len(results.STEPS)
    assert "python evaluate.py --dataset mnist_binarized --epochs 60 --k 1000 --fid --quiet --data-dir D" in out


def test_only_runs_the_matching_steps(capsys):
    assert run_script("make_results.py", "--dry-run", "--only", "caltech101 128") == 0
    out = capsys.readouterr().out
    assert out.count("== ") == 3 and "caltech101_128_train.py --epochs 5" in out
    assert "--size 128 --epochs 5" in out


def test_steps_after_a_training_step_name_the_same_model():
    """An option a train step gets (epochs, latent size, reconstruction) must reach the steps that read its
    model, or they would look for a model of another name."""
    for i, step in enumerate(results.STEPS):
        if not step.training:
            continue
        options = step.argv[1:]
        for later in results.STEPS[i + 1:]:
            if later.training:
                break
            argv = " ".join(later.argv)
            assert " ".join(options) in argv, (step.name, later.name)
