"""How an image folder's paths map to splits, classes and labels.

Pure functions on paths relative to `input_base`, with '/' separators:

    input_base/<class>/.../<file>             class-per-folder
    input_base/<split>/<class>/.../<file>     with input split folders
    input_base/<file>, input_base/<split>/<file>   no class folders: unlabelled

The class of a file is its top-level folder (below the split folder, if any),
so images may sit in sub-folders of their class folder; or, with
`label_pattern`, the group of a regular expression searched in its path
(`name_label`). Labels are indices into the sorted class vocabulary.
"""

import collections
import re
import types
from typing import Iterable, List, Mapping, Optional

from image_example_gen import rejects

# Top-level folder name (lower-cased) -> output split name. `val` and
# `validation` become `eval`, the split that TFX's Trainer and Evaluator read
# for evaluation by default, so a pipeline needs no split configuration.
SPLIT_FOLDERS: Mapping[str, str] = types.MappingProxyType({
    'train': 'train',
    'val': 'eval',
    'validation': 'eval',
    'eval': 'eval',
    'test': 'test',
})


def _components(rel_path: str) -> List[str]:
  """The path's components; raises ValueError unless it is relative."""
  if not rel_path or rel_path.startswith('/'):
    raise ValueError(
        f'Expected a path relative to input_base, got {rel_path!r}.')
  return [part for part in rel_path.split('/') if part]


def class_of(rel_path: str, has_split_folders: bool) -> Optional[str]:
  """The class folder of a file, or None for a file outside any class folder.

  Args:
    rel_path: the file's path relative to `input_base`.
    has_split_folders: whether the top level holds split folders (see
      `detect_split_folders`), in which case the class folder is the second
      component.

  Returns:
    The folder name, or None when the file lies directly in `input_base` (or
    directly in a split folder).
  """
  parts = _components(rel_path)
  depth = 1 if has_split_folders else 0
  if len(parts) < depth + 2:
    return None
  return parts[depth]


def name_label(rel_path: str, pattern: str) -> str:
  """The class of a file from its path, by `label_pattern`.

  Args:
    rel_path: the file's path below its split folder (below `input_base`
      without split folders).
    pattern: a regular expression with one group, searched in `rel_path`
      (`r'^(cat|dog)\\.\\d+\\.jpg$'`, `r'([A-Za-z_]+)_\\d+\\.jpg$'`).

  Raises:
    rejects.RejectError: `no_label_in_name` when it does not match, or its
      group is empty.
  """
  match = re.search(pattern, rel_path)
  if match is None or not match.group(1):
    raise rejects.RejectError(
        rejects.NO_LABEL_IN_NAME,
        f'label_pattern {pattern!r} ' +
        ('does not match the path' if match is None else 'matches an empty '
         'class'))
  return match.group(1)


def detect_split_folders(
    top_level_names: Iterable[str]) -> Optional[List[str]]:
  """The split folders of `input_base`, or None for a class-per-folder layout.

  Args:
    top_level_names: names of the folders directly in `input_base`. Files
      there belong to no class in either layout, so callers leave them out.

  Returns:
    The folder names, sorted, when every non-hidden one is a split folder
    (`SPLIT_FOLDERS`, compared case-insensitively); None when there is none
    or any other folder is present, which makes every folder a class.

  Raises:
    ValueError: when two folders map to the same split (`val/` and
      `validation/`, or `Train/` and `train/`).
  """
  names = sorted(name for name in top_level_names if not name.startswith('.'))
  if not names or any(name.lower() not in SPLIT_FOLDERS for name in names):
    return None
  by_split = {}
  for name in names:
    split = SPLIT_FOLDERS[name.lower()]
    if split in by_split:
      raise ValueError(
          f'Split folders {by_split[split]!r} and {name!r} in input_base '
          f'both map to split {split!r}; merge them or rename one.')
    by_split[split] = name
  return names


def class_vocabulary(class_names: Iterable[str]) -> List[str]:
  """The sorted class vocabulary: a class's label is its index in the list.

  Names sort by code point, as in Keras' `image_dataset_from_directory` and
  Hugging Face's imagefolder, so uppercase names come before lowercase ones.

  Args:
    class_names: class folder names, in any order.

  Returns:
    The names, sorted.

  Raises:
    ValueError: when there are no names, a name repeats, or a name cannot be a
      folder name or a line of the vocabulary file (empty, hidden, or holding
      '/' or a line break).
  """
  if isinstance(class_names, str):
    raise ValueError(
        f'Expected a collection of class names, got the string '
        f'{class_names!r}.')
  names = list(class_names)
  if not names:
    raise ValueError('No classes: expected at least one class folder.')
  for name in names:
    if (not isinstance(name, str) or not name or name.startswith('.') or
        any(c in name for c in '/\n\r')):
      raise ValueError(f'Invalid class name {name!r}.')
  duplicates = sorted(
      name for name, n in collections.Counter(names).items() if n > 1)
  if duplicates:
    raise ValueError(f'Class names repeat: {duplicates}.')
  return sorted(names)
