"""The series converter without Beam: keys, limits, filters, parameters."""

import os
import pathlib
import shutil

import pydicom
import pytest

from image_example_gen import DicomExampleGen
from image_example_gen import limits
from image_example_gen import listing
from image_example_gen import rejects
from image_example_gen.dicom import display
from image_example_gen.dicom import volume
from image_example_gen.sample_data import ct

SALT = os.environ['IMAGE_EXAMPLE_GEN_SALT']


@pytest.fixture(scope='module')
def sample(tmp_path_factory) -> ct.CtSample:
  return ct.make_ct_sample(tmp_path_factory.mktemp('ct'), n_studies=2,
                           size=16, slices=8)


def _converter(key_source=None, **kwargs) -> volume.SeriesConverter:
  return volume.SeriesConverter(
      key_source, (), display.PixelOptions(), limits.SizeLimits(), SALT,
      **kwargs)


def _listed(root: pathlib.Path):
  return [item for item in listing.list_files(str(root), '**')]


def _copy_series(sample, kind, tmp_path) -> pathlib.Path:
  (series,) = [s for s in sample.series if s.kind == kind][:1]
  for path in series.files:
    target = tmp_path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sample.input_base / path, target)
  return tmp_path


def test_files_that_disagree_on_the_table_key_reject_the_series(sample,
                                                                tmp_path):
  root = _copy_series(sample, 'thin', tmp_path)
  items = _listed(root)
  odd = pydicom.dcmread(items[3].path)
  odd.AccessionNumber = 'ACC-OTHER'
  odd.save_as(items[3].path)
  items = _listed(root)
  converter = _converter('AccessionNumber')
  unit = converter.make_series([converter.read_slice(i) for i in items])
  assert unit.reject is None
  with pytest.raises(rejects.RejectError) as e:
    converter.join_key(unit)
  assert e.value.reason == rejects.INCONSISTENT_SERIES
  assert 'table keys' in e.value.detail


@pytest.mark.parametrize('keyword, value, words', [
    ('BitsStored', 16, '(16, 16, 0, 1'),
    ('PhotometricInterpretation', 'MONOCHROME1', "'MONOCHROME1')"),
    ('PatientID', 'SOMEONE-ELSE', 'PatientID'),
    ('StudyInstanceUID', '1.2.3.4', 'StudyInstanceUID'),
])
def test_files_of_a_series_that_differ_reject_it(sample, tmp_path, keyword,
                                                 value, words):
  root = _copy_series(sample, 'thin', tmp_path)
  odd = pydicom.dcmread(_listed(root)[2].path)
  setattr(odd, keyword, value)
  odd.save_as(_listed(root)[2].path)
  converter = _converter()
  unit = converter.make_series([converter.read_slice(i)
                                for i in _listed(root)])
  assert unit.reject[0] == rejects.INCONSISTENT_SERIES
  assert words in unit.reject[1]
  if keyword in ('PatientID', 'StudyInstanceUID'):  # Never in a record.
    assert value not in unit.reject[1]


def test_series_over_max_decoded_bytes_is_too_large(sample, tmp_path):
  items = _listed(_copy_series(sample, 'thin', tmp_path))
  converter = volume.SeriesConverter(
      None, (), display.PixelOptions(),
      limits.SizeLimits(max_decoded_bytes=16 * 16 * 2 * 5), SALT)
  unit = converter.make_series([converter.read_slice(i) for i in items])
  assert unit.reject[0] == rejects.TOO_LARGE
  assert 'max_decoded_bytes' in unit.reject[1]


def test_series_filter_is_checked_at_construction():
  with pytest.raises(ValueError, match='not a DICOM data set keyword'):
    DicomExampleGen(input_base='/tmp', unit='series',
                    series_filter={'NoSuchKeyword': 'x'})
  with pytest.raises(ValueError, match='not a regular expression'):
    DicomExampleGen(input_base='/tmp', unit='series',
                    series_filter={'SeriesDescription': '('})
  with pytest.raises(ValueError, match='sequence or binary'):
    DicomExampleGen(input_base='/tmp', unit='series',
                    series_filter={'PixelData': 'x'})
  with pytest.raises(ValueError, match="needs unit='series'"):
    DicomExampleGen(input_base='/tmp', series_filter={'Modality': 'CT'})
  with pytest.raises(ValueError, match='file_stem'):
    DicomExampleGen(input_base='/tmp', unit='series', metadata_file='x.csv')
  with pytest.raises(ValueError, match='min_slices'):
    DicomExampleGen(input_base='/tmp', unit='series', min_slices=1)
  with pytest.raises(ValueError, match='unit must be one of'):
    DicomExampleGen(input_base='/tmp', unit='volume')
  with pytest.raises(ValueError, match='spacing_tolerance'):
    DicomExampleGen(input_base='/tmp', unit='series', spacing_tolerance=1.5)


@pytest.mark.parametrize('image_type, expected', [
    (['ORIGINAL', 'PRIMARY', 'LOCALIZER'], True),
    (['ORIGINAL', 'PRIMARY', 'AXIAL'], False),
    ('LOCALIZER', False),  # Value 3 is what counts.
    (None, False),
])
def test_localizer(image_type, expected):
  ds = pydicom.Dataset()
  if image_type is not None:
    ds.ImageType = image_type
  assert volume.is_localizer(ds) == expected


def test_filter_matches_multi_valued_attributes_joined_by_backslashes():
  ds = pydicom.Dataset()
  ds.ImageType = ['DERIVED', 'SECONDARY', 'AXIAL']
  ds.SeriesDescription = 'T2 TSE SAG'
  compiled = volume.compile_series_filter(
      {'ImageType': r'^ORIGINAL\\', 'SeriesDescription': 'T2'})
  assert volume.filter_mismatch(ds, compiled).startswith(
      'ImageType does not match')
  ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL']
  assert volume.filter_mismatch(ds, compiled) == ''
  del ds.SeriesDescription
  assert 'SeriesDescription' in volume.filter_mismatch(ds, compiled)


def test_ct_sample_is_deterministic_and_accounts_for_every_file(tmp_path):
  first = ct.make_ct_sample(tmp_path / 'a', n_studies=3, size=32, slices=6,
                            variants=True)
  second = ct.make_ct_sample(tmp_path / 'b', n_studies=3, size=32, slices=6,
                             variants=True)
  files = sorted(p.relative_to(first.root) for p in first.root.rglob('*')
                 if p.is_file())
  assert files == sorted(p.relative_to(second.root)
                         for p in second.root.rglob('*') if p.is_file())
  for path in files:
    assert (first.root / path).read_bytes() == (
        second.root / path).read_bytes()
  outcomes = first.expected_outcomes()
  assert sorted(outcomes) == sorted(
      str(p.relative_to(first.input_base))
      for p in first.input_base.rglob('*.dcm'))
  assert len({s.label for s in first.series}) == 2
  # Several series share a folder: names do not say which series a file is.
  folders = {}
  for s in first.series:
    for path in s.files:
      folders.setdefault(path.rsplit('/', 1)[0], set()).add(s.series_uid)
  assert max(len(uids) for uids in folders.values()) > 2


def test_burned_in_rules_apply_to_every_file_of_a_series(sample, tmp_path):
  root = _copy_series(sample, 'thin', tmp_path)
  items = _listed(root)
  marked = pydicom.dcmread(items[2].path)
  marked.BurnedInAnnotation = 'YES'
  marked.save_as(items[2].path)
  items = _listed(root)
  with pytest.raises(rejects.RejectError) as e:
    _converter().read_slice(items[2])
  assert e.value.reason == rejects.BURNED_IN_ANNOTATION
  assert e.value.tallies == ('burned_in_rejected/burned_in_annotation_yes',)
  # 'keep' stacks the marked slice with the others and counts it.
  keeper = _converter(burned_in_annotation='keep')
  unit = keeper.make_series([keeper.read_slice(i) for i in items])
  converted = keeper.convert(unit, None)
  assert converted.tallies == ('burned_in_kept/burned_in_annotation_yes',)
  assert len(converted.examples) == 1
