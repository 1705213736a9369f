"""zoo.data.table: a CSV of images behaves like the same images in class folders; bad tables are reported."""

from __future__ import annotations

import csv

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.data import find_layout, load_image_data
from zoo.data.folder import eval_files
from zoo.data.table import TableColumns, read_table
from zoo.errors import DataError
from zoo.testing import make_image_folder

FAST = dict(progress=False, plot=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    return make_image_folder(root, ("red", "green", "blue"), per_class=8, size=32)


def write_table(path, rows, header=("path", "label"), delimiter=","):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def folder_rows(folder, shuffle=True):
    """(relative path, class) of every image of ``folder``, in an order unlike the folder's."""
    rows = [(str(p.relative_to(folder)), p.parent.name) for p in sorted(folder.glob("*/*.png"))]
    return rows[::-1] if shuffle else rows


def test_table_gives_the_folders_samples_and_split(folder):
    table = write_table(folder / "labels.csv", folder_rows(folder))
    by_folder = find_layout(folder, val_split=0.25, seed=3)
    by_table = find_layout(table, val_split=0.25, seed=3)
    assert by_table.class_names == by_folder.class_names == ["blue", "green", "red"]
    assert by_table.train.paths == by_folder.train.paths and by_table.train.labels == by_folder.train.labels
    assert by_table.val.paths == by_folder.val.paths and by_table.val.labels == by_folder.val.labels
    # The same validation rows, marked in an is_valid column (TSV this time), give the same split.
    val = set(by_folder.val.paths)
    rows = [(p, c, int(folder / p in val)) for p, c in folder_rows(folder)]
    marked = find_layout(write_table(folder / "marked.tsv", rows, ("file", "class", "is_valid"), "\t"))
    assert marked.presplit and marked.val.paths == by_folder.val.paths and marked.train.paths == by_folder.train.paths


def test_a_table_trains_exactly_like_its_folders(folder, tmp_path):
    from zoo.train import evaluate, fit

    table = write_table(folder / "labels.csv", folder_rows(folder))
    opts = dict(epochs=2, lr=0.05, batch_size=8, val_split=0.25, seed=1, **FAST)
    a = fit("net", str(folder), out=tmp_path / "folder", **opts)
    b = fit("net", str(table), out=tmp_path / "table", **opts)
    assert a.history[-1]["val_acc"] == b.history[-1]["val_acc"] > 0.6  # chance is 1/3
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    wa, wb = zoo_weights(a.best_path), zoo_weights(b.best_path)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # Scoring a table: every row when it marks no validation rows; mistakes read its labels as folders.
    assert evaluate(b.best_path, str(table)).accuracy == evaluate(b.best_path, str(folder)).accuracy
    from zoo.train.confident import confident_mistakes

    by_table, by_folder = (confident_mistakes(b.best_path, str(d), 0.5) for d in (table, folder))
    assert by_table.num_images == by_folder.num_images == 24
    assert sorted(m.path for m in by_table.mistakes) == sorted(m.path for m in by_folder.mistakes)


def zoo_weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_bad_rows_are_skipped_and_reported(folder, tmp_path):
    rows = folder_rows(folder, shuffle=False)
    bad = rows + [("nowhere/x.png", "red"), (rows[0][0], ""), rows[1], (str(folder / rows[2][0]), "red")]
    table = read_table(write_table(folder / "bad.csv", bad))
    assert table.skipped.counts() == {"duplicate row": 2, "empty label": 1, "missing file": 1}
    assert len(table.paths) == len(rows)
    assert "bad.csv row 26: nowhere/x.png (missing file)" in table.skipped.describe()
    data = load_image_data(folder / "bad.csv", (3, 32, 32), val_split=0)
    assert data.skipped.total == 4 and len(data.train) == len(rows)


def test_bad_tables_are_clear_errors(folder, tmp_path):
    write_table(tmp_path / "cols.csv", [("a.png", "x")], ("image_name", "label"))
    with pytest.raises(DataError, match=r"no image path column \(its columns: image_name, label\); name it with --path-col"):
        read_table(tmp_path / "cols.csv")
    assert read_table(tmp_path / "cols.csv", TableColumns(path="image_name")).skipped.counts() == {"missing file": 1}
    with pytest.raises(DataError, match="has no column 'tag'.*--label-col"):
        read_table(tmp_path / "cols.csv", TableColumns(path="image_name", label="tag"))
    rows = folder_rows(folder)
    write_table(folder / "multi.csv", [(p, f"{c} thing") for p, c in rows])
    with pytest.raises(DataError, match="holds the delimiter ' '; for several labels per image pass --multi-label"):
        find_layout(folder / "multi.csv")
    with pytest.raises(DataError, match="does not exist"):
        find_layout(tmp_path / "none.csv")
    with pytest.raises(DataError, match="is_valid is 'maybe'"):
        read_table(write_table(tmp_path / "v.csv", [(rows[0][0], "a", "maybe")], ("path", "label", "is_valid")))
    with pytest.raises(DataError, match="no validation column"):
        eval_files(write_table(folder / "plain.csv", rows), "val")


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(range(24)), val_split=st.sampled_from([0, 0.25, 0.5]), seed=st.integers(0, 3))
def test_row_order_never_changes_the_samples_or_the_split(folder, order, val_split, seed):
    rows = folder_rows(folder, shuffle=False)
    table = write_table(folder / f"perm{seed}.csv", [rows[i] for i in order])
    by_table, by_folder = find_layout(table, val_split=val_split, seed=seed), find_layout(folder, val_split=val_split, seed=seed)
    assert (by_table.train.paths, by_table.train.labels) == (by_folder.train.paths, by_folder.train.labels)
    assert (by_table.val is None) == (by_folder.val is None)
    if by_table.val is not None:
        assert by_table.val.paths == by_folder.val.paths


def test_pretraining_reads_the_images_a_table_lists(folder):
    from zoo.transfer.encoder import unlabelled_images

    table = write_table(folder / "some.csv", folder_rows(folder)[:5] + [("gone.png", "x")])
    images, skipped = unlabelled_images(table, (3, 32, 32))
    assert images.shape == (5, 3, 32, 32)
