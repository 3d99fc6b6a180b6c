"""ImageFolderExampleGen: an image tree, or images plus a table, to tf.Examples."""

import logging
import os
from typing import List, Optional, Sequence

from tfx.components.example_gen import component
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2
from tfx.types import component_spec

from image_example_gen import component_base
from image_example_gen import driver
from image_example_gen import example
from image_example_gen import listing
from image_example_gen import selection
from image_example_gen import tables
from image_example_gen.image_folder import executor
from image_example_gen.image_folder import layout

_P = component_spec.ExecutionParameter


class ImageFolderExampleGenSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      **component_base.SHARED_PARAMETERS,
      executor.CLASS_NAMES_KEY: _P(type=List[str], optional=True),
      executor.EXIF_TRANSPOSE_KEY: _P(type=bool),
      executor.MAX_SIZE_KEY: _P(type=int, optional=True),
      executor.METADATA_FILE_KEY: _P(type=str, optional=True),
      executor.KEY_COLUMN_KEY: _P(type=str),
      executor.KEY_SOURCE_KEY: _P(type=str),
      executor.LABEL_COLUMN_KEY: _P(type=str, optional=True),
      executor.LABEL_SEPARATOR_KEY: _P(type=str, optional=True),
      executor.EXTRA_COLUMNS_KEY: _P(type=List[str], optional=True),
      executor.GROUP_COLUMN_KEY: _P(type=str, optional=True),
      executor.ALLOWED_EXTENSIONS_KEY: _P(type=List[str], optional=True),
  }
  INPUTS = {}
  OUTPUTS = component.FileBasedExampleGen.SPEC_CLASS.OUTPUTS


class ImageFolderExampleGen(component.FileBasedExampleGen):
  """Reads an image folder, labelled by folders or a table, into Examples.

  Every file under `input_base` becomes one Example, one reject record
  (`<examples>/rejects/`) or, for junk (hidden and system files, documents),
  one skip record (`<examples>/skipped/`); see docs/design.md for the
  features and reasons.

  Labels come from a metadata table when there is one (`metadata_file`, or
  `metadata.csv` / `metadata.jsonl` at the top of `input_base`, as Hugging
  Face's imagefolder reads it), else from class folders
  (`input_base/<class>/**/<image>`). Class names become indices into the
  sorted class names (or `class_names`), written to
  `<examples>/label_vocabulary.txt`. If the top level holds `train/`, `val/`
  or `validation/`, `test/` folders, they become the splits `train`, `eval`,
  `test`; otherwise hash buckets split 2:1 into `train` and `eval`, on
  `image/content_key` (a keyed digest of the file's bytes, so that
  byte-identical images never straddle splits) or, with `group_column`, on
  `group/key`.
  """

  SPEC_CLASS = ImageFolderExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
  DRIVER_CLASS = driver.RecursiveFileBasedDriver

  def __init__(
      self,
      input_base: str,
      class_names: Optional[List[str]] = None,
      exif_transpose: bool = True,
      max_size: Optional[int] = None,
      metadata_file: Optional[str] = None,
      key_column: str = 'file_name',
      key_source: str = tables.RELATIVE_PATH,
      label_column: Optional[str] = 'label',
      label_separator: Optional[str] = None,
      extra_columns: Sequence[str] = (),
      group_column: Optional[str] = None,
      allowed_extensions: Sequence[str] = (),
      ignore_patterns: Sequence[str] = (),
      max_pixels: int = component_base.DEFAULT_MAX_PIXELS,
      shard_size_mb: float = component_base.DEFAULT_SHARD_SIZE_MB,
      max_reject_fraction: float = component_base.DEFAULT_MAX_REJECT_FRACTION,
      input_config: Optional[example_gen_pb2.Input] = None,
      output_config: Optional[example_gen_pb2.Output] = None,
      range_config: Optional[range_config_pb2.RangeConfig] = None):
    """Constructs an ImageFolderExampleGen.

    Args:
      input_base: folder (local path or any Beam/TF filesystem URI) of
        images: one folder per class, or `train/`, `val/`, `test/` folders of
        those, or any layout with a metadata table.
      class_names: the class vocabulary in label order (label = index).
        Default: the sorted class folder names, or the sorted class names of
        the table's label column. Other classes are rejected
        `unknown_class`. With integer labels in the table, label i is
        `class_names[i]`.
      exif_transpose: apply the EXIF orientation, so pixels are as a viewer
        shows them (such images are stored re-encoded as PNG).
      max_size: downscale images whose longer side exceeds this many pixels
        (aspect kept; stored as PNG). Default: keep the original size.
      metadata_file: path or URI of a CSV, JSONL or Parquet table with one
        row per image. Default: `metadata.csv` or `metadata.jsonl` at the top
        of `input_base` if there is one, else labels from folders. The table
        is never an input image. A file without a row is rejected
        `no_metadata_row`, one whose key is on several rows
        `duplicate_metadata_row`, one whose row does not parse
        `bad_metadata_value`.
      key_column: the table's column joined to each file.
      key_source: what `key_column` holds: 'relative_path' (the path below
        `input_base`, or below the table's folder when the table is inside
        it; Hugging Face) or 'file_stem' (the file name without extension;
        Kaggle's `id`).
      label_column: the table's label column: class names, or integers; None
        for no label.
      label_separator: if set (e.g. ' '), label cells hold several labels
        (multi-label: `label` lists every class index); JSON lists are
        multi-label too.
      extra_columns: table columns exported as features under their own
        names, typed per column (int64, float or bytes; text as UTF-8).
      group_column: rows with one value here (a subject, a photographer)
        never span two splits; hashed into `group/key`, never exported.
      allowed_extensions: if set (e.g. ['.jpg', '.png'], as Keras'
        `image_dataset_from_directory` selects), files with another
        extension are skipped (`extension_not_allowed`). Default: every file
        is read, its format sniffed from its bytes; files with a known
        non-image extension (`.txt`, `.md`, `.csv`, ...) whose bytes are no
        image are skipped (`non_image_file`).
      ignore_patterns: globs of files to skip (`ignore_pattern`): without a
        '/' matched against each file and folder name ('*.xml', 'masks'),
        with one against the path below `input_base` ('train/masks/*').
        Hidden and system files are always skipped.
      max_pixels: reject (`too_large`) images whose header declares more
        pixels, before decoding. Default: Pillow's decompression-bomb limit.
      shard_size_mb: the size at which a Split-* TFRecord shard is closed
        and the next begun.
      max_reject_fraction: fail the component when more than this fraction
        of the input files is rejected.
      input_config: TFX input splits; patterns are globs relative to
        `input_base` where `**` matches across folders. Default: split
        folders when present, else the single pattern `**`.
      output_config: TFX output splits. Default: train:eval 2:1 hash buckets
        on `image/content_key`, or `group/key` with a `group_column`
        (ignored when the input has several splits).
      range_config: TFX span range, for patterns with `{SPAN}`.
    """
    if class_names is not None:
      layout.class_vocabulary(class_names)  # Validates; the order is kept.
      class_names = list(class_names)
    if max_size is not None and max_size <= 0:
      raise ValueError(f'max_size must be positive, got {max_size}.')
    if key_source not in executor.KEY_SOURCES:
      raise ValueError(f'key_source must be one of {executor.KEY_SOURCES}, '
                       f'got {key_source!r}.')
    allowed_extensions = selection.normalize_extensions(allowed_extensions)
    params = {
        executor.CLASS_NAMES_KEY: class_names,
        executor.EXIF_TRANSPOSE_KEY: exif_transpose,
        executor.MAX_SIZE_KEY: max_size,
        executor.METADATA_FILE_KEY: metadata_file,
        executor.KEY_COLUMN_KEY: key_column,
        executor.KEY_SOURCE_KEY: key_source,
        executor.LABEL_COLUMN_KEY: label_column,
        executor.LABEL_SEPARATOR_KEY: label_separator,
        executor.EXTRA_COLUMNS_KEY: list(extra_columns) or None,
        executor.GROUP_COLUMN_KEY: group_column,
        executor.ALLOWED_EXTENSIONS_KEY: list(allowed_extensions) or None,
        **component_base.shared_params(max_reject_fraction, max_pixels,
                                       shard_size_mb, ignore_patterns),
    }
    # The executor builds the same spec for the table it finds.
    executor.table_spec(params, metadata_file or 'metadata.csv')
    input_config = input_config or _default_input_config(input_base)
    if input_base and listing.is_local(input_base):
      executor.check_inputs(input_base, params,
                            [split.pattern for split in input_config.splits])
    component_base.init_component(
        self, input_base, input_config,
        output_config, range_config,
        example.GROUP_KEY if group_column else example.IMAGE_CONTENT_KEY,
        params)


def _default_input_config(input_base: str) -> example_gen_pb2.Input:
  """Split folders as input splits when the top level has them."""
  try:
    names = fileio.listdir(input_base) if fileio.isdir(input_base) else []
    folders = [n.rstrip('/') for n in names
               if fileio.isdir(os.path.join(input_base, n))]
  except Exception as e:  # pylint: disable=broad-except
    logging.warning('Cannot list %s (%s): assuming no split folders. Pass '
                    'input_config to say otherwise.', input_base, e)
    folders = []
  folders = layout.detect_split_folders(folders)
  if not folders:
    return component_base.single_split_input_config()
  return example_gen_pb2.Input(splits=[
      example_gen_pb2.Input.Split(name=layout.SPLIT_FOLDERS[f.lower()],
                                  pattern=f'{f}/**')
      for f in folders])
