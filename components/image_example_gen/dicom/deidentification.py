"""The de-identification record of a DicomExampleGen artifact (design §7).

`ingest_summary.json` and the Examples artifact's `deidentification` custom
property hold it, so that what was done to the data can be shown from the
artifact alone: the header allow-list and its version, the keyed hashes, the
DICOM PS3.15 profile and options that apply, and what each burned-in pixel
rule (`burned_in.py`) did to how many files.
"""

import hashlib
import json
from typing import Any, Dict, Mapping, Sequence

from image_example_gen.dicom import burned_in
from image_example_gen.dicom import metadata

# The edition of PS3.15 Table E.1-1 that `metadata.PHI_KEYWORDS` follows.
PS3_15_EDITION = '2024b'

_CLEAN_PIXEL_DATA = {
    burned_in.CROP: (
        'applied: ultrasound cropped to its Sequence of Ultrasound Regions; '
        'files of the other burned-in rules rejected'),
    burned_in.REJECT: 'applied: files of every burned-in rule rejected',
    burned_in.KEEP: (
        "not applied: burned_in_annotation='keep' kept every file's pixels "
        'as stored'),
}


def allow_list_version() -> str:
  """'<PS3.15 edition>-<12 hex digits>' of the lists `metadata`'s rule uses.

  The digits are a SHA-256 of the default attributes, the safe text
  attributes and the PS3.15 keywords: they change whenever the allow-list
  or the refusal list does.
  """
  lists = {'default': list(metadata.DEFAULT_ATTRIBUTES),
           'safe_text': sorted(metadata.SAFE_TEXT_KEYWORDS),
           'ps3_15': sorted(metadata.PHI_KEYWORDS)}
  digest = hashlib.sha256(json.dumps(lists, sort_keys=True).encode('utf-8'))
  return f'{PS3_15_EDITION}-{digest.hexdigest()[:12]}'


def burned_in_counts(tallies: Mapping[str, int]) -> Dict[str, Dict[str, int]]:
  """Rule -> outcome -> files, every rule and outcome, from the tallies."""
  return {rule: {outcome: tallies.get(f'{outcome}/{rule}', 0)
                 for outcome in burned_in.OUTCOMES}
          for rule in burned_in.RULES}


def record(policy: str, attributes: Sequence[str],
           table_columns: Sequence[str], public_salt: bool,
           tallies: Mapping[str, int]) -> Dict[str, Any]:
  """The de-identification record of one run.

  Args:
    policy: the `burned_in_annotation` parameter.
    attributes: the header attributes exported as `dicom/*` features.
    table_columns: the labels table's columns exported as features.
    public_salt: whether the identifiers were hashed with the public default
      salt (no secret was set).
    tallies: what the converters reported ('<outcome>/<rule>' -> files).
  """
  counts = burned_in_counts(tallies)
  return {
      'profile': (f'DICOM PS3.15 Annex E Basic Application Level '
                  f'Confidentiality Profile (Table E.1-1, {PS3_15_EDITION}): '
                  'none of its attributes is exported'),
      'options': {
          'clean_pixel_data': _CLEAN_PIXEL_DATA[policy],
          'retain_safe_private': False,
          'other_retain_options': False,
      },
      'header': ('allow-list: only `attributes` become dicom/* features; '
                 'private attributes, names, dates, times, UIDs, ages, AE '
                 'titles and free text other than the equipment\'s '
                 'manufacturer and model are refused'),
      'attributes': list(attributes),
      'allow_list_version': allow_list_version(),
      'identifiers': ('image/key (SOP Instance UID) and patient/key (Patient '
                      'ID or the table\'s patient column) are HMAC-SHA256 '
                      'keyed hashes; the salt is not in the artifact'),
      'salt': ('public default: short ids can be recovered by hashing '
               'candidates' if public_salt else
               'secret, from the environment'),
      'table_columns': list(table_columns),
      'burned_in_annotation': policy,
      'burned_in_rules': counts,
      **{outcome: sum(by_outcome[outcome] for by_outcome in counts.values())
         for outcome in burned_in.OUTCOMES},
  }
