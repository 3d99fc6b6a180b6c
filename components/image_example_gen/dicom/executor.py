"""DicomExampleGen's executor: one Beam transform from DICOM files to Examples.

The metadata table is joined to the files in Beam (`table_join`); each file
is converted by `converter.DicomFileConverter`.
"""

import logging
from typing import Any, Dict, Optional

from image_example_gen import conversion
from image_example_gen import example
from image_example_gen import executor_base
from image_example_gen import keys
from image_example_gen import limits as limits_lib
from image_example_gen import table_params
from image_example_gen import tables
from image_example_gen.dicom import converter as converter_lib
from image_example_gen.dicom import metadata
from image_example_gen.dicom import display

EXTRA_ATTRIBUTES_KEY = 'extra_attributes'
APPLY_VOI_KEY = 'apply_voi'
BIT_DEPTH_KEY = 'bit_depth'
RESIZE_KEY = 'resize'
MULTI_FRAME_KEY = 'multi_frame'
MAX_FRAMES_KEY = 'max_frames'
MAX_DECODED_BYTES_KEY = 'max_decoded_bytes'
MAX_PIXELS_KEY = executor_base.MAX_PIXELS_KEY
MAX_REJECT_FRACTION_KEY = executor_base.MAX_REJECT_FRACTION_KEY
MULTI_FRAME_POLICIES = converter_lib.MULTI_FRAME_POLICIES


def table_spec(exec_properties: Dict[str, Any],
               folder: str = '') -> Optional[tables.TableSpec]:
  """The TableSpec of the metadata table; None without one."""
  path = exec_properties.get(table_params.METADATA_FILE_KEY)
  if not path:
    return None
  converter_lib.check_key_source(exec_properties[table_params.KEY_SOURCE_KEY])
  return table_params.table_spec(exec_properties, path, folder,
                                 integer_labels=True)


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


class Executor(executor_base.ImageExampleGenExecutor):
  """Converts every DICOM file into Examples or a reject record."""

  group_key = example.PATIENT_KEY

  def prepare(self, exec_properties: Dict[str, Any], output_uri: str) -> None:
    self._salt = keys.resolve_salt()
    path = exec_properties.get(table_params.METADATA_FILE_KEY)
    table = table_spec(exec_properties, path and self.table_folder(
        path, exec_properties[table_params.KEY_SOURCE_KEY]))
    if table is not None:
      # Fails now, naming the file and its columns.
      table = tables.check_table(table, conversion.open_file)
      if table.label_column is None:
        logging.warning('%s has no label column: the Examples have no '
                        '`label` feature.', table.path)
    self.tables = [table] * len(executor_base.input_patterns(exec_properties))

  def make_converter(self, exec_properties: Dict[str, Any],
                     split_pattern: str) -> conversion.FileConverter:
    del split_pattern
    table = self.tables[0]
    return converter_lib.DicomFileConverter(
        table.key_source if table else None,
        metadata.resolve_attributes(
            executor_base.list_property(exec_properties, EXTRA_ATTRIBUTES_KEY)),
        pixel_options(exec_properties), exec_properties[MULTI_FRAME_KEY],
        size_limits(exec_properties), self._salt,
        table.folder if table else '')
