"""The ExampleGen options of the command lines, one flag per parameter.

`pipeline.py run` and `python -m image_example_gen convert` take the same
flags (`add_example_gen_flags`) and turn them into the same keyword
arguments (`example_gen_args`). Importing this module costs no TFX or
TensorFlow, so `--help` answers at once.
"""

import argparse
from typing import Any, Dict, List, Optional

from image_example_gen import rejects

DICOM = 'dicom'
IMAGES = 'images'

# Flag (argparse dest) -> the parameter of each component; None: the
# component has no such parameter.
_PARAMETERS = {
    'metadata_file': {IMAGES: 'metadata_file', DICOM: 'labels_csv'},
    'key_column': {IMAGES: 'key_column', DICOM: 'label_key_column'},
    'key_source': {IMAGES: 'key_source', DICOM: 'label_key_source'},
    'label_column': {IMAGES: 'label_column', DICOM: 'label_column'},
    'label_separator': {IMAGES: 'label_separator', DICOM: None},
    'extra_columns': {IMAGES: 'extra_columns', DICOM: 'extra_columns'},
    'group_column': {IMAGES: 'group_column', DICOM: 'patient_column'},
    'class_names': {IMAGES: 'class_names', DICOM: None},
    'max_size': {IMAGES: 'max_size', DICOM: None},
    'allowed_extensions': {IMAGES: 'allowed_extensions', DICOM: None},
    'ignore_patterns': {IMAGES: 'ignore_patterns', DICOM: 'ignore_patterns'},
    'max_reject_fraction': {IMAGES: 'max_reject_fraction',
                            DICOM: 'max_reject_fraction'},
}
_LISTS = ('extra_columns', 'class_names', 'allowed_extensions',
          'ignore_patterns')


class HelpFormatter(argparse.HelpFormatter):
  """Shows each flag's default, where it has one."""

  def _get_help_string(self, action: argparse.Action) -> str:
    text = action.help or ''
    if (action.default not in (None, '', False, argparse.SUPPRESS) and
        '%(default)' not in text):
      text += ' (default: %(default)s)'
    return text


def _list(value: str) -> List[str]:
  return [item.strip() for item in value.split(',') if item.strip()]


def add_example_gen_flags(parser: argparse.ArgumentParser) -> None:
  """Adds the ExampleGen's flags; unset ones keep the component's default."""
  group = parser.add_argument_group(
      'ExampleGen (unset: the component\'s default; lists are '
      'comma-separated)')
  group.add_argument(
      '--metadata-file', '--labels-csv', dest='metadata_file',
      help='CSV, JSONL or Parquet table with a row per image (images: '
           'default metadata.csv/.jsonl at the top of --input-base, if any)')
  group.add_argument(
      '--key-column', help='the table column naming each file (images: '
                           'file_name; DICOM: image_id)')
  group.add_argument(
      '--key-source', help='what the key column holds: relative_path or '
                           'file_stem (DICOM: a keyword such as '
                           'SOPInstanceUID) (images: relative_path; DICOM: '
                           'file_stem)')
  group.add_argument('--label-column',
                     help='the table\'s label column (default: label)')
  group.add_argument('--label-separator',
                     help='images: several labels per cell, split on this '
                          '(multi-label)')
  group.add_argument('--extra-columns', type=_list,
                     help='table columns exported as features')
  group.add_argument(
      '--group-column', '--patient-column', dest='group_column',
      help='rows with one value here never span two splits (DICOM: the '
           'patient id column; default: the DICOM PatientID)')
  group.add_argument('--class-names', type=_list,
                     help='images: the classes in label order (default: the '
                          'sorted class folders)')
  group.add_argument('--max-size', type=int,
                     help='images: downscale images whose longer side '
                          'exceeds this many pixels')
  group.add_argument('--allowed-extensions', type=_list,
                     help='images: only files with these extensions, e.g. '
                          '.jpg,.png (default: any file that is an image)')
  group.add_argument('--ignore-patterns', type=_list,
                     help='files to skip: names (*.xml, masks) or paths '
                          '(train/extra/*)')
  group.add_argument(
      '--max-reject-fraction', type=float,
      help='fail when a larger fraction of the input files is rejected '
           f'(default: {rejects.DEFAULT_MAX_REJECT_FRACTION}; skipped junk '
           'does not count)')


def example_gen_args(args: argparse.Namespace,
                     component: str) -> Dict[str, Any]:
  """The component's keyword arguments of the flags that were given.

  Args:
    args: parsed flags of `add_example_gen_flags`.
    component: IMAGES (ImageFolderExampleGen) or DICOM (DicomExampleGen).

  Raises:
    ValueError: a flag the component does not have.
  """
  result = {}
  for flag, names in _PARAMETERS.items():
    value: Optional[Any] = getattr(args, flag, None)
    if value is None:
      continue
    if names[component] is None:
      raise ValueError(f'--{flag.replace("_", "-")} is not an option of the '
                       f'{component} ExampleGen.')
    result[names[component]] = value
  return result
