#!/usr/bin/env python3
"""Download and verify every dataset the project uses, in one command.

Fetches the official files (MNIST's mnist.npz, the four Fashion-MNIST IDX files, CIFAR-10's
cifar-10-python.tar.gz, Caltech101's caltech-101.zip) into ~/.keras/datasets, or into --data-dir DIR laid out
as the scripts' --data-dir expects, and checks each against its published sha256 or MD5. Files already there
and valid are kept; a download that fails or does not match leaves nothing behind.

    python dataset/fetch.py                          # all four (about 330 MB)
    python dataset/fetch.py --only mnist,fashion_mnist --data-dir DIR
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: vaelab is one level up

from vaelab.cli import options as cli  # noqa: E402
from vaelab.cli.fetch import fetch_command  # noqa: E402

if __name__ == "__main__":
    cli.run(fetch_command)
