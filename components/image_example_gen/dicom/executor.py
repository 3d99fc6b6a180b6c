"""DicomExampleGen's executor: one Beam transform from DICOM files to Examples.

Per file: pydicom reads the header (`stop_before_pixels`), the label row is
looked up by key in the CSV read once by the executor, then the frames are
decoded and rendered one at a time (`pixels.iter_frames`) and PNG-encoded.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import pydicom
from pydicom import errors as pydicom_errors
import tensorflow as tf

from image_example_gen import codecs
from image_example_gen import conversion
from image_example_gen import example
from image_example_gen import executor_base
from image_example_gen import keys
from image_example_gen import rejects
from image_example_gen.dicom import labels
from image_example_gen.dicom import metadata
from image_example_gen.dicom import pixels

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
MAX_REJECT_FRACTION_KEY = executor_base.MAX_REJECT_FRACTION_KEY

# Which frames of a multi-frame file become Examples.
MULTI_FRAME_POLICIES = ('all', 'first', 'middle')


def label_spec(exec_properties: Dict[str, Any]) -> Optional[labels.LabelSpec]:
  """The LabelSpec of the component's parameters; None without a CSV."""
  if not exec_properties.get(LABELS_CSV_KEY):
    return None
  return labels.LabelSpec(
      csv_path=exec_properties[LABELS_CSV_KEY],
      key_column=exec_properties[LABEL_KEY_COLUMN_KEY],
      key_source=exec_properties[LABEL_KEY_SOURCE_KEY],
      label_column=exec_properties.get(LABEL_COLUMN_KEY) or None,
      patient_column=exec_properties.get(PATIENT_COLUMN_KEY) or None,
      extra_columns=tuple(
          executor_base.list_property(exec_properties, EXTRA_COLUMNS_KEY)))


def pixel_options(exec_properties: Dict[str, Any]) -> pixels.PixelOptions:
  return pixels.PixelOptions(
      apply_voi=bool(exec_properties[APPLY_VOI_KEY]),
      bit_depth=exec_properties.get(BIT_DEPTH_KEY) or None,
      resize=exec_properties.get(RESIZE_KEY) or None)


def frame_indices(num_frames: int, policy: str) -> Sequence[int]:
  """The frames of a `num_frames` file that `policy` keeps."""
  if policy == 'first':
    return [0]
  if policy == 'middle':
    return [num_frames // 2]
  return range(num_frames)


class DicomFileConverter(conversion.FileConverter):
  """Reads, labels, decodes and renders one DICOM file."""

  def __init__(self, spec: Optional[labels.LabelSpec],
               table: Optional[labels.LabelTable], attributes: Sequence[str],
               options: pixels.PixelOptions, multi_frame: str, salt: str):
    self._spec = spec
    self._table = table
    self._attributes = tuple(attributes)
    self._options = options
    self._multi_frame = multi_frame
    self._salt = salt

  def convert(self, rel_path: str, path: str,
              size: int) -> Tuple[List[tf.train.Example], str]:
    if size == 0:
      raise conversion.RejectError(rejects.EMPTY_FILE)
    try:
      with conversion.open_file(path) as f:
        return self._convert_open(rel_path, f)
    except OSError as e:
      raise conversion.RejectError(rejects.UNREADABLE, str(e)) from e

  def _convert_open(self, rel_path, f) -> Tuple[List[tf.train.Example], str]:
    ds = _read_header(f)
    reason = pixels.check_pixel_attributes(ds)
    if reason:
      raise conversion.RejectError(reason, 'Image Pixel module incomplete')
    image_id = str(ds.get('SOPInstanceUID') or rel_path)
    features, marker = self._label_features(rel_path, ds, image_id)
    features.update(metadata.extract(ds, self._attributes))
    syntax = metadata.transfer_syntax_uid(ds)
    if syntax:
      features[metadata.TRANSFER_SYNTAX_FEATURE] = syntax
    image_key = keys.keyed_hash(image_id, self._salt, 'image')
    num_frames = int(ds.get('NumberOfFrames') or 1)
    f.seek(0)
    examples = []
    try:
      for frame in pixels.iter_frames(
          f, ds, self._options, frame_indices(num_frames, self._multi_frame)):
        height, width = frame.pixels.shape[:2]
        channels = 1 if frame.pixels.ndim == 2 else frame.pixels.shape[2]
        frame_features = dict(features)
        frame_features.update(example.image_features(
            codecs.encode_png(frame.pixels), 'png', height, width, channels,
            image_key))
        frame_features[example.IMAGE_BIT_DEPTH] = frame.bit_depth
        frame_features[metadata.FRAME_INDEX_FEATURE] = frame.index
        examples.append(example.make_example(frame_features))
    except Exception as e:  # pylint: disable=broad-except
      raise conversion.RejectError(pixels.decode_error_reason(e),
                                   f'{type(e).__name__}: {e}') from e
    return examples, marker

  def _label_features(self, rel_path: str, ds: pydicom.Dataset,
                      image_id: str) -> Tuple[Dict[str, Any], str]:
    """Label, extra columns and patient key; the join marker."""
    features, row, marker = {}, None, ''
    if self._spec is not None:
      key = labels.join_key(self._spec, rel_path, ds)
      if key is None:
        raise conversion.RejectError(rejects.NO_LABEL_ROW, 'file has no key')
      marker = keys.keyed_hash(key, self._salt, 'join')
      row = self._table.lookup(key)
      if isinstance(row, str):
        raise conversion.RejectError(
            row, self._table.invalid_keys.get(labels.normalize_key(key), ''))
      if row.label is not None:
        features[example.LABEL] = row.label
      features.update(row.extras)
    patient_id = row.patient_id if row and self._spec.patient_column else (
        str(ds.get('PatientID') or '').strip())
    # Without a patient id the image is its own patient: it cannot leak into
    # another split, and it is not lost.
    features[example.PATIENT_KEY] = (
        keys.keyed_hash(patient_id, self._salt, 'patient') if patient_id else
        keys.keyed_hash(image_id, self._salt, 'image'))
    return features, marker


def _read_header(f) -> pydicom.Dataset:
  try:
    return pydicom.dcmread(f, stop_before_pixels=True)
  except pydicom_errors.InvalidDicomError as e:
    raise conversion.RejectError(rejects.NOT_DICOM, str(e)) from e
  except Exception as e:  # pylint: disable=broad-except
    raise conversion.RejectError(rejects.INVALID_DICOM,
                                 f'{type(e).__name__}: {e}') from e


class Executor(executor_base.ImageExampleGenExecutor):
  """Converts every DICOM file into Examples or a reject record."""

  def prepare(self, exec_properties: Dict[str, Any], output_uri: str) -> None:
    self._salt = keys.resolve_salt()
    self._spec = label_spec(exec_properties)
    self._table = (labels.read_label_table(
        self._spec, lambda p, _: conversion.open_file(p))
                   if self._spec else None)

  def make_converter(self, exec_properties: Dict[str, Any],
                     split_pattern: str) -> conversion.FileConverter:
    del split_pattern
    return DicomFileConverter(
        self._spec, self._table,
        metadata.resolve_attributes(
            executor_base.list_property(exec_properties, EXTRA_ATTRIBUTES_KEY)),
        pixel_options(exec_properties), exec_properties[MULTI_FRAME_KEY],
        self._salt)

  def summarize_markers(self, markers: List[str],
                        exec_properties: Dict[str, Any]) -> Dict[str, Any]:
    if self._table is None:
      return {}
    found = set(markers)
    hashed = {keys.keyed_hash(key, self._salt, 'join'): key
              for key in (set(self._table.rows) |
                          set(self._table.duplicate_rows) |
                          set(self._table.invalid_keys))}
    matched = [key for h, key in hashed.items() if h in found]
    return {'label_join': labels.summarize_join(self._table, matched)}
