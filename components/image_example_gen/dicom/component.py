"""DicomExampleGen: DICOM files (and a metadata table) to tf.Examples."""

import inspect
from typing import Dict, List, Mapping, Optional, Sequence

from tfx.components.example_gen import component
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2
from tfx.types import component_spec

from image_example_gen import component_base
from image_example_gen import driver
from image_example_gen import example
from image_example_gen import limits
from image_example_gen import listing
from image_example_gen import table_keys
from image_example_gen import table_params
from image_example_gen.dicom import burned_in
from image_example_gen.dicom import executor
from image_example_gen.dicom import geometry
from image_example_gen.dicom import metadata
from image_example_gen.dicom import volume

_P = component_spec.ExecutionParameter


class DicomExampleGenSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      **component_base.SHARED_PARAMETERS,
      **component_base.TABLE_PARAMETERS,
      executor.EXTRA_ATTRIBUTES_KEY: _P(type=List[str], optional=True),
      executor.APPLY_VOI_KEY: _P(type=bool),
      executor.BIT_DEPTH_KEY: _P(type=int, optional=True),
      executor.RESIZE_KEY: _P(type=int, optional=True),
      executor.MULTI_FRAME_KEY: _P(type=str),
      executor.MAX_FRAMES_KEY: _P(type=int),
      executor.MAX_DECODED_BYTES_KEY: _P(type=int),
      executor.BURNED_IN_ANNOTATION_KEY: _P(type=str),
      executor.UNIT_KEY: _P(type=str),
      executor.MIN_SLICES_KEY: _P(type=int),
      executor.SPACING_TOLERANCE_KEY: _P(type=float),
      executor.SERIES_FILTER_KEY: _P(type=Dict[str, str], optional=True),
  }
  INPUTS = {}
  OUTPUTS = component.FileBasedExampleGen.SPEC_CLASS.OUTPUTS


class DicomExampleGen(component.FileBasedExampleGen):
  """Reads DICOM files (and a metadata table) into Examples (docs/design.md).

  Every file under `input_base` becomes Example(s) (one per kept frame; with
  `unit='series'`, one per series), one reject record
  (`<examples>/rejects/`) or one skip record (`<examples>/skipped/`: junk,
  and what series mode leaves out). Pixels are rendered as in
  docs/design.md and stored as PNG (16-bit for grayscale with more than 8 bits
  stored). Only allow-listed, non-identifying attributes become `dicom/*`
  features; patient and image ids become keyed hashes under the salt in
  $IMAGE_EXAMPLE_GEN_SALT; pixels that may show names and dates are cropped
  or rejected (`burned_in_annotation`), and the artifact records how
  (`deidentification`). By default `patient/key` hash buckets split 2:1
  into `train` and `eval`, so no patient is in two splits.
  """

  SPEC_CLASS = DicomExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
  DRIVER_CLASS = driver.RecursiveFileBasedDriver

  def __init__(
      self,
      input_base: str,
      metadata_file: Optional[str] = None,
      key_column: str = 'image_id',
      key_source: str = table_keys.FILE_STEM,
      label_column: Optional[str] = table_params.DEFAULT_LABEL_COLUMN,
      group_column: Optional[str] = None,
      extra_columns: Sequence[str] = (),
      column_types: Optional[Dict[str, str]] = None,
      extra_attributes: Sequence[str] = (),
      apply_voi: bool = True,
      bit_depth: Optional[int] = None,
      resize: Optional[int] = None,
      multi_frame: str = 'all',
      burned_in_annotation: str = burned_in.CROP,
      unit: str = 'image',
      min_slices: int = volume.DEFAULT_MIN_SLICES,
      spacing_tolerance: float = geometry.DEFAULT_SPACING_TOLERANCE,
      series_filter: Optional[Mapping[str, str]] = None,
      ignore_patterns: Sequence[str] = (),
      max_pixels: int = component_base.DEFAULT_MAX_PIXELS,
      max_frames: int = limits.DEFAULT_MAX_FRAMES,
      max_decoded_bytes: int = limits.DEFAULT_MAX_DECODED_BYTES,
      shard_size_mb: float = component_base.DEFAULT_SHARD_SIZE_MB,
      max_reject_fraction: float = component_base.DEFAULT_MAX_REJECT_FRACTION,
      input_config: Optional[example_gen_pb2.Input] = None,
      output_config: Optional[example_gen_pb2.Output] = None,
      range_config: Optional[range_config_pb2.RangeConfig] = None,
      labels_csv: Optional[str] = None,
      label_key_column: Optional[str] = None,
      label_key_source: Optional[str] = None,
      patient_column: Optional[str] = None):
    """Constructs a DicomExampleGen.

    Args:
      input_base: folder (local path or any Beam filesystem URI) of DICOM
        files, in any layout and with any or no extension. Files without the
        DICOM preamble and `DICM` prefix are rejected as `not_dicom`.
      metadata_file: CSV, JSONL or Parquet table with one row per image (or
        per patient, series, ... with a `key_source` to match). A file
        without a row is rejected `no_metadata_row`, one whose key is on
        several rows `duplicate_metadata_row`, one whose row does not parse
        `bad_metadata_value`; without a table there are no labels.
      key_column: the table's column joined to each file.
      key_source: what `key_column` holds: 'file_stem' (file name without
        extension, like RSNA's image_id), 'relative_path' (below the
        table's folder inside `input_base`, else below `input_base`), a
        regular expression with one group searched in that path
        (`r'^([^/]+)/'`: the top folder, e.g. the patient's), or a DICOM
        keyword such as 'SOPInstanceUID'.
      label_column: the table's column exported as the int64 `label`.
        Default: `label` if the table has it; a column named here must
        exist. None: no label.
      group_column: the table's column holding the patient id; None to use
        the DICOM PatientID. Hashed into `patient/key`, never exported.
      extra_columns: table columns exported under their own names (typed
        int, float or bytes per column). Only these: do not list
        identifying columns.
      column_types: extra column -> 'int', 'float' or 'bytes', instead of
        the type inferred over the whole table; a value that does not parse
        rejects its file `bad_metadata_value`.
      extra_attributes: DICOM keywords exported as `dicom/<snake_case>` in
        addition to the default allow-list. PHI attributes (PS3.15 Basic
        Profile), names, dates, UIDs and free text are refused.
      apply_voi: apply the VOI LUT or first window (docs/design.md, pixels step 3).
      bit_depth: PNG bit depth: None (16 for grayscale with more than 8
        stored bits, else 8), 8, or 16 (grayscale only).
      resize: if set, output images are resize x resize, aspect kept and
        padded with black (docs/design.md, pixels step 7). Default: stored size.
      multi_frame: frames kept from multi-frame files: 'all' (one Example
        per frame, with `dicom/frame_index`), 'first' or 'middle'. Ignored
        with `unit='series'`, where every frame is a slice.
      burned_in_annotation: pixels that may show names, ids and dates
        (docs/design.md §7): 'crop' (default) crops ultrasound to its
        Sequence of Ultrasound Regions and rejects (`burned_in_annotation`)
        Burned In Annotation YES, and ultrasound without regions, secondary
        captures and photographs unless marked NO; 'reject' rejects
        ultrasound with regions too; 'keep' keeps every file's pixels as
        stored (data you have cleaned), warns, and counts `burned_in_kept`.
        The same rules apply to every file of a series with `unit='series'`.
      unit: 'image' (an Example per frame) or 'series': an Example per
        SeriesInstanceUID, wherever its files lie, with the slices (frames
        of enhanced multi-frame files too) sorted along the slice normal and
        the volume's spacing, origin and direction (docs/design.md §14).
        A series that is no regular volume is rejected, all its files
        (`inconsistent_series`, `irregular_spacing`); a file without
        position, orientation or pixel spacing is rejected `no_geometry`;
        CT localizers are skipped (`localizer`). `key_source` must then
        be a DICOM keyword or a pattern on the path (e.g. 'StudyInstanceUID': one row labels
        every series of a study); a series whose files disagree on it is
        rejected `inconsistent_series`.
      min_slices: series mode: series with fewer slices are skipped
        (`too_few_slices`, not counted as rejects). At least 2; the default
        3 is the fewest whose spacing can be checked (two gaps).
      spacing_tolerance: series mode: a gap between consecutive slices may
        differ from the series' median gap by this fraction of it (default
        0.1; a missing slice makes one gap twice the others).
      series_filter: series mode: DICOM keyword -> regular expression, e.g.
        {'SeriesDescription': 'T2', 'Modality': '^(CT|MR)$'}; only files
        whose attributes match every expression (`re.search` on the value,
        a multi-valued one joined by backslashes) are used, the others are
        skipped (`series_filtered`). Matched inside the component; the
        values are never exported.
      ignore_patterns: globs of files to skip (`ignore_pattern`): without a
        '/' matched against each file and folder name ('*.xml', 'SR'), with
        one against the path below `input_base`. Hidden and system files,
        and documents that are no DICOM (`README.md`, `labels.csv`), are
        always skipped.
      max_pixels: reject (`too_large`) files whose header declares more
        pixels per frame (Rows x Columns), before decoding.
      max_frames: reject (`too_large`) files declaring more frames.
      max_decoded_bytes: reject (`too_large`) files whose frames would
        decode to more bytes (Rows x Columns x Samples x bytes per sample x
        frames); with `unit='series'`, series whose slices would.
      shard_size_mb: the size at which a Split-* TFRecord shard is closed
        and the next begun.
      max_reject_fraction: fail the component when more than this fraction
        of the input files is rejected.
      input_config: TFX input splits; patterns are globs relative to
        `input_base` where `**` matches across folders. Default: `**`.
      output_config: TFX output splits. Default: train:eval 2:1 hash buckets
        on `patient/key`.
      range_config: TFX span range, for patterns with `{SPAN}`.
      labels_csv: deprecated name of `metadata_file`.
      label_key_column: deprecated name of `key_column`.
      label_key_source: deprecated name of `key_source`.
      patient_column: deprecated name of `group_column`.
    """
    table = dict(metadata_file=metadata_file, key_column=key_column,
                 key_source=key_source, group_column=group_column)
    table_params.renamed(
        type(self).__name__,
        dict(labels_csv=labels_csv, label_key_column=label_key_column,
             label_key_source=label_key_source,
             patient_column=patient_column),
        table, _DEFAULTS)
    if extra_columns and not table['metadata_file']:
      raise ValueError('extra_columns needs metadata_file.')
    executor.check_key_source(table['key_source'],
                              unit if table['metadata_file'] else None)
    # Checked first: the spec's type check would raise a less clear error.
    volume.check_unit(unit)
    volume.check_min_slices(min_slices)
    volume.check_spacing_tolerance(spacing_tolerance)
    volume.compile_series_filter(series_filter)
    if series_filter and unit != 'series':
      raise ValueError("series_filter needs unit='series'.")
    params = {
        **table_params.exec_properties(
            table['metadata_file'], table['key_column'], table['key_source'],
            label_column, table['group_column'], list(extra_columns) or None,
            column_types, keywords=True, export_all=False),
        executor.EXTRA_ATTRIBUTES_KEY: list(extra_attributes) or None,
        executor.APPLY_VOI_KEY: apply_voi,
        executor.BIT_DEPTH_KEY: bit_depth,
        executor.RESIZE_KEY: resize,
        executor.MULTI_FRAME_KEY: multi_frame,
        executor.MAX_FRAMES_KEY: max_frames,
        executor.MAX_DECODED_BYTES_KEY: max_decoded_bytes,
        executor.BURNED_IN_ANNOTATION_KEY: burned_in_annotation,
        executor.UNIT_KEY: unit,
        executor.MIN_SLICES_KEY: min_slices,
        executor.SPACING_TOLERANCE_KEY: float(spacing_tolerance),
        executor.SERIES_FILTER_KEY: dict(series_filter or {}) or None,
        **component_base.shared_params(max_reject_fraction, max_pixels,
                                       shard_size_mb, ignore_patterns),
    }
    # Fail now, not an hour into the Beam job: the executor builds the same
    # objects from the same parameters.
    executor.pixel_options(params)
    executor.size_limits(params)
    metadata.resolve_attributes(tuple(extra_attributes))
    burned_in.check_policy(burned_in_annotation)
    if multi_frame not in executor.MULTI_FRAME_POLICIES:
      raise ValueError(f'multi_frame must be one of '
                       f'{executor.MULTI_FRAME_POLICIES}, got {multi_frame!r}.')
    if input_base and listing.is_local(input_base):
      executor.check_inputs(input_base, params)
    component_base.init_component(
        self, input_base,
        input_config or component_base.single_split_input_config(),
        output_config, range_config, example.PATIENT_KEY,
        params)


_DEFAULTS = {name: parameter.default for name, parameter in inspect.signature(
    DicomExampleGen.__init__).parameters.items()}
