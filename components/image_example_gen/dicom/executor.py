"""DicomExampleGen's executor: one Beam transform from DICOM files to Examples.

The labels CSV is joined to the files in Beam (`table_join`); each file is
converted by `converter.DicomFileConverter`.
"""

from typing import Any, Dict, Optional, Sequence

import apache_beam as beam

from image_example_gen import checks
from image_example_gen import conversion
from image_example_gen import example
from image_example_gen import executor_base
from image_example_gen import limits as limits_lib
from image_example_gen import table_join
from image_example_gen import tables
from image_example_gen.dicom import converter as converter_lib
from image_example_gen.dicom import metadata
from image_example_gen.dicom import display

LABELS_CSV_KEY = 'labels_csv'
LABEL_KEY_COLUMN_KEY = 'label_key_column'
LABEL_KEY_SOURCE_KEY = 'label_key_source'
LABEL_COLUMN_KEY = 'label_column'
PATIENT_COLUMN_KEY = 'patient_column'
EXTRA_COLUMNS_KEY = 'extra_columns'
EXTRA_ATTRIBUTES_KEY = 'extra_attributes'
APPLY_VOI_KEY = 'apply_voi'
BIT_DEPTH_KEY = 'bit_depth'
RESIZE_KEY = 'resize'
MULTI_FRAME_KEY = 'multi_frame'
MAX_FRAMES_KEY = 'max_frames'
MAX_DECODED_BYTES_KEY = 'max_decoded_bytes'
IGNORE_PATTERNS_KEY = executor_base.IGNORE_PATTERNS_KEY
MAX_PIXELS_KEY = executor_base.MAX_PIXELS_KEY
MAX_REJECT_FRACTION_KEY = executor_base.MAX_REJECT_FRACTION_KEY
MULTI_FRAME_POLICIES = converter_lib.MULTI_FRAME_POLICIES


def table_spec(exec_properties: Dict[str, Any]) -> Optional[tables.TableSpec]:
  """The TableSpec of the labels CSV; None without one."""
  if not exec_properties.get(LABELS_CSV_KEY):
    return None
  converter_lib.check_key_source(exec_properties[LABEL_KEY_SOURCE_KEY])
  return tables.TableSpec(
      path=exec_properties[LABELS_CSV_KEY],
      key_column=exec_properties[LABEL_KEY_COLUMN_KEY],
      key_source=exec_properties[LABEL_KEY_SOURCE_KEY],
      label_column=exec_properties.get(LABEL_COLUMN_KEY) or None,
      integer_labels=True,
      extra_columns=tuple(
          executor_base.list_property(exec_properties, EXTRA_COLUMNS_KEY)),
      group_column=exec_properties.get(PATIENT_COLUMN_KEY) or None)


def pixel_options(exec_properties: Dict[str, Any]) -> display.PixelOptions:
  return display.PixelOptions(
      apply_voi=bool(exec_properties[APPLY_VOI_KEY]),
      bit_depth=exec_properties.get(BIT_DEPTH_KEY) or None,
      resize=exec_properties.get(RESIZE_KEY) or None)


def size_limits(exec_properties: Dict[str, Any]) -> limits_lib.SizeLimits:
  return limits_lib.SizeLimits(
      max_pixels=int(exec_properties[MAX_PIXELS_KEY]),
      max_frames=int(exec_properties[MAX_FRAMES_KEY]),
      max_decoded_bytes=int(exec_properties[MAX_DECODED_BYTES_KEY]))


def check_inputs(input_base: str, exec_properties: Dict[str, Any]) -> None:
  """The free checks (`checks`): input_base, the table, integer labels.

  The component runs them for a local input_base, the executor for every
  one. Raises ValueError.
  """
  checks.check_input_base(input_base)
  spec = table_spec(exec_properties)
  if spec is not None:
    checks.check_table(spec)
    checks.check_integer_labels(spec)


class Executor(executor_base.ImageExampleGenExecutor):
  """Converts every DICOM file into Examples or a reject record."""

  component_name = 'DicomExampleGen'
  group_key = example.PATIENT_KEY

  def prepare(self, exec_properties: Dict[str, Any], output_uri: str) -> None:
    check_inputs(self._input_base, exec_properties)
    self._table = table_spec(exec_properties)

  def make_converter(self, exec_properties: Dict[str, Any],
                     split_pattern: str) -> conversion.FileConverter:
    del split_pattern
    return converter_lib.DicomFileConverter(
        self._table.key_source if self._table else None,
        metadata.resolve_attributes(
            executor_base.list_property(exec_properties, EXTRA_ATTRIBUTES_KEY)),
        pixel_options(exec_properties), exec_properties[MULTI_FRAME_KEY],
        size_limits(exec_properties), self._salt)

  def make_join(self, exec_properties: Dict[str, Any],
                converters: Sequence[conversion.FileConverter]
               ) -> Optional[beam.PTransform]:
    if self._table is None:
      return None
    return table_join.JoinTable(  # pylint: disable=no-value-for-parameter
        self._table, [c.join_key for c in converters], conversion.open_file)

  def list_table_keys(self) -> bool:
    # Keys read from DICOM attributes (UIDs) never reach the summary.
    return (self._table is not None and
            self._table.key_source == tables.FILE_STEM)
