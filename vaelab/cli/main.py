"""The ``vaelab`` command (installed by ``pip install .``): the scripts' jobs from any folder.

::

    vaelab train mnist --preset mnist2d       # = python mnist_train.py --preset mnist2d
    vaelab evaluate --dataset mnist --k 100   # = python evaluate.py …
    vaelab generate cifar10 --no-prompt       # = python cifar10_generate.py …
    vaelab fetch --only mnist                 # = python dataset/fetch.py …
    vaelab explore mnist --web                # the live explorer alone (vaelab.cli.explore)

Every flag after the job is the script's own. A params module of the dataset's name (``mnist_params.py``) in
the current folder is read as the scripts read it; without one the params' defaults apply.
"""

from __future__ import annotations

import sys

from vaelab.cli import options as cli

JOBS = ("train", "evaluate", "generate", "explore", "fetch")
USAGE = ("usage: vaelab {train,generate,explore} DATASET [flags] | vaelab evaluate [flags] | vaelab fetch [flags]\n"
         "       (vaelab JOB --help for the flags of a job)")


def _experiment(job: str, argv: list[str]):
    from vaelab.config import experiments, paramsfile
    from vaelab.core.errors import UserError

    names = sorted(experiments.DATASETS)
    if not argv or argv[0].startswith("-"):
        raise UserError(f"vaelab {job} needs a dataset first: one of {', '.join(names)}")
    if argv[0] not in experiments.DATASETS:
        raise UserError(f"vaelab {job}: unknown dataset {argv[0]!r}; choose among {', '.join(names)}")
    exp = experiments.DATASETS[argv[0]]
    return exp, paramsfile.read_module(exp.params_module, missing_ok=True), argv[1:]


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in JOBS:
        print(USAGE, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    job, rest = argv[0], argv[1:]
    if job in ("train", "explore"):
        if job == "train":
            from vaelab.cli.train import train_command as command
        else:
            from vaelab.cli.explore import explore_command as command

        def run_dataset_job(rest):
            exp, module, flags = _experiment(job, rest)
            return command(exp, module, flags)

        cli.run(run_dataset_job, argv=rest)
    elif job == "generate":
        from vaelab.cli.generate import image_generate_command

        def run_generate(rest):
            from vaelab.core.errors import UserError

            exp, _, flags = _experiment("generate", rest)
            if exp.name in ("mnist", "fashion_mnist"):
                script = "mnist_generate.py" if exp.name == "mnist" else "fashion_mnist_morph.py"
                raise UserError(f"vaelab generate covers the image datasets; for {exp.name} run {script}")
            side = exp.image_shape[0]
            return image_generate_command({side: (exp, exp.params_module)}, 15, __doc__, flags)

        cli.run(run_generate, argv=rest)
    elif job == "evaluate":
        from vaelab.cli.evaluate import evaluate_command

        cli.run(evaluate_command, argv=rest)
    else:
        from vaelab.cli.fetch import fetch_command

        cli.run(fetch_command, argv=rest)


if __name__ == "__main__":
    main()
