"""The ExampleGen options of the command lines, one flag per parameter.

`pipeline.py run` and `python -m image_example_gen convert` take the same
flags (`add_example_gen_flags`) and turn them into the same keyword
arguments (`example_gen_args`). Importing this module costs no TFX or
TensorFlow, so `--help` answers at once.
"""

import argparse
from typing import Any, Dict, List

from image_example_gen import rejects

DICOM = 'dicom'
IMAGES = 'images'

# The flags (argparse dest, the parameter of the same name) of each
# component: both name the table join alike.
_FLAGS = {
    IMAGES: ('metadata_file', 'key_column', 'key_source', 'label_column',
             'label_separator', 'label_pattern', 'extra_columns',
             'column_types', 'group_column', 'class_names', 'max_size',
             'allowed_extensions', 'ignore_patterns', 'max_reject_fraction'),
    DICOM: ('metadata_file', 'key_column', 'key_source', 'label_column',
            'extra_columns', 'column_types', 'group_column', 'ignore_patterns',
            'max_reject_fraction', 'unit'),
}


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


def _types(value: str) -> Dict[str, str]:
  """'score=float,id=bytes' -> {'score': 'float', 'id': 'bytes'}."""
  pairs = [item.split('=', 1) for item in _list(value)]
  if any(len(pair) != 2 for pair in pairs):
    raise argparse.ArgumentTypeError(
        f'expected column=type pairs, e.g. score=float,id=bytes; got {value!r}')
  return {column.strip(): kind.strip() for column, kind in pairs}


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
      '--key-source', help='what the key column holds: relative_path, '
                           'file_stem, a regular expression with one group '
                           'on the path, or (DICOM) a keyword such as '
                           'SOPInstanceUID (images: relative_path; DICOM: '
                           'file_stem)')
  group.add_argument('--label-column',
                     help='the table\'s label column (default: label)')
  group.add_argument('--label-separator',
                     help='images: several labels per cell, split on this '
                          '(multi-label)')
  group.add_argument('--label-pattern',
                     help='images: a regular expression with one group that '
                          'finds the class in each path, e.g. '
                          r"'^(cat|dog)\.\d+\.jpg$'")
  group.add_argument('--extra-columns', type=_list,
                     help='table columns exported as features (images: '
                          'default every column)')
  group.add_argument('--column-types', type=_types,
                     help='declared column types, e.g. score=float,id=bytes '
                          '(default: inferred over the whole table)')
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
  group.add_argument('--unit', choices=('image', 'series'),
                     help="DICOM: an Example per frame, or per series (a "
                          "volume; then --key-source must be a keyword such "
                          "as StudyInstanceUID) (default: image)")
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
  given = {flag: getattr(args, flag, None)
           for flag in (*_FLAGS[IMAGES], *_FLAGS[DICOM])}
  given = {flag: value for flag, value in given.items() if value is not None}
  foreign = sorted(flag for flag in given if flag not in _FLAGS[component])
  if foreign:
    raise ValueError(
        f'{", ".join("--" + flag.replace("_", "-") for flag in foreign)} '
        f'{"is" if len(foreign) == 1 else "are"} not an option of the '
        f'{component} ExampleGen.')
  return given
