"""The 1000 ImageNet-1k class names, read from the data files timm ships (torch-free).

timm keeps the class list as text (``timm/data/_info/``); importing
``timm.data`` would import torch, so the files are found through the import
system without running timm's code.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

SYNSETS = "imagenet_synsets.txt"  # the 1000 WordNet ids, in class-index order
LEMMAS = "imagenet_synset_to_lemma.txt"  # "n01440764<TAB>tench, Tinca tinca"


def _info_dir() -> Path:
    spec = find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("timm is not installed; zoo depends on it: pip install timm")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "_info"


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """``("tench, Tinca tinca", "goldfish, Carassius auratus", ...)``: timm's ImageNetInfo descriptions.

    A description two classes share gets the class's WordNet id appended, so every name is unique.
    """
    folder = _info_dir()
    synsets = (folder / SYNSETS).read_text(encoding="utf-8").split()
    wanted = set(synsets)
    lemmas = {}
    with open(folder / LEMMAS, encoding="utf-8") as handle:
        for line in handle:
            synset, _, lemma = line.rstrip("\n").partition("\t")
            if synset in wanted:
                lemmas[synset] = lemma
    names = [lemmas.get(s, s) for s in synsets]
    # Two classes share a description ("crane": the bird and the machine); the WordNet id tells them apart.
    repeated = {n for n, count in Counter(names).items() if count > 1}
    names = tuple(f"{n} ({s})" if n in repeated else n for n, s in zip(names, synsets))
    if len(names) != 1000:
        raise ValueError(f"timm's {SYNSETS} lists {len(names)} classes, expected 1000")
    return names
