"""vaelab.evaluation.evaluate: the command recorded in ``<prefix>_eval.json`` names no folder of the machine it ran on."""

from vaelab.cli import options as cli
from vaelab.cli.evaluate import shareable_command


def test_recorded_command_writes_machine_paths_as_dir():
    argv = ["--dataset", "mnist", "--k", "100", "--fid", "--quiet", "--data-dir", "/work/data",
            "--models-dir", "/home/ada/vaelab/models", "--results-dir=/tmp/r", "--model", "~/m/ld_2_id_512_e_60",
            "--out", "../shared/eval.json"]
    assert shareable_command(argv) == ("python evaluate.py --dataset mnist --k 100 --fid --quiet --data-dir DIR "
                                       "--models-dir DIR --results-dir=DIR --model DIR --out DIR")


def test_relative_paths_prefixes_and_other_options_stay():
    argv = ["--dataset", "mnist_binarized", "--data-dir", "data", "--models-dir", "models", "--model",
            "bin_ld_50_h_500-500_e_130", "--out", "models/bin_eval_k5000.json", "--latent-dim", "3"]
    assert shareable_command(argv) == "python evaluate.py " + " ".join(argv)


def test_only_path_options_are_hidden():
    # a value that merely looks like a path stays when its option names no folder; Windows and $HOME paths go
    assert cli.shareable_argv(["--z", "/1", "--data-dir", "C:\\data", "--models-dir", "$HOME/m"]) == [
        "--z", "/1", "--data-dir", "DIR", "--models-dir", "DIR"]
    assert cli.is_machine_path("/x") and cli.is_machine_path("a/../../b") and not cli.is_machine_path("models/x")
