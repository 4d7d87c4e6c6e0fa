#!/usr/bin/env python3
"""Preprocess Caltech101 into the cache the train scripts read: caltech101_<size>_<fit>.npz.

Reads the official caltech-101.zip, the inner 101_ObjectCategories.tar.gz or the extracted
101_ObjectCategories/ folder (found in --data-dir, $VAELAB_DATA_DIR or ~/.keras/datasets, or given with
--source); converts greyscale to RGB; resizes with antialiasing (Lanczos) to size x size, cropping the
central square (--fit crop, keeps the aspect ratio) or squashing the whole image (--fit squash); skips
and counts files that are not decodable images; leaves out BACKGROUND_Google unless --include-background.
Writes a compressed uint8 .npz with images, labels and class names, beside the source or in --cache-dir.

    python dataset/caltech101_preprocess.py --size 92 --fit crop --data-dir DIR
    python dataset/caltech101_preprocess.py --size 128 --source caltech-101.zip --cache-dir DIR
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: vaelab is one level up

from vaelab.data import caltech101
from vaelab.cli import options as cli  # noqa: E402


if __name__ == "__main__":
    cli.run(caltech101.preprocess_command)
