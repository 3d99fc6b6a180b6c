"""Tests of the deterministic sample data generator."""

import csv
import pathlib

import numpy as np
from PIL import Image
from PIL import ImageOps
import pydicom
from pydicom import errors as pydicom_errors
import pytest

from image_example_gen import rejects
from image_example_gen import sample_data

DICOM_N = 24
FOLDER_N = 20
SIZE = 32


def _files(root: pathlib.Path):
  """rel_path -> bytes of every file under root."""
  return {path.relative_to(root).as_posix(): path.read_bytes()
          for path in sorted(root.rglob('*')) if path.is_file()}


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
  return float(np.corrcoef(a.ravel().astype(np.float64),
                           b.ravel().astype(np.float64))[0, 1])


@pytest.fixture(scope='module')
def dicom(tmp_path_factory):
  return sample_data.make_dicom_sample(
      tmp_path_factory.mktemp('dicom'), n_images=DICOM_N, size=SIZE, seed=7)


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  return sample_data.make_image_folder(
      tmp_path_factory.mktemp('folder'), n_images=FOLDER_N, size=SIZE, seed=7)


def _displayed(ds) -> np.ndarray:
  """Modality values, inverted for MONOCHROME1: higher is brighter."""
  values = (ds.pixel_array.astype(np.float64) * float(ds.get('RescaleSlope', 1))
            + float(ds.get('RescaleIntercept', 0)))
  return -values if ds.PhotometricInterpretation == 'MONOCHROME1' else values


class TestRenderDigit:

  def test_shape_range_and_determinism(self):
    image, label = sample_data.render_digit(5, size=40, seed=3)
    again, label_again = sample_data.render_digit(5, size=40, seed=3)
    assert image.shape == (40, 40) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert 0 <= label <= 9 and label == label_again
    np.testing.assert_array_equal(image, again)

  def test_bright_digit_on_dark_background(self):
    image, _ = sample_data.render_digit(0, size=32)
    assert image.max() > 0.8
    assert np.median(image) < 0.1

  def test_jitter_makes_repeats_differ(self):
    first, label = sample_data.render_digit(0, size=32)
    repeat, repeat_label = sample_data.render_digit(1797, size=32)
    assert label == repeat_label
    assert not np.array_equal(first, repeat)

  def test_digits_stay_legible(self):
    from sklearn import svm  # pylint: disable=g-import-not-at-top
    renders = [sample_data.render_digit(i, size=32) for i in range(900)]
    x = np.stack([image.ravel() for image, _ in renders])
    y = np.array([label for _, label in renders])
    classifier = svm.SVC().fit(x[:600], y[:600])
    assert classifier.score(x[600:], y[600:]) >= 0.9


class TestDicomSample:

  def test_same_bytes_every_run(self, dicom, tmp_path):
    again = sample_data.make_dicom_sample(tmp_path, n_images=DICOM_N,
                                          size=SIZE, seed=7)
    assert _files(again.root) == _files(dicom.root)
    assert again.images == dicom.images
    assert again.rejects == dicom.rejects
    assert again.phi_values == dicom.phi_values

  def test_other_seed_other_data(self, tmp_path):
    first = sample_data.make_dicom_sample(tmp_path / 'a', n_images=2, size=32)
    second = sample_data.make_dicom_sample(tmp_path / 'b', n_images=2, size=32,
                                           seed=1)
    assert first.phi_values != second.phi_values
    assert [im.image_id for im in first.images] != [
        im.image_id for im in second.images]

  def test_refuses_non_empty_folder(self, dicom):
    with pytest.raises(FileExistsError):
      sample_data.make_dicom_sample(dicom.root, n_images=1)

  def test_refuses_images_too_small_for_jpeg_2000(self, tmp_path):
    with pytest.raises(ValueError, match='at least 32 px'):
      sample_data.make_dicom_sample(tmp_path, n_images=1, size=16)
    assert not list(tmp_path.iterdir())

  def test_layout_and_csv(self, dicom):
    with open(dicom.csv_path, newline='') as f:
      reader = csv.reader(f)
      assert tuple(next(reader)) == sample_data.CSV_HEADER
      rows = {row[1]: row for row in reader}
    files = set(_files(dicom.root)) - {'train.csv'}
    assert files == {im.rel_path for im in dicom.images} | set(dicom.rejects)
    assert len(dicom.images) == DICOM_N
    for image in dicom.images:
      assert image.rel_path == (
          f'train_images/{image.patient_id}/{image.image_id}.dcm')
      assert rows[image.image_id] == [
          image.patient_id, image.image_id, image.laterality, image.view,
          rows[image.image_id][4], str(image.label)]
      assert image.patient_id.isdigit() and image.image_id.isdigit()
    assert len({im.patient_id for im in dicom.images}) == DICOM_N // 4
    for rel_path, reason in dicom.rejects.items():
      image_id = pathlib.PurePosixPath(rel_path).stem
      assert (image_id in rows) == (reason != rejects.NO_METADATA_ROW)
    assert len(dicom.missing_files) == 1
    missing = dicom.missing_files[0]
    assert missing in rows
    assert not list(dicom.root.rglob(f'{missing}.dcm'))
    assert len(rows) == DICOM_N + len(dicom.rejects) - 1 + 1

  def test_good_files_decode_bright_digit_on_dark(self, dicom):
    for image in dicom.images:
      data = (dicom.root / image.rel_path).read_bytes()
      assert data[128:132] == b'DICM'
      ds = pydicom.dcmread(dicom.root / image.rel_path)
      assert ds.file_meta.TransferSyntaxUID == image.transfer_syntax_uid
      assert ds.PhotometricInterpretation == image.photometric
      assert ds.BitsStored == image.bits_stored
      assert ds.PixelRepresentation == image.pixel_representation
      assert ds.SOPInstanceUID == image.sop_instance_uid
      assert ds.ImageLaterality == image.laterality
      assert ds.ViewPosition == image.view
      assert ds.pixel_array.shape == (SIZE, SIZE)
      expected, label = sample_data.render_digit(image.index, SIZE, seed=7)
      assert label == image.label
      assert _correlation(_displayed(ds), expected) > 0.999

  def test_windows_contain_the_data(self, dicom):
    windowed = [im for im in dicom.images if im.window]
    assert windowed
    for image in windowed:
      ds = pydicom.dcmread(dicom.root / image.rel_path)
      values = (ds.pixel_array.astype(np.float64) +
                float(ds.get('RescaleIntercept', 0)))
      center, width = image.window
      assert center - width / 2 <= values.min()
      assert values.max() <= center + width / 2
      assert width < 2**image.bits_stored
      assert ds.get('VOILUTFunction') == image.voi_lut_function

  def test_every_variant_present(self, dicom):
    images = dicom.images
    syntaxes = {im.transfer_syntax_uid for im in images}
    assert {sample_data.EXPLICIT_VR_LITTLE_ENDIAN, sample_data.RLE_LOSSLESS,
            sample_data.JPEG_2000_LOSSLESS} <= syntaxes
    if sample_data.jpeg_ls_available():
      assert sample_data.JPEG_LS_LOSSLESS in syntaxes
    assert {im.photometric for im in images} == {'MONOCHROME1', 'MONOCHROME2'}
    assert {im.bits_stored for im in images} == {8, 12, 16}
    assert any(im.pixel_representation == 1 and im.rescale_intercept == -1024
               for im in images)
    assert None in {im.window for im in images}
    assert {im.voi_lut_function for im in images} >= {
        None, 'SIGMOID', 'LINEAR_EXACT'}
    assert {im.modality for im in images} >= {'MG', 'CT', 'DX', 'CR'}

  def test_broken_files_are_broken_as_stated(self, dicom):
    by_reason = {reason: dicom.root / rel_path
                 for rel_path, reason in dicom.rejects.items()}
    assert set(by_reason) == {
        rejects.NOT_DICOM, rejects.TRUNCATED, rejects.NO_PIXEL_DATA,
        rejects.UNDECODABLE, rejects.NO_METADATA_ROW}
    with pytest.raises(pydicom_errors.InvalidDicomError):
      pydicom.dcmread(by_reason[rejects.NOT_DICOM])
    truncated = by_reason[rejects.TRUNCATED].read_bytes()
    assert truncated[128:132] == b'DICM'
    with pytest.raises(Exception):
      pydicom.dcmread(by_reason[rejects.TRUNCATED]).pixel_array
    no_pixels = pydicom.dcmread(by_reason[rejects.NO_PIXEL_DATA])
    assert 'PixelData' not in no_pixels and no_pixels.Modality == 'SR'
    undecodable = pydicom.dcmread(by_reason[rejects.UNDECODABLE])
    assert (undecodable.file_meta.TransferSyntaxUID ==
            sample_data.JPEG_2000_LOSSLESS)
    with pytest.raises(Exception):
      undecodable.pixel_array
    unlabelled = pydicom.dcmread(by_reason[rejects.NO_METADATA_ROW])
    assert unlabelled.pixel_array.shape == (SIZE, SIZE)

  def test_headers_hold_fake_phi_unlike_the_dataset_ids(self, dicom):
    phi = set(dicom.phi_values)
    by_patient = {}
    for image in dicom.images:
      ds = pydicom.dcmread(dicom.root / image.rel_path)
      for keyword in sample_data.PHI_KEYWORDS:
        assert str(ds.data_element(keyword).value) in phi, keyword
      assert ds.PatientID.startswith('MRN')
      assert ds.PatientID != image.patient_id
      assert image.patient_id not in phi and image.image_id not in phi
      identity = (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate)
      assert by_patient.setdefault(image.patient_id, identity) == identity
    assert len(set(by_patient.values())) == len(by_patient)
    assert len({im.sop_instance_uid for im in dicom.images}) == DICOM_N
    headers = b''.join(_files(dicom.root).values())
    for value in phi:
      assert value.encode() in headers


class TestImageFolder:

  def test_same_bytes_every_run(self, folder, tmp_path):
    again = sample_data.make_image_folder(tmp_path, n_images=FOLDER_N,
                                          size=SIZE, seed=7)
    assert _files(again.root) == _files(folder.root)
    assert again.images == folder.images
    assert again.rejects == folder.rejects
    assert again.skips == folder.skips

  def test_layout(self, folder):
    assert set(_files(folder.root)) == (
        {im.rel_path for im in folder.images} | set(folder.rejects) |
        set(folder.skips))
    assert folder.class_names == sorted(folder.class_names)
    for image in folder.images:
      assert image.rel_path.split('/')[0] == image.class_name
      assert folder.class_names[image.label] == image.class_name
      assert image.class_name == (
          f'digit_{sample_data.render_digit(image.index, SIZE, seed=7)[1]}')
    assert {im.source_format for im in folder.images} == {
        'jpeg', 'png', 'bmp', 'gif', 'webp', 'tiff'}
    extensions = {pathlib.PurePosixPath(im.rel_path).suffix
                  for im in folder.images}
    assert {'.JPG', '.PNG', '.jpeg', '.gif', '.webp', '.tif'} <= extensions
    assert any(im.rel_path.count('/') == 2 for im in folder.images)
    assert any(im.source_format == 'bmp' and im.rel_path.endswith('.jpg')
               for im in folder.images)

  def test_good_files_decode_upright(self, folder):
    modes = set()
    for image in folder.images:
      with Image.open(folder.root / image.rel_path) as opened:
        assert opened.format.lower() == image.source_format
        modes.add(opened.mode)
        rotated = opened.getexif().get(0x0112) == 6
        plain = (opened.format in ('JPEG', 'PNG') and
                 opened.mode in ('L', 'RGB') and not rotated)
        assert image.stored_format == (
            opened.format.lower() if plain else 'png')
        upright = np.asarray(ImageOps.exif_transpose(opened).convert('L'))
      expected, _ = sample_data.render_digit(image.index, SIZE, seed=7)
      assert _correlation(upright, expected) > 0.95, image.rel_path
    assert {'L', 'RGB', 'CMYK'} <= modes

  def test_bad_files_are_bad_as_stated(self, folder):
    assert sorted(folder.rejects.values()) == sorted([
        rejects.EMPTY_FILE, rejects.TRUNCATED])
    assert sorted(folder.skips.values()) == sorted([
        rejects.HIDDEN_FILE, rejects.HIDDEN_FILE, rejects.NON_IMAGE_FILE])
    for rel_path, reason in {**folder.rejects, **folder.skips}.items():
      path = folder.root / rel_path
      assert rel_path.split('/')[0] in folder.class_names
      if reason == rejects.EMPTY_FILE:
        assert path.stat().st_size == 0
      elif reason == rejects.TRUNCATED:
        with Image.open(path) as opened, pytest.raises(OSError):
          opened.load()
      elif reason == rejects.HIDDEN_FILE:
        assert path.name in ('._0.jpg', '.DS_Store')
      else:
        assert path.suffix == '.txt'
        with pytest.raises(Image.UnidentifiedImageError):
          Image.open(path)

  def test_without_broken_files(self, tmp_path):
    clean = sample_data.make_image_folder(tmp_path, n_images=FOLDER_N,
                                          size=16, broken_files=False)
    assert not clean.rejects and not clean.skips
    assert set(_files(clean.root)) == {im.rel_path for im in clean.images}

  def test_split_folders(self, tmp_path):
    split = sample_data.make_image_folder(tmp_path, n_images=FOLDER_N,
                                          size=16, split_folders=True)
    counts = {}
    for image in split.images:
      assert image.rel_path.split('/')[:2] == [image.split, image.class_name]
      counts[image.split] = counts.get(image.split, 0) + 1
    assert counts == {'train': 14, 'val': 3, 'test': 3}
    assert all(rel_path.split('/')[0] in sample_data.SPLIT_FOLDER_NAMES
               for rel_path in {**split.rejects, **split.skips})


def test_command_line(tmp_path, capsys):
  assert sample_data.main(['--out', str(tmp_path), '--kind', 'both', '--n',
                           '3', '--size', '32', '--seed', '2']) == 0
  assert (tmp_path / 'dicom' / 'train.csv').is_file()
  dicom_files = list((tmp_path / 'dicom' / 'train_images').glob('*/*.dcm'))
  assert len(dicom_files) == 3  # No broken files unless asked for.
  assert len(list((tmp_path / 'images').glob('digit_*/*'))) == 3
  assert 'good DICOM files' in capsys.readouterr().out
  assert sample_data.main(['--out', str(tmp_path / 'broken'), '--kind',
                           'dicom', '--n', '3', '--size', '32',
                           '--broken-files']) == 0
  assert len(list((tmp_path / 'broken' / 'train_images').glob(
      '*/*.dcm'))) == 3 + 5


def test_burned_in_sample_is_deterministic_and_burns_its_phi(tmp_path, capsys):
  assert sample_data.main(['--out', str(tmp_path / 'a'), '--kind',
                           'burned_in']) == 0
  assert 'PHI in their pixels' in capsys.readouterr().out
  again = sample_data.make_burned_in_sample(tmp_path / 'b')
  written = sorted(p.relative_to(tmp_path / 'a').as_posix()
                   for p in (tmp_path / 'a').rglob('*.dcm'))

  assert written == sorted(f.rel_path for f in again.files)
  for rel_path in written:
    assert ((tmp_path / 'a' / rel_path).read_bytes() ==
            (tmp_path / 'b' / rel_path).read_bytes())
  burned = [f for f in again.files if f.burned_in_text]
  assert len(burned) == 9
  for file in again.files:
    header = pydicom.dcmread(again.root / file.rel_path)
    assert len(file.pixels) == int(header.get('NumberOfFrames') or 1)
    if file.burned_in_text:
      # The text in the pixels is the header's PHI.
      assert file.burned_in_text[:2] == (str(header.PatientName),
                                         header.PatientID)
