"""DicomExampleGen's executor: one Beam transform from DICOM files to Examples.

The metadata table is joined to the files in Beam (`table_join`); each file
is converted by `converter.DicomFileConverter`. With `unit='series'` the
files are first grouped into series (`series.GroupSeries`), the series
joined, and each converted by `volume.SeriesConverter`.
"""

import json
import logging
from typing import Any, Dict, Mapping, Optional, Sequence

import apache_beam as beam

from image_example_gen import checks
from image_example_gen import conversion
from image_example_gen import example
from image_example_gen import executor_base
from image_example_gen import keys
from image_example_gen import limits as limits_lib
from image_example_gen import table_keys
from image_example_gen import table_params
from image_example_gen import tables
from image_example_gen.dicom import burned_in
from image_example_gen.dicom import converter as converter_lib
from image_example_gen.dicom import deidentification
from image_example_gen.dicom import metadata
from image_example_gen.dicom import display
from image_example_gen.dicom import series
from image_example_gen.dicom import volume

EXTRA_ATTRIBUTES_KEY = 'extra_attributes'
APPLY_VOI_KEY = 'apply_voi'
BIT_DEPTH_KEY = 'bit_depth'
RESIZE_KEY = 'resize'
MULTI_FRAME_KEY = 'multi_frame'
MAX_FRAMES_KEY = 'max_frames'
MAX_DECODED_BYTES_KEY = 'max_decoded_bytes'
BURNED_IN_ANNOTATION_KEY = 'burned_in_annotation'
UNIT_KEY = 'unit'
MIN_SLICES_KEY = 'min_slices'
SPACING_TOLERANCE_KEY = 'spacing_tolerance'
SERIES_FILTER_KEY = 'series_filter'
IGNORE_PATTERNS_KEY = executor_base.IGNORE_PATTERNS_KEY
MAX_PIXELS_KEY = executor_base.MAX_PIXELS_KEY
MAX_REJECT_FRACTION_KEY = executor_base.MAX_REJECT_FRACTION_KEY
MULTI_FRAME_POLICIES = converter_lib.MULTI_FRAME_POLICIES


def table_spec(exec_properties: Dict[str, Any],
               folder: str = '') -> Optional[tables.TableSpec]:
  """The TableSpec of the metadata table; None without one."""
  path = exec_properties.get(table_params.METADATA_FILE_KEY)
  if not path:
    return None
  check_key_source(exec_properties[table_params.KEY_SOURCE_KEY],
                   exec_properties.get(UNIT_KEY))
  return table_params.table_spec(exec_properties, path, folder,
                                 integer_labels=True)


def check_key_source(key_source: str, unit: Optional[str]) -> None:
  """A key source DICOM tables can use, with `unit='series'` one that every
  file of a series shares."""
  converter_lib.check_key_source(key_source)
  if unit == 'series' and key_source in table_keys.NAMED_SOURCES:
    raise ValueError(
        "unit='series' joins the table on what every file of a series shares: "
        "a DICOM keyword read from each file (e.g. key_source="
        "'StudyInstanceUID') or a pattern on the path (e.g. r'^([^/]+)/' for "
        f"a patient folder), not on {key_source!r}, which differs between the "
        'files of a series.')


def pixel_options(exec_properties: Dict[str, Any]) -> display.PixelOptions:
  return display.PixelOptions(
      apply_voi=bool(exec_properties[APPLY_VOI_KEY]),
      bit_depth=exec_properties.get(BIT_DEPTH_KEY) or None,
      resize=exec_properties.get(RESIZE_KEY) or None)


def series_filter(exec_properties: Dict[str, Any]) -> Mapping[str, str]:
  """The `series_filter` exec property (orchestrators pass it as JSON)."""
  value = exec_properties.get(SERIES_FILTER_KEY)
  if isinstance(value, str):
    value = json.loads(value)
  return dict(value or {})


def size_limits(exec_properties: Dict[str, Any]) -> limits_lib.SizeLimits:
  return limits_lib.SizeLimits(
      max_pixels=int(exec_properties[MAX_PIXELS_KEY]),
      max_frames=int(exec_properties[MAX_FRAMES_KEY]),
      max_decoded_bytes=int(exec_properties[MAX_DECODED_BYTES_KEY]))


def check_inputs(input_base: str, exec_properties: Dict[str, Any],
                 folder: str = '') -> Optional[tables.TableSpec]:
  """The free checks (`checks`): input_base, the table, integer labels.

  The component runs them for a local input_base, the executor for every
  one.

  Args:
    input_base: the input folder.
    exec_properties: the component's parameters.
    folder: the table's folder below input_base (`table_keys`).

  Returns:
    The checked TableSpec (its label column dropped when optional and
    absent); None without a table.

  Raises:
    ValueError: naming the path, table or column at fault.
  """
  checks.check_input_base(input_base)
  spec = table_spec(exec_properties, folder)
  if spec is None:
    return None
  spec = checks.check_table(spec)
  checks.check_integer_labels(spec)
  return spec


class Executor(executor_base.ImageExampleGenExecutor):
  """Converts every DICOM file into Examples or a reject record."""

  component_name = 'DicomExampleGen'
  group_key = example.PATIENT_KEY

  def prepare(self, exec_properties: Dict[str, Any], output_uri: str) -> None:
    path = exec_properties.get(table_params.METADATA_FILE_KEY)
    table = check_inputs(self._input_base, exec_properties, path and (
        executor_base.table_folder(
            path, self._input_base,
            exec_properties[table_params.KEY_SOURCE_KEY])))
    if table is not None and table.label_column is None:
      logging.warning('%s has no label column: the Examples have no '
                      '`label` feature.', table.path)
    self.tables = [table] * len(executor_base.input_patterns(exec_properties))
    if exec_properties[BURNED_IN_ANNOTATION_KEY] == burned_in.KEEP:
      logging.warning(
          "burned_in_annotation='keep': the pixels of ultrasound, secondary "
          'captures, photographs and files marked Burned In Annotation YES '
          'are kept as stored and may show names, ids and dates; counted as '
          'burned_in_kept.')

  def make_converter(self, exec_properties: Dict[str, Any],
                     split_pattern: str) -> conversion.FileConverter:
    del split_pattern
    table = self.tables[0]
    key_source = table.key_source if table else None
    key_folder = table.folder if table else ''
    attributes = metadata.resolve_attributes(
        executor_base.list_property(exec_properties, EXTRA_ATTRIBUTES_KEY))
    if exec_properties.get(UNIT_KEY) == 'series':
      return volume.SeriesConverter(
          key_source, attributes, pixel_options(exec_properties),
          size_limits(exec_properties), self._salt,
          int(exec_properties[MIN_SLICES_KEY]),
          float(exec_properties[SPACING_TOLERANCE_KEY]),
          series_filter(exec_properties),
          exec_properties[BURNED_IN_ANNOTATION_KEY], key_folder)
    return converter_lib.DicomFileConverter(
        key_source, attributes, pixel_options(exec_properties),
        exec_properties[MULTI_FRAME_KEY], size_limits(exec_properties),
        self._salt, exec_properties[BURNED_IN_ANNOTATION_KEY], key_folder)

  def make_group(self, exec_properties: Dict[str, Any],
                 converters: Sequence[conversion.FileConverter]
                ) -> Optional[beam.PTransform]:
    if exec_properties.get(UNIT_KEY) != 'series':
      return None
    return series.GroupSeries(converters)  # pylint: disable=no-value-for-parameter

  def summary_entries(self, exec_properties: Dict[str, Any],
                      tallies: Mapping[str, int]) -> Dict[str, Any]:
    """The de-identification record, and the burned-in pixel counts."""
    table = self.tables[0]
    record = deidentification.record(
        exec_properties[BURNED_IN_ANNOTATION_KEY],
        metadata.resolve_attributes(
            executor_base.list_property(exec_properties, EXTRA_ATTRIBUTES_KEY)),
        ([table.label_column] if table and table.label_column else []) +
        list(table.extra_columns if table else ()),
        self._salt == keys.DEFAULT_SALT, tallies)
    return {'deidentification': record,
            burned_in.CROPPED: record[burned_in.CROPPED],
            burned_in.KEPT: record[burned_in.KEPT]}
