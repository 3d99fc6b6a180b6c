"""CT studies as RSNA publishes them: a folder of single-slice files per study.

Each study scans one object, a sphere (label 0) or a cylinder along the
patient's head-foot axis (label 1), in soft tissue with noise. Their slices
are discs either way, so one slice cannot tell them apart: the label needs the
volume (how the disc's radius changes from slice to slice). Every study has a
thin series, a thick reconstruction of the same object and a localizer;
`train.csv` labels studies by StudyInstanceUID (RSNA 2022's layout).

What makes the files realistic to stack, on purpose: random file names, all
series of a study mixed in one folder (or one folder per series), and
InstanceNumbers counting from the head down, absent, or shuffled, so that
only the geometry (ImagePositionPatient along the slice normal) gives the
order. With `variants=True` the first studies also hold a series of each kind
that an ExampleGen must stack or reject: oblique and sagittal orientations,
an enhanced multi-frame file with its frames stored out of order, compressed
pixels, an MR-like series, and series to be rejected or skipped (a missing
slice, a tilted gantry, a slice of another size, two slices at one position
with different pixels, a file without geometry, a lone slice). Whatever the
variant, `CtSeries` says how each series is expected to end and, for the
stacked ones, its true slice order, spacing, origin and direction.
"""

import csv
import dataclasses
import io
import math
import pathlib
from typing import Dict, List, Sequence, Tuple

import numpy as np

from image_example_gen import rejects
from image_example_gen.sample_data import common

CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2'
ENHANCED_CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2.1'
MR_IMAGE = '1.2.840.10008.5.1.4.1.1.4'
EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1'
RLE_LOSSLESS = '1.2.840.10008.1.2.5'
JPEG_2000_LOSSLESS = '1.2.840.10008.1.2.4.90'
SHAPES = ('sphere', 'cylinder')  # label = index
CSV_HEADER = ('StudyInstanceUID', 'patient_id', 'label')
PHI_KEYWORDS = ('PatientName', 'PatientID', 'PatientBirthDate', 'StudyDate',
                'AccessionNumber', 'InstitutionName', 'SeriesDescription',
                'StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID')

_AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
_SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
_COS30, _SIN30 = round(math.cos(math.pi / 6), 6), 0.5
_OBLIQUE = (_COS30, _SIN30, 0.0, -_SIN30, _COS30, 0.0)
_TISSUE_HU, _OBJECT_HU, _NOISE_HU = 40.0, 400.0, 15.0
_INTERCEPT = -1024.0
# SeriesDescription by kind (others: PROTOCOL <KIND>).
_DESCRIPTIONS = {'thin': 'AX 2MM SOFT TISSUE', 'irregular': 'AX 2MM SOFT TISSUE',
                 'thick': 'AX 4MM THICK',
                 'localizer': 'TOPOGRAM 0.6 T20S'}
_NAMES = ('DOE^JOHN', 'ROE^JANE', 'SMITH^ALEX', 'GARCIA^MARIA', 'KIM^MIN')


@dataclasses.dataclass(frozen=True)
class CtSeries:
  """One series of the sample.

  Attributes:
    kind: which variant it is ('thin', 'thick', 'localizer', 'oblique', ...).
    study_uid: its StudyInstanceUID (the CSV key).
    patient_id: the dataset's patient id (folder name and CSV).
    series_uid: its SeriesInstanceUID.
    label: the study's shape, an index into SHAPES.
    files: its files (relative paths), in any order.
    expected: '' when it becomes an Example, else the reject or skip
      reason of all its files.
    slices: for an Example, (file, frame) of each slice by increasing
      position along the normal; duplicate copies are left out.
    spacing: [slice, row, column] spacing in mm (for an Example).
    origin: ImagePositionPatient of the first slice (for an Example).
    direction: row cosines, column cosines, normal (for an Example).
  """
  kind: str
  study_uid: str
  patient_id: str
  series_uid: str
  label: int
  files: Tuple[str, ...]
  expected: str = ''
  slices: Tuple[Tuple[str, int], ...] = ()
  spacing: Tuple[float, float, float] = (0.0, 0.0, 0.0)
  origin: Tuple[float, float, float] = (0.0, 0.0, 0.0)
  direction: Tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class CtSample:
  """What `make_ct_sample` wrote.

  Attributes:
    root: the sample's folder; the DICOM files are under `root/train_images`.
    csv_path: `root/train.csv`, a row per study (CSV_HEADER).
    series: every series, including those expected to be rejected.
    phi_values: every fake identifying value written in a header.
  """
  root: pathlib.Path
  csv_path: pathlib.Path
  series: List[CtSeries]
  phi_values: List[str]

  @property
  def input_base(self) -> pathlib.Path:
    return self.root / 'train_images'

  def expected_outcomes(self) -> Dict[str, str]:
    """Relative path below `input_base` -> '' (an Example) or the reason."""
    return {path: s.expected for s in self.series for path in s.files}


@dataclasses.dataclass(frozen=True)
class _Scene:
  """The object a study scanned, in patient coordinates (mm, LPS)."""
  label: int
  center: np.ndarray
  radius: float
  half_height: float  # Cylinders only.

  def fraction(self, points: np.ndarray, pixel: float) -> np.ndarray:
    """How much of a pixel of side `pixel` at each point is inside."""
    offset = points - self.center
    if self.label == 0:
      outside = np.linalg.norm(offset, axis=-1) - self.radius
    else:
      radial = np.linalg.norm(offset[..., :2], axis=-1) - self.radius
      axial = np.abs(offset[..., 2]) - self.half_height
      outside = np.maximum(radial, axial)
    return np.clip(0.5 - outside / pixel, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class _Geometry:
  """How one series samples the scene."""
  orientation: Tuple[float, ...]
  pixel_spacing: float
  positions: Tuple[float, ...]  # Along the normal, in slice order.
  size: int
  center: np.ndarray  # Where the slices' centres line up.

  @property
  def normal(self) -> np.ndarray:
    n = np.cross(self.orientation[:3], self.orientation[3:])
    return n / np.linalg.norm(n)

  def origin(self, position: float, shear: float = 0.0) -> Tuple[float, ...]:
    """ImagePositionPatient of the slice at `position` (rounded as written)."""
    row, column = np.array(self.orientation[:3]), np.array(
        self.orientation[3:])
    half = (self.size - 1) / 2 * self.pixel_spacing
    corner = (self.center - half * row - half * column + position *
              self.normal + shear * row)
    return tuple(round(float(v), 4) for v in corner)

  def points(self, origin: Sequence[float]) -> np.ndarray:
    """Patient coordinates of every pixel (C.7.6.2.1.1), rows x columns x 3."""
    row, column = np.array(self.orientation[:3]), np.array(
        self.orientation[3:])
    index = np.arange(self.size) * self.pixel_spacing
    return (np.asarray(origin)[None, None, :] +
            index[None, :, None] * row[None, None, :] +
            index[:, None, None] * column[None, None, :])


def _scene(rng: np.random.Generator, label: int, extent: float,
           offset: np.ndarray) -> _Scene:
  """A sphere or a cylinder near `offset`, whose slices are discs of similar
  radii."""
  radius = extent * rng.uniform(0.16, 0.26)
  half_height = radius * rng.uniform(1.2, 1.6) if label == 1 else 0.0
  margin = extent / 2 - radius - 2.0
  center = offset + rng.uniform(-0.25, 0.25, 3) * margin
  return _Scene(label, center, radius, half_height)


def _hounsfield(scene: _Scene, points: np.ndarray, pixel: float,
                rng: np.random.Generator) -> np.ndarray:
  inside = scene.fraction(points, pixel)
  return (_TISSUE_HU + (_OBJECT_HU - _TISSUE_HU) * inside +
          rng.normal(0.0, _NOISE_HU, inside.shape))


def _dataset(sop_class: str, uids: Dict[str, str], header: Dict[str, str],
             syntax: str = EXPLICIT_VR_LITTLE_ENDIAN):
  from pydicom import dataset  # pylint: disable=g-import-not-at-top
  ds = dataset.Dataset()
  ds.file_meta = dataset.FileMetaDataset()
  ds.file_meta.MediaStorageSOPClassUID = sop_class
  ds.file_meta.MediaStorageSOPInstanceUID = uids['SOPInstanceUID']
  ds.file_meta.TransferSyntaxUID = syntax
  ds.SOPClassUID = sop_class
  for keyword, value in {**header, **uids}.items():
    setattr(ds, keyword, value)
  ds.Modality = 'MR' if sop_class == MR_IMAGE else 'CT'
  ds.FrameOfReferenceUID = common.uid(0, 'frame', uids['StudyInstanceUID'])
  return ds


def _pixel_module(ds, rows: int, columns: int, signed: bool, mr: bool) -> None:
  ds.Rows, ds.Columns = rows, columns
  ds.SamplesPerPixel = 1
  ds.PhotometricInterpretation = 'MONOCHROME2'
  ds.BitsAllocated, ds.BitsStored = 16, 16 if signed else 12
  ds.HighBit = ds.BitsStored - 1
  ds.PixelRepresentation = int(signed)
  if not mr:
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = (
        0.0 if signed else _INTERCEPT, 1.0, 'HU')
    ds.WindowCenter, ds.WindowWidth = 150.0, 500.0


def _stored(hounsfield: np.ndarray, signed: bool, mr: bool) -> np.ndarray:
  if mr:
    return np.clip(np.rint(hounsfield * 4 + 200), 0, 4095).astype(np.uint16)
  if signed:
    return np.rint(hounsfield).astype(np.int16)
  return np.clip(np.rint(hounsfield - _INTERCEPT), 0, 4095).astype(np.uint16)


def _set_pixels(ds, stored: np.ndarray, syntax: str) -> None:
  if syntax == EXPLICIT_VR_LITTLE_ENDIAN:
    ds.PixelData = stored.tobytes()
  else:
    ds.compress(syntax, stored, encoding_plugin='pylibjpeg',
                generate_instance_uid=False)


def _file_bytes(ds) -> bytes:
  buffer = io.BytesIO()
  ds.save_as(buffer, enforce_file_format=True)
  return buffer.getvalue()


@dataclasses.dataclass
class _Writer:
  """Writes the series of one study and records them."""
  root: pathlib.Path
  rng: np.random.Generator
  seed: int
  patient_id: str
  study_uid: str
  header: Dict[str, str]
  scene: _Scene
  folder: str
  phi: set
  series: List[CtSeries]

  def name(self) -> str:
    return f'{self.folder}/{self.rng.integers(10**9, 10**10)}.dcm'

  def write(self, rel_path: str, ds) -> None:
    common.write(self.root, rel_path, _file_bytes(ds))
    for keyword in PHI_KEYWORDS:
      if keyword in ds:
        self.phi.add(str(ds.data_element(keyword).value))

  def series_header(self, kind: str) -> Dict[str, str]:
    return {**self.header,
            'SeriesDescription': _DESCRIPTIONS.get(
                kind, f'PROTOCOL {kind.upper()}')}

  def uids(self, kind: str, index: int, series_uid: str) -> Dict[str, str]:
    return {'StudyInstanceUID': self.study_uid,
            'SeriesInstanceUID': series_uid,
            'SOPInstanceUID': common.uid(self.seed, 'sop', series_uid,
                                         kind, str(index))}

  def classic(self, kind: str, geometry: _Geometry, expected: str = '',
              numbering: str = 'listed', syntax: str =
              EXPLICIT_VR_LITTLE_ENDIAN, signed: bool = False,
              mr: bool = False, spoil: str = '', tilt: float = 0.0
             ) -> CtSeries:
    """A series of single-slice files.

    `spoil` changes the middle slice: 'copy' adds a byte-identical copy of
    it (still one volume), 'duplicate' adds another slice at its position
    with other pixels, 'rows' makes it 2 rows shorter, 'orientation' turns
    it. `tilt` shifts slice k by k * tilt mm along the rows (a gantry tilt).
    """
    series_uid = common.uid(self.seed, 'series', self.study_uid, kind)
    count = len(geometry.positions)
    # InstanceNumber 1, 2, ... in the order the geometry lists the slices
    # (from the head down for scanner-like series), shuffled, or absent.
    numbers = {'listed': list(range(1, count + 1)),
               'shuffled': [int(n) for n in self.rng.permutation(count) + 1],
               'absent': [None] * count}[numbering]
    files, slices = [], []
    for k, position in enumerate(geometry.positions):
      middle = k == count // 2
      slice_geometry = geometry
      if spoil == 'orientation' and middle:
        slice_geometry = dataclasses.replace(geometry, orientation=_OBLIQUE)
      origin = slice_geometry.origin(position, shear=tilt * k)
      hounsfield = _hounsfield(self.scene, slice_geometry.points(origin),
                               geometry.pixel_spacing, self.rng)
      if spoil == 'rows' and middle:
        hounsfield = hounsfield[:-2]
      versions = [hounsfield]
      if spoil == 'duplicate' and middle:
        versions.append(hounsfield[::-1])
      for version, pixels in enumerate(versions):
        ds = _dataset(MR_IMAGE if mr else CT_IMAGE,
                      self.uids(kind, 100 * version + k, series_uid),
                      self.series_header(kind), syntax)
        ds.SeriesNumber = len(self.series) + 1
        ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL']
        if numbers[k] is not None:
          ds.InstanceNumber = numbers[k]
        ds.ImagePositionPatient = list(origin)
        ds.ImageOrientationPatient = list(slice_geometry.orientation)
        ds.PixelSpacing = [geometry.pixel_spacing] * 2
        _pixel_module(ds, *pixels.shape, signed, mr)
        if mr:  # Windows that change from slice to slice, as MR's do.
          ds.WindowCenter, ds.WindowWidth = 1000.0 + 10 * k, 2000.0
        _set_pixels(ds, _stored(pixels, signed, mr), syntax)
        rel_path = self.name()
        self.write(rel_path, ds)
        files.append(rel_path)
        if not version:
          slices.append((rel_path, 0, origin))
      if spoil == 'copy' and middle:
        copy = self.name()
        common.write(self.root, copy, (self.root / files[-1]).read_bytes())
        files.append(copy)
    return self._record(kind, series_uid, files, expected, slices, geometry)

  def enhanced(self, kind: str, geometry: _Geometry) -> CtSeries:
    """One enhanced CT file whose frames are stored out of order."""
    from pydicom import dataset  # pylint: disable=g-import-not-at-top
    series_uid = common.uid(self.seed, 'series', self.study_uid, kind)
    count = len(geometry.positions)
    ds = _dataset(ENHANCED_CT_IMAGE, self.uids(kind, 0, series_uid),
                  self.series_header(kind))
    ds.SeriesNumber = len(self.series) + 1
    ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL', 'NONE']
    ds.NumberOfFrames = count
    _pixel_module(ds, geometry.size, geometry.size, False, False)
    for keyword in ('RescaleIntercept', 'RescaleSlope', 'RescaleType',
                    'WindowCenter', 'WindowWidth'):
      delattr(ds, keyword)
    shared = dataset.Dataset()
    shared.PixelMeasuresSequence = [dataset.Dataset()]
    shared.PixelMeasuresSequence[0].PixelSpacing = [geometry.pixel_spacing] * 2
    shared.PixelMeasuresSequence[0].SliceThickness = 1.0
    shared.PlaneOrientationSequence = [dataset.Dataset()]
    shared.PlaneOrientationSequence[0].ImageOrientationPatient = list(
        geometry.orientation)
    transformation = dataset.Dataset()
    transformation.RescaleIntercept = _INTERCEPT
    transformation.RescaleSlope = 1.0
    transformation.RescaleType = 'HU'
    shared.PixelValueTransformationSequence = [transformation]
    voi = dataset.Dataset()
    voi.WindowCenter, voi.WindowWidth = 150.0, 500.0
    shared.FrameVOILUTSequence = [voi]
    ds.SharedFunctionalGroupsSequence = [shared]
    rel_path = self.name()
    frames, per_frame, slices = [], [], []
    # Frame i holds the slice at position stored_order[i].
    for frame, k in enumerate(self.rng.permutation(count)):
      origin = geometry.origin(geometry.positions[k])
      item = dataset.Dataset()
      item.PlanePositionSequence = [dataset.Dataset()]
      item.PlanePositionSequence[0].ImagePositionPatient = list(origin)
      per_frame.append(item)
      frames.append(_stored(_hounsfield(
          self.scene, geometry.points(origin), geometry.pixel_spacing,
          self.rng), False, False))
      slices.append((rel_path, frame, origin))
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = np.stack(frames).tobytes()
    self.write(rel_path, ds)
    return self._record(kind, series_uid, [rel_path], '', slices, geometry)

  def single(self, kind: str, geometry: _Geometry, expected: str,
             image_type: Sequence[str] = ('ORIGINAL', 'PRIMARY', 'AXIAL'),
             with_position: bool = True) -> CtSeries:
    """A series of one file: a localizer, a lone slice, or no geometry."""
    series_uid = common.uid(self.seed, 'series', self.study_uid, kind)
    origin = geometry.origin(geometry.positions[0])
    ds = _dataset(CT_IMAGE, self.uids(kind, 0, series_uid),
                  self.series_header(kind))
    ds.SeriesNumber = len(self.series) + 1
    ds.ImageType = list(image_type)
    ds.ImageOrientationPatient = list(geometry.orientation)
    ds.PixelSpacing = [geometry.pixel_spacing] * 2
    if with_position:
      ds.ImagePositionPatient = list(origin)
    _pixel_module(ds, geometry.size, geometry.size, False, False)
    ds.PixelData = _stored(_hounsfield(
        self.scene, geometry.points(origin), geometry.pixel_spacing,
        self.rng), False, False).tobytes()
    rel_path = self.name()
    self.write(rel_path, ds)
    return self._record(kind, series_uid, [rel_path], expected,
                        [(rel_path, 0, origin)], geometry)

  def _record(self, kind: str, series_uid: str, files: List[str],
              expected: str, slices: List[Tuple[str, int, Sequence[float]]],
              geometry: _Geometry) -> CtSeries:
    """Records a series; its truth is by increasing position along n."""
    normal = geometry.normal
    slices = sorted(slices, key=lambda s: float(np.dot(s[2], normal)))
    positions = [float(np.dot(origin, normal)) for _, _, origin in slices]
    gap = (positions[-1] - positions[0]) / max(1, len(positions) - 1)
    series = CtSeries(
        kind=kind, study_uid=self.study_uid, patient_id=self.patient_id,
        series_uid=series_uid, label=self.scene.label, files=tuple(files),
        expected=expected,
        slices=tuple((path, frame) for path, frame, _ in slices)
        if not expected else (),
        spacing=(gap, geometry.pixel_spacing, geometry.pixel_spacing),
        origin=tuple(slices[0][2]),
        direction=tuple(float(v) for v in (*geometry.orientation, *normal)))
    self.series.append(series)
    return series


def _geometry(orientation: Tuple[float, ...], pixel_spacing: float,
              size: int, slices: int, gap: float, descending: bool,
              center: np.ndarray) -> _Geometry:
  """Slices centred on `center`, listed from the first position to the last.

  `descending` lists them from the head down (decreasing position), as a
  scanner numbers them; the truth in CtSeries is always by increasing
  position.
  """
  positions = [round((k - (slices - 1) / 2) * gap, 4) for k in range(slices)]
  if descending:
    positions.reverse()
  return _Geometry(orientation, pixel_spacing, tuple(positions), size, center)


def make_ct_sample(out_dir: common.PathLike, n_studies: int = 8,
                   size: int = 32, slices: int = 16, seed: int = 0,
                   variants: bool = False) -> CtSample:
  """Writes `n_studies` CT studies and a study-level labels CSV.

  Layout: `out_dir/train_images/<patient_id>/[<series>/]<random>.dcm` (even
  studies mix their series in the patient's folder, odd ones have a folder
  per series) and `out_dir/train.csv`. Each study has a thin series of
  `slices` slices (2 mm apart), a thick one of half as many (4 mm), both
  axial with 1 mm pixels and InstanceNumbers from the head down (absent or
  shuffled in every third study), and a localizer (skipped). The last study's
  thin series misses a slice (rejected `irregular_spacing`).

  Args:
    out_dir: a new or empty folder.
    n_studies: studies (patients), alternating sphere and cylinder in a
      seeded order; at least 2.
    size: rows and columns of every slice (at least 32 with `variants`, for
      the JPEG 2000 encoder).
    slices: slices of the thin series, at least 6.
    seed: everything derives from it.
    variants: also write, in the first studies, one series of each variant
      (module docstring).

  Returns:
    What was written, and how each series is expected to end.
  """
  if n_studies < 2 or slices < 6 or size < 16:
    raise ValueError('Need n_studies >= 2, slices >= 6 and size >= 16.')
  root = common.empty_dir(out_dir)
  rng = np.random.default_rng([seed, 20])
  labels = rng.permutation(np.arange(n_studies) % 2)
  extent = size * 1.0
  phi, all_series, rows = set(), [], []
  for study in range(n_studies):
    patient_id = str(10000 + study * 7 + int(rng.integers(7)))
    study_uid = common.uid(seed, 'study', patient_id)
    header = {
        'PatientName': _NAMES[study % len(_NAMES)],
        'PatientID': f'MRN{rng.integers(10**6, 10**7)}',
        'PatientBirthDate': f'19{rng.integers(40, 99)}0{rng.integers(1, 9)}15',
        'StudyDate': f'20{rng.integers(15, 24)}0{rng.integers(1, 9)}2{study % 8}',
        'AccessionNumber': f'ACC{rng.integers(10**7, 10**8)}',
        'InstitutionName': 'SAINT MARY GENERAL HOSPITAL',
    }
    # Where the table put the patient: the series' centre, in mm.
    center = np.round(rng.uniform([-20, -20, -400], [20, 20, -100]), 1)
    writer = _Writer(root / 'train_images', rng, seed, patient_id, study_uid,
                     header, _scene(rng, int(labels[study]), extent, center),
                     patient_id, phi, all_series)
    rows.append((study_uid, patient_id, int(labels[study])))
    numbering = ('listed', 'absent', 'shuffled')[study % 3]
    last = study == n_studies - 1
    for kind, count, gap in (('thin', slices, 2.0),
                             ('thick', slices // 2, 4.0)):
      if study % 2:
        writer.folder = f'{patient_id}/{kind}'
      geometry = _geometry(_AXIAL, 1.0, size, count, gap, True, center)
      if kind == 'thin' and last:
        # One slice lost in transfer: a gap twice the others.
        geometry = dataclasses.replace(
            geometry, positions=geometry.positions[:count // 2] +
            geometry.positions[count // 2 + 1:])
        writer.classic('irregular', geometry, rejects.IRREGULAR_SPACING,
                       numbering)
        continue
      writer.classic(kind, geometry, numbering=numbering)
    writer.folder = patient_id
    writer.single('localizer', _geometry(_AXIAL, 1.0, size, 1, 1.0, False,
                                         center), rejects.LOCALIZER,
                  image_type=('ORIGINAL', 'PRIMARY', 'LOCALIZER'))
    if variants:
      _write_variants(writer, study, size, slices, center)
  csv_path = root / 'train.csv'
  with open(csv_path, 'w', newline='', encoding='utf-8') as f:
    out = csv.writer(f, lineterminator='\n')
    out.writerow(CSV_HEADER)
    out.writerows(sorted(rows))
  return CtSample(root=root, csv_path=csv_path, series=all_series,
                  phi_values=sorted(phi))


def _write_variants(writer: _Writer, study: int, size: int, slices: int,
                    center: np.ndarray) -> None:
  """The variant series of `study` (spread over the first four studies)."""
  def geometry(orientation, count=slices, gap=2.0, descending=False):
    return _geometry(orientation, 1.0, size, count, gap, descending, center)
  if study == 0:
    writer.classic('oblique', geometry(_OBLIQUE), numbering='shuffled')
    writer.classic('sagittal', geometry(_SAGITTAL, gap=1.5),
                   numbering='absent', syntax=RLE_LOSSLESS)
    writer.enhanced('enhanced', geometry(_AXIAL))
  elif study == 1:
    writer.classic('signed_jpeg2000', geometry(_AXIAL, descending=True),
                   syntax=JPEG_2000_LOSSLESS, signed=True)
    writer.classic('mr', geometry(_SAGITTAL, gap=3.0), numbering='shuffled',
                   mr=True)
    writer.classic('copy', geometry(_AXIAL), spoil='copy')
  elif study == 2:
    writer.classic('tilted', geometry(_AXIAL), rejects.IRREGULAR_SPACING,
                   tilt=0.6)
    writer.classic('other_rows', geometry(_AXIAL),
                   rejects.INCONSISTENT_SERIES, spoil='rows')
    writer.classic('two_orientations', geometry(_AXIAL),
                   rejects.INCONSISTENT_SERIES, spoil='orientation')
  elif study == 3:
    writer.classic('duplicate', geometry(_AXIAL), rejects.INCONSISTENT_SERIES,
                   spoil='duplicate')
    writer.single('lone_slice', geometry(_AXIAL, count=1),
                  rejects.TOO_FEW_SLICES)
    writer.single('no_geometry', geometry(_AXIAL, count=1),
                  rejects.NO_GEOMETRY, with_position=False)
