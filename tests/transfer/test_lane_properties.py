"""Property-based: the feature pass in lanes gives every readable file once, in file order, and reports the rest."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from zoo.transfer.features import _decoded_in_lanes, _numpy_normalise


class Tagger:
    """An engine whose 'features' are each image's first pixel: which file it came from, after normalisation."""

    def __init__(self, lanes):
        self.lanes = lanes

    def run_one(self, x):
        return x[:, 0, 0, 0].reshape(-1, 1).clone()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.booleans(), max_size=17), batch_size=st.integers(1, 7), lanes=st.integers(1, 4))
def test_lanes_keep_every_readable_file_once_in_order(tmp_path_factory, files, batch_size, lanes):
    folder = tmp_path_factory.mktemp("lanes")
    paths = []
    for i, readable in enumerate(files):
        path = folder / f"{i:02d}.png"
        if readable:
            Image.fromarray(np.full((4, 4, 3), 10 * i, dtype=np.uint8)).save(path)
        else:
            path.write_bytes(b"not a png")
        paths.append(path)
    got_feats, got_kept, skipped, done_seen = [], [], 0, []
    for done, feats, kept, bad in _decoded_in_lanes(paths, 3, (4, 4), batch_size, Tagger(lanes),
                                                    _numpy_normalise([0.0] * 3, [1.0] * 3)):
        done_seen.append(done)
        skipped += bad.total
        got_kept.extend(kept)
        if feats is not None:
            got_feats.extend(feats.flatten().tolist())
    want = [i for i, readable in enumerate(files) if readable]
    assert got_kept == want
    assert np.allclose(got_feats, [10 * i / 255 for i in want], atol=1e-6)  # each part's features, in order
    assert skipped == len(files) - len(want)
    assert done_seen == sorted(done_seen) and (not files or done_seen[-1] == len(files))
