"""DicomExampleGen: DICOM files plus an optional labels CSV to tf.Examples."""

from typing import List, Optional, Sequence

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
from image_example_gen import tables
from image_example_gen.dicom import executor
from image_example_gen.dicom import metadata

_P = component_spec.ExecutionParameter


class DicomExampleGenSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      **component_base.SHARED_PARAMETERS,
      executor.LABELS_CSV_KEY: _P(type=str, optional=True),
      executor.LABEL_KEY_COLUMN_KEY: _P(type=str),
      executor.LABEL_KEY_SOURCE_KEY: _P(type=str),
      executor.LABEL_COLUMN_KEY: _P(type=str, optional=True),
      executor.PATIENT_COLUMN_KEY: _P(type=str, optional=True),
      executor.EXTRA_COLUMNS_KEY: _P(type=List[str], optional=True),
      executor.EXTRA_ATTRIBUTES_KEY: _P(type=List[str], optional=True),
      executor.APPLY_VOI_KEY: _P(type=bool),
      executor.BIT_DEPTH_KEY: _P(type=int, optional=True),
      executor.RESIZE_KEY: _P(type=int, optional=True),
      executor.MULTI_FRAME_KEY: _P(type=str),
      executor.MAX_FRAMES_KEY: _P(type=int),
      executor.MAX_DECODED_BYTES_KEY: _P(type=int),
  }
  INPUTS = {}
  OUTPUTS = component.FileBasedExampleGen.SPEC_CLASS.OUTPUTS


class DicomExampleGen(component.FileBasedExampleGen):
  """Reads DICOM files (and a labels CSV) into Examples (docs/design.md).

  Every file under `input_base` becomes Example(s) (one per kept frame), one
  reject record (`<examples>/rejects/`) or, for junk, one skip record
  (`<examples>/skipped/`). Pixels are rendered as in
  docs/design.md and stored as PNG (16-bit for grayscale with more than 8 bits
  stored). Only allow-listed, non-identifying attributes become `dicom/*`
  features; patient and image ids become keyed hashes under the salt in
  $IMAGE_EXAMPLE_GEN_SALT. By default `patient/key` hash buckets split 2:1
  into `train` and `eval`, so no patient is in two splits.
  """

  SPEC_CLASS = DicomExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
  DRIVER_CLASS = driver.RecursiveFileBasedDriver

  def __init__(
      self,
      input_base: str,
      labels_csv: Optional[str] = None,
      label_key_column: str = 'image_id',
      label_key_source: str = tables.FILE_STEM,
      label_column: Optional[str] = 'label',
      patient_column: Optional[str] = None,
      extra_columns: Sequence[str] = (),
      extra_attributes: Sequence[str] = (),
      apply_voi: bool = True,
      bit_depth: Optional[int] = None,
      resize: Optional[int] = None,
      multi_frame: str = 'all',
      ignore_patterns: Sequence[str] = (),
      max_pixels: int = component_base.DEFAULT_MAX_PIXELS,
      max_frames: int = limits.DEFAULT_MAX_FRAMES,
      max_decoded_bytes: int = limits.DEFAULT_MAX_DECODED_BYTES,
      shard_size_mb: float = component_base.DEFAULT_SHARD_SIZE_MB,
      max_reject_fraction: float = component_base.DEFAULT_MAX_REJECT_FRACTION,
      input_config: Optional[example_gen_pb2.Input] = None,
      output_config: Optional[example_gen_pb2.Output] = None,
      range_config: Optional[range_config_pb2.RangeConfig] = None):
    """Constructs a DicomExampleGen.

    Args:
      input_base: folder (local path or any Beam/TF filesystem URI) of DICOM
        files, in any layout and with any or no extension. Files without the
        DICOM preamble and `DICM` prefix are rejected as `not_dicom`.
      labels_csv: CSV (or JSONL, Parquet) with one row per image. A file
        without a row is rejected `no_metadata_row`, one whose key is on
        several rows `duplicate_metadata_row`, one whose row does not parse
        `bad_metadata_value`; without a CSV there are no labels.
      label_key_column: CSV column joined to each file.
      label_key_source: what `label_key_column` holds: 'file_stem' (file
        name without extension, like RSNA's image_id) or a DICOM keyword
        such as 'SOPInstanceUID'.
      label_column: CSV column exported as the int64 `label`; None for none.
      patient_column: CSV column holding the patient id; None to use the
        DICOM PatientID. Hashed into `patient/key`, never exported.
      extra_columns: CSV columns exported under their own names (typed int,
        float or bytes per column). Do not list identifying columns.
      extra_attributes: DICOM keywords exported as `dicom/<snake_case>` in
        addition to the default allow-list. PHI attributes (PS3.15 Basic
        Profile), names, dates, UIDs and free text are refused.
      apply_voi: apply the VOI LUT or first window (docs/design.md, pixels step 3).
      bit_depth: PNG bit depth: None (16 for grayscale with more than 8
        stored bits, else 8), 8, or 16 (grayscale only).
      resize: if set, output images are resize x resize, aspect kept and
        padded with black (docs/design.md, pixels step 7). Default: stored size.
      multi_frame: frames kept from multi-frame files: 'all' (one Example
        per frame, with `dicom/frame_index`), 'first' or 'middle'.
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
        frames).
      shard_size_mb: the size at which a Split-* TFRecord shard is closed
        and the next begun.
      max_reject_fraction: fail the component when more than this fraction
        of the input files is rejected.
      input_config: TFX input splits; patterns are globs relative to
        `input_base` where `**` matches across folders. Default: `**`.
      output_config: TFX output splits. Default: train:eval 2:1 hash buckets
        on `patient/key`.
      range_config: TFX span range, for patterns with `{SPAN}`.
    """
    params = {
        executor.LABELS_CSV_KEY: labels_csv,
        executor.LABEL_KEY_COLUMN_KEY: label_key_column,
        executor.LABEL_KEY_SOURCE_KEY: label_key_source,
        executor.LABEL_COLUMN_KEY: label_column,
        executor.PATIENT_COLUMN_KEY: patient_column,
        executor.EXTRA_COLUMNS_KEY: list(extra_columns) or None,
        executor.EXTRA_ATTRIBUTES_KEY: list(extra_attributes) or None,
        executor.APPLY_VOI_KEY: apply_voi,
        executor.BIT_DEPTH_KEY: bit_depth,
        executor.RESIZE_KEY: resize,
        executor.MULTI_FRAME_KEY: multi_frame,
        executor.MAX_FRAMES_KEY: max_frames,
        executor.MAX_DECODED_BYTES_KEY: max_decoded_bytes,
        **component_base.shared_params(max_reject_fraction, max_pixels,
                                       shard_size_mb, ignore_patterns),
    }
    # Fail now, not an hour into the Beam job: the executor builds the same
    # objects from the same parameters.
    if extra_columns and not labels_csv:
      raise ValueError('extra_columns needs labels_csv.')
    executor.table_spec(params)
    executor.pixel_options(params)
    executor.size_limits(params)
    metadata.resolve_attributes(tuple(extra_attributes))
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
