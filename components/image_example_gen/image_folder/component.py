"""ImageFolderExampleGen: a class-per-folder image tree to tf.Examples."""

import logging
import os
from typing import List, Optional

from tfx.components.example_gen import component
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2
from tfx.types import component_spec

from image_example_gen import component_base
from image_example_gen import driver
from image_example_gen import example
from image_example_gen.image_folder import executor
from image_example_gen.image_folder import layout


class ImageFolderExampleGenSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      **component_base.SHARED_PARAMETERS,
      executor.CLASS_NAMES_KEY: component_spec.ExecutionParameter(
          type=List[str], optional=True),
      executor.EXIF_TRANSPOSE_KEY: component_spec.ExecutionParameter(
          type=bool),
      executor.MAX_SIZE_KEY: component_spec.ExecutionParameter(
          type=int, optional=True),
  }
  INPUTS = {}
  OUTPUTS = component.FileBasedExampleGen.SPEC_CLASS.OUTPUTS


class ImageFolderExampleGen(component.FileBasedExampleGen):
  """Reads `input_base/<class>/**/<image>` into Examples (DESIGN.md §3).

  Every file under `input_base` becomes one Example or one reject record
  (`<examples>/rejects/`). Labels are indices into the sorted class folder
  names (or `class_names`), written to `<examples>/label_vocabulary.txt`.
  If the top level holds `train/`, `val/` or `validation/`, `test/` folders
  of class folders, they become the splits `train`, `eval`, `test`;
  otherwise `image/key` hash buckets split 2:1 into `train` and `eval`.
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
      max_reject_fraction: float = component_base.DEFAULT_MAX_REJECT_FRACTION,
      input_config: Optional[example_gen_pb2.Input] = None,
      output_config: Optional[example_gen_pb2.Output] = None,
      range_config: Optional[range_config_pb2.RangeConfig] = None):
    """Constructs an ImageFolderExampleGen.

    Args:
      input_base: folder (local path or any Beam/TF filesystem URI) holding one
        folder per class, or `train/`, `val/`, `test/` folders of those.
      class_names: the class vocabulary in label order (label = index).
        Default: the sorted names of the class folders found. Files in other folders are
        rejected with reason `unknown_class`.
      exif_transpose: apply the EXIF orientation, so pixels are as a viewer
        shows them (such images are stored re-encoded as PNG).
      max_size: downscale images whose longer side exceeds this many pixels
        (aspect kept; stored as PNG). Default: keep the original size.
      max_reject_fraction: fail the component when more than this fraction
        of the input files is rejected.
      input_config: TFX input splits; patterns are globs relative to
        `input_base` where `**` matches across folders. Default: split
        folders when present, else the single pattern `**`.
      output_config: TFX output splits. Default: train:eval 2:1 hash buckets
        on `image/key` (ignored when the input has several splits).
      range_config: TFX span range, for patterns with `{SPAN}`.
    """
    if class_names is not None:
      layout.class_vocabulary(class_names)  # Validates; the order is kept.
      class_names = list(class_names)
    if max_size is not None and max_size <= 0:
      raise ValueError(f'max_size must be positive, got {max_size}.')
    component_base.check_fraction(max_reject_fraction)
    component_base.init_component(
        self, input_base,
        input_config or _default_input_config(input_base),
        output_config, range_config, example.IMAGE_KEY,
        {executor.CLASS_NAMES_KEY: class_names,
         executor.EXIF_TRANSPOSE_KEY: exif_transpose,
         executor.MAX_SIZE_KEY: max_size,
         executor.MAX_REJECT_FRACTION_KEY: max_reject_fraction})


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
