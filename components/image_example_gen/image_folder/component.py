"""ImageFolderExampleGen: an image tree, or images plus a table, to tf.Examples."""

from typing import Dict, List, Optional, Sequence

from tfx.components.example_gen import component
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2
from tfx.types import component_spec

from image_example_gen import component_base
from image_example_gen import driver
from image_example_gen import example
from image_example_gen import listing
from image_example_gen import selection
from image_example_gen import table_keys
from image_example_gen import table_params
from image_example_gen.image_folder import executor
from image_example_gen.image_folder import layout

_P = component_spec.ExecutionParameter


class ImageFolderExampleGenSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      **component_base.SHARED_PARAMETERS,
      executor.CLASS_NAMES_KEY: _P(type=List[str], optional=True),
      executor.EXIF_TRANSPOSE_KEY: _P(type=bool),
      executor.MAX_SIZE_KEY: _P(type=int, optional=True),
      **component_base.TABLE_PARAMETERS,
      executor.LABEL_SEPARATOR_KEY: _P(type=str, optional=True),
      executor.LABEL_PATTERN_KEY: _P(type=str, optional=True),
      executor.DETECT_SPLIT_FOLDERS_KEY: _P(type=bool, optional=True),
      executor.ALLOWED_EXTENSIONS_KEY: _P(type=List[str], optional=True),
  }
  INPUTS = {}
  OUTPUTS = component.FileBasedExampleGen.SPEC_CLASS.OUTPUTS


class ImageFolderExampleGen(component.FileBasedExampleGen):
  """Reads an image folder, labelled by folders, a table or names, to Examples.

  Every file under `input_base` becomes one Example, one reject record
  (`<examples>/rejects/`) or, for junk (hidden and system files, documents),
  one skip record (`<examples>/skipped/`); see docs/design.md for the
  features and reasons.

  Labels come from file names with `label_pattern`; else from a metadata
  table's label column (`metadata_file`, or `metadata.csv` /
  `metadata.jsonl` / `metadata.parquet` at the top of `input_base` or in
  each split folder, as Hugging Face's imagefolder reads them); else from
  class folders (`input_base/<class>/**/<image>`); else there is no label.
  A table's other columns become features. Class names become indices into
  the sorted class names (or `class_names`), written to
  `<examples>/label_vocabulary.txt`. If the top level holds `train/`, `val/`
  or `validation/`, `test/` folders, they become the splits `train`, `eval`,
  `test` (found when the component runs, so a pipeline built where
  `input_base` cannot be read splits alike); otherwise hash buckets split 2:1
  into `train` and `eval`, on
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
      key_source: str = table_keys.RELATIVE_PATH,
      label_column: Optional[str] = table_params.DEFAULT_LABEL_COLUMN,
      label_separator: Optional[str] = None,
      extra_columns: Optional[Sequence[str]] = None,
      group_column: Optional[str] = None,
      column_types: Optional[Dict[str, str]] = None,
      label_pattern: Optional[str] = None,
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
      input_base: folder (local path or any Beam filesystem URI) of
        images: one folder per class, or `train/`, `val/`, `test/` folders of
        those, or any layout with a metadata table.
      class_names: the class vocabulary in label order (label = index).
        Default: the sorted class folder names, or the sorted class names of
        the table's label column or of `label_pattern`'s matches. Other
        classes are rejected `unknown_class`. With integer labels, label i
        is `class_names[i]`.
      exif_transpose: apply the EXIF orientation, so pixels are as a viewer
        shows them (such images are stored re-encoded as PNG).
      max_size: downscale images whose longer side exceeds this many pixels
        (aspect kept; stored as PNG). Default: keep the original size.
      metadata_file: path or URI of a CSV, JSONL or Parquet table with one
        row per image. Default: `metadata.csv`, `metadata.jsonl` or
        `metadata.parquet` at the top of `input_base`, else one in each
        split folder (keys relative to it), else none. A table is never an
        input image. A file without a row is rejected `no_metadata_row`, one
        whose key is on several rows `duplicate_metadata_row`, one whose row
        does not parse `bad_metadata_value`.
      key_column: the table's column joined to each file.
      key_source: what `key_column` holds: 'relative_path' (the path below
        the table's folder: its split folder, its own folder inside
        `input_base`, or `input_base`; Hugging Face), 'file_stem' (the file
        name without extension; Kaggle's `id`), or a regular expression with
        one group searched in that path, the group being the key
        (`r'^([^/]+)/'`: the top folder).
      label_column: the table's label column (class names, or integers).
        Default: `label` if the table has it; a column named here must
        exist. None: no label from the table.
      label_separator: if set (e.g. ' '), label cells hold several labels
        (multi-label: `label` lists every class index); JSON lists are
        multi-label too.
      extra_columns: table columns exported as features under their own
        names, typed per column (int64, float or bytes; text as UTF-8).
        Default: every column but the key, label and group columns (columns
        of JSON objects and reserved names are left out, with a log line).
      group_column: rows with one value here (a subject, a photographer)
        never span two splits; hashed into `group/key`, never exported.
      column_types: column -> 'int', 'float' or 'bytes', instead of the type
        inferred over the whole table; a value that does not parse rejects
        its file `bad_metadata_value`.
      label_pattern: a regular expression with one group, searched in each
        file's path below `input_base` (below its split folder): the group
        is its class (`r'^(cat|dog)\\.\\d+\\.jpg$'`). A file it does not
        match is rejected `no_label_in_name`. A table then adds only its
        columns.
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
        `input_base` where `**` matches across folders. Default: the split
        folders that the executor finds at the top of `input_base`, else the
        single pattern `**`.
      output_config: TFX output splits. Default: train:eval 2:1 hash buckets
        on `image/content_key`, or `group/key` with a `group_column`; the
        input splits when there are several (split folders: other
        hash-bucket splits are then an error).
      range_config: TFX span range, for patterns with `{SPAN}`.
    """
    if class_names is not None:
      layout.class_vocabulary(class_names)  # Validates; the order is kept.
      class_names = list(class_names)
    if max_size is not None and max_size <= 0:
      raise ValueError(f'max_size must be positive, got {max_size}.')
    if label_pattern is not None:
      table_keys.one_group_pattern(label_pattern, 'label_pattern')
      if label_separator or not table_params.is_default(label_column):
        raise ValueError('label_pattern gives the labels: pass neither '
                         'label_column nor label_separator with it.')
    allowed_extensions = selection.normalize_extensions(allowed_extensions)
    params = {
        executor.CLASS_NAMES_KEY: class_names,
        executor.EXIF_TRANSPOSE_KEY: exif_transpose,
        executor.MAX_SIZE_KEY: max_size,
        executor.LABEL_SEPARATOR_KEY: label_separator,
        executor.LABEL_PATTERN_KEY: label_pattern,
        executor.DETECT_SPLIT_FOLDERS_KEY: input_config is None,
        # The executor builds the same spec for each table it finds.
        **table_params.exec_properties(
            metadata_file, key_column, key_source, label_column, group_column,
            extra_columns, column_types, keywords=False, export_all=True),
        executor.ALLOWED_EXTENSIONS_KEY: list(allowed_extensions) or None,
        **component_base.shared_params(max_reject_fraction, max_pixels,
                                       shard_size_mb, ignore_patterns),
    }
    if input_base and listing.is_local(input_base):
      splits = (input_config.splits if input_config else
                executor.split_folder_splits(input_base))
      executor.check_inputs(input_base, params,
                            [split.pattern for split in splits] or
                            [component_base.DEFAULT_PATTERN])
    component_base.init_component(
        self, input_base,
        input_config or component_base.single_split_input_config(),
        output_config, range_config,
        example.GROUP_KEY if group_column else example.IMAGE_CONTENT_KEY,
        params)

