"""Tests for image_example_gen.dicom.metadata: allow-list and PHI refusal."""

import io

import pydicom
from pydicom import config
from pydicom import datadict
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
import pytest

from image_example_gen.dicom import metadata

OBVIOUS_PHI = (
    'PatientName', 'PatientID', 'PatientBirthDate', 'StudyDate',
    'AccessionNumber', 'InstitutionName', 'ReferringPhysicianName',
    'SOPInstanceUID', 'StudyInstanceUID', 'DeviceSerialNumber',
    'StudyDescription', 'OtherPatientIDs', 'PatientAddress', 'OperatorsName',
    'SeriesDescription', 'StationName', 'PatientAge', 'PatientSex',
    'PatientWeight', 'ContentTime', 'ImageComments', 'GPSLatitude')

# Allowed attributes may only be codes and numbers, or these free-text ones.
CODE_AND_NUMBER_VRS = frozenset(
    ('CS', 'IS', 'DS', 'US', 'SS', 'UL', 'SL', 'UV', 'SV', 'FL', 'FD'))

# docs/design.md §3 names these features.
DESIGN_FEATURES = (
    'dicom/modality', 'dicom/photometric_interpretation', 'dicom/bits_stored',
    'dicom/image_laterality', 'dicom/view_position', 'dicom/window_center',
    'dicom/window_width', 'dicom/voi_lut_function', 'dicom/rescale_slope',
    'dicom/rescale_intercept', 'dicom/manufacturer')


def _vrs(keyword):
  tag = datadict.tag_for_keyword(keyword)
  return set(datadict.dictionary_VR(tag).split(' or '))


@pytest.mark.parametrize('keyword, name', [
    ('PhotometricInterpretation', 'dicom/photometric_interpretation'),
    ('VOILUTFunction', 'dicom/voi_lut_function'),
    ('BitsStored', 'dicom/bits_stored'),
    ('WindowCenter', 'dicom/window_center'),
    ('RescaleSlope', 'dicom/rescale_slope'),
    ('Modality', 'dicom/modality'),
    ('TransferSyntaxUID', metadata.TRANSFER_SYNTAX_FEATURE),
    ('SOPInstanceUID', 'dicom/sop_instance_uid'),
    ('ModalityLUTSequence', 'dicom/modality_lut_sequence'),
    ('XRayTubeCurrent', 'dicom/x_ray_tube_current'),
    ('KVP', 'dicom/kvp'),
    ('MRAcquisitionType', 'dicom/mr_acquisition_type'),
])
def test_feature_name(keyword, name):
  assert metadata.feature_name(keyword) == name


def test_feature_names_are_distinct_over_allowed_keywords():
  allowed = [k for k in datadict.keyword_dict if metadata.refusal(k) is None]
  names = {metadata.feature_name(k) for k in allowed}
  assert len(names) == len(allowed)
  assert metadata.FRAME_INDEX_FEATURE not in names


def test_defaults_cover_the_design_and_are_allowed():
  names = {metadata.feature_name(k) for k in metadata.DEFAULT_ATTRIBUTES}
  names |= {metadata.TRANSFER_SYNTAX_FEATURE, metadata.FRAME_INDEX_FEATURE}
  assert set(DESIGN_FEATURES) <= names
  assert metadata.resolve_attributes() == metadata.DEFAULT_ATTRIBUTES
  for keyword in metadata.DEFAULT_ATTRIBUTES:
    assert keyword not in metadata.PHI_KEYWORDS
    assert metadata.refusal(keyword) is None, keyword


@pytest.mark.parametrize('keyword', OBVIOUS_PHI)
def test_obvious_phi_is_refused(keyword):
  with pytest.raises(ValueError, match=f'{keyword}.*PS3.15'):
    metadata.resolve_attributes([keyword])
  with pytest.raises(ValueError, match=keyword):
    metadata.extract(Dataset(), [keyword])


def test_every_profile_keyword_is_refused_and_spelled_right():
  assert len(metadata.PHI_KEYWORDS) > 600
  for keyword in metadata.PHI_KEYWORDS:
    assert (datadict.tag_for_keyword(keyword) is not None or
            datadict.repeater_has_keyword(keyword)), keyword
    assert metadata.refusal(keyword) is not None, keyword


def test_allowed_keywords_are_only_codes_numbers_and_safe_text():
  allowed = [k for k in datadict.keyword_dict if metadata.refusal(k) is None]
  assert len(allowed) > 1000
  for keyword in allowed:
    assert keyword not in metadata.PHI_KEYWORDS
    assert (_vrs(keyword) <= CODE_AND_NUMBER_VRS or
            keyword in metadata.SAFE_TEXT_KEYWORDS), keyword
  assert metadata.SAFE_TEXT_KEYWORDS <= set(allowed)
  assert not metadata.SAFE_TEXT_KEYWORDS & metadata.PHI_KEYWORDS


@pytest.mark.parametrize('keyword, vr', [
    ('SecondaryReviewerName', 'PN'),
    ('DateOfGainCalibration', 'DA'),
    ('TimeOfGainCalibration', 'TM'),
    ('ExpirationDateTime', 'DT'),
    ('SOPClassUID', 'UI'),
    ('SoftwareVersions', 'LO'),
    ('WindowCenterWidthExplanation', 'LO'),
    ('ReceiveCoilName', 'SH'),
    ('CodeMeaning', 'LO'),
    ('CalibrationNotes', 'LT'),
])
def test_vr_rule_refuses_what_the_profile_does_not_list(keyword, vr):
  assert keyword not in metadata.PHI_KEYWORDS
  with pytest.raises(ValueError, match=f'{keyword} has VR {vr}.*PS3.15'):
    metadata.resolve_attributes([keyword])


@pytest.mark.parametrize('keyword, match', [
    ('AnatomicRegionsInStudyCodeSequence', 'sequence'),
    ('PixelData', 'binary'),
    ('RedPaletteColorLookupTableData', 'binary'),
    ('FrameIncrementPointer', 'VR AT'),
    ('TransferSyntaxUID', 'file meta'),
    ('CommandGroupLength', 'command'),
    ('OverlayRows', 'not a DICOM keyword'),
    ('PatientsName', 'not a DICOM keyword'),
    ('(0010,0010)', 'not a DICOM keyword'),
    ('modality', 'not a DICOM keyword'),
])
def test_refuses_what_is_no_single_data_set_code_or_number(keyword, match):
  with pytest.raises(ValueError, match=match):
    metadata.resolve_attributes([keyword])


@pytest.mark.parametrize('extra', ['Modality', [7], [None]])
def test_extra_must_be_keywords(extra):
  with pytest.raises(ValueError):
    metadata.resolve_attributes(extra)


def test_resolve_appends_extra_without_repeats():
  resolved = metadata.resolve_attributes(
      ['NumberOfFrames', 'Modality', 'KVP', 'NumberOfFrames'])
  assert resolved == metadata.DEFAULT_ATTRIBUTES + ('NumberOfFrames', 'KVP')


def test_extract_ct_small():
  ds = pydicom.dcmread(get_testdata_file('CT_small.dcm'))

  features = metadata.extract(
      ds, metadata.resolve_attributes(['SamplesPerPixel', 'KVP']))

  assert features == {
      'dicom/modality': [b'CT'],
      'dicom/photometric_interpretation': [b'MONOCHROME2'],
      'dicom/rows': [128],
      'dicom/columns': [128],
      'dicom/bits_stored': [16],
      'dicom/pixel_spacing': [0.661468, 0.661468],
      'dicom/rescale_slope': [1.0],
      'dicom/rescale_intercept': [-1024.0],
      'dicom/manufacturer': [b'GE MEDICAL SYSTEMS'],
      'dicom/manufacturer_model_name': [b'RHAPSODE'],
      'dicom/samples_per_pixel': [1],
      'dicom/kvp': [120.0],
  }
  # Plain Python values, not pydicom's IS and DSfloat.
  assert {type(v) for v in features['dicom/rows']} == {int}
  assert {type(v) for v in features['dicom/kvp']} == {float}
  # Absent attributes are omitted.
  assert 'dicom/view_position' not in features
  assert 'dicom/window_center' not in features


def test_extract_keeps_every_value_of_a_multi_valued_attribute():
  ds = pydicom.dcmread(get_testdata_file('MR-SIEMENS-DICOM-WithOverlays.dcm'))

  features = metadata.extract(ds, metadata.DEFAULT_ATTRIBUTES)

  assert features['dicom/window_center'] == [450.0, 200.0]
  assert features['dicom/window_width'] == [790.0, 443.0]
  assert features['dicom/body_part_examined'] == [b'ABDOMEN']
  assert features['dicom/bits_stored'] == [12]


@pytest.mark.parametrize('name', [
    'CT_small.dcm', 'MR_small.dcm', 'JPEG2000.dcm', 'US1_J2KR.dcm',
    'rtplan.dcm', 'ExplVR_BigEnd.dcm'])
def test_extract_never_exports_identifying_values(name):
  ds = pydicom.dcmread(get_testdata_file(name))
  identifying = {str(elem.value).encode('utf-8')
                 for elem in ds.iterall()
                 if elem.keyword in metadata.PHI_KEYWORDS and
                 elem.VR != 'SQ' and str(elem.value)}

  features = metadata.extract(ds, metadata.resolve_attributes())

  assert features['dicom/modality']
  for values in features.values():
    assert not identifying & set(values)


def _odd_dataset():
  """A data set read from bytes holding values no number parses from."""
  ds = Dataset()
  ds.Modality = 'MG'
  ds.WindowCenter = ['40', '400']
  ds.WindowWidth = '80'
  ds.RescaleSlope = '1.5'
  ds.RescaleIntercept = '1e999'
  ds.NumberOfFrames = '2'
  ds.BodyPartExamined = ''
  ds.ImageType = ['ORIGINAL', '', 'PRIMARY']
  buffer = io.BytesIO()
  ds.save_as(buffer, implicit_vr=False, little_endian=True)
  data = (buffer.getvalue()
          .replace(b'40\\400', b'4x\\400')
          .replace(b'1.5 ', b'abc ')
          .replace(b'IS\x02\x002 ', b'IS\x02\x00x '))
  return pydicom.dcmread(io.BytesIO(data), force=True)


@pytest.mark.filterwarnings('ignore::UserWarning')
@pytest.mark.parametrize('validation_mode', [config.WARN, config.RAISE])
def test_extract_skips_values_that_do_not_parse(monkeypatch, validation_mode):
  monkeypatch.setattr(config.settings, 'reading_validation_mode',
                      validation_mode)
  ds = _odd_dataset()

  features = metadata.extract(
      ds, metadata.resolve_attributes(['NumberOfFrames', 'ImageType']))

  assert features == {
      'dicom/modality': [b'MG'],
      'dicom/window_center': [400.0],
      'dicom/window_width': [80.0],
      'dicom/image_type': [b'ORIGINAL', b'PRIMARY'],
  }


def test_transfer_syntax_uid():
  ct = pydicom.dcmread(get_testdata_file('CT_small.dcm'))
  assert metadata.transfer_syntax_uid(ct) == b'1.2.840.10008.1.2.1'

  ds = Dataset()
  assert metadata.transfer_syntax_uid(ds) is None
  ds.file_meta = FileMetaDataset()
  ds.file_meta.TransferSyntaxUID = '1.2.826.0.1.3680043.8.498.1'
  assert metadata.transfer_syntax_uid(ds) is None
  ds.file_meta.TransferSyntaxUID = '1.2.840.10008.5.1.4.1.1.2'  # CT Storage
  assert metadata.transfer_syntax_uid(ds) is None
