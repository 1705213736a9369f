"""Data for training and evaluation: image folders, splits, the decode cache, transforms, batches.

* :func:`load_image_data` finds class folders (``DIR/train`` + ``DIR/val``, or
  one folder split by ``val_split``, stratified and seeded), resolves
  ``scheme:name`` through the registered dataset sources, and decodes every
  image once into a uint8 tensor when it fits the cache budget.
* :func:`preprocess_image` is the evaluation preprocessing of the project's
  contract (RGB/L, bilinear resize to (H, W), [0, 1], mean/std).
* :mod:`zoo.data.transforms` holds the augmentations (batch-wise on tensors,
  or per image with torchvision.transforms.v2 when streaming) and normalisation.
* :func:`make_batches` turns a split, a pair of tensors or a Dataset into the
  batch source the training loop iterates.
"""

from zoo.data.batches import LoaderBatches, TensorBatches, epoch_order, make_batches
from zoo.data.dataset import FileDataset, ImageData, ImageSplit, load_image_data
from zoo.data.decode import ImageDecodeError, decode_many, open_image, preprocess_image
from zoo.data.folder import (
    IMAGE_EXTENSIONS,
    FileSplit,
    FolderLayout,
    eval_files,
    find_layout,
    resolve_data_path,
)
from zoo.data.transforms import (
    AUGMENTATIONS,
    Augment,
    BatchAugment,
    Normalize,
    compute_mean_std,
    format_augment,
    parse_augment,
    sample_transform,
)

__all__ = [
    "AUGMENTATIONS", "Augment", "BatchAugment", "FileDataset", "FileSplit", "FolderLayout", "IMAGE_EXTENSIONS",
    "ImageData", "ImageDecodeError", "ImageSplit", "LoaderBatches", "Normalize", "TensorBatches", "compute_mean_std",
    "decode_many", "epoch_order", "eval_files", "find_layout", "format_augment", "load_image_data", "make_batches",
    "open_image", "parse_augment", "preprocess_image", "resolve_data_path", "sample_transform",
]
