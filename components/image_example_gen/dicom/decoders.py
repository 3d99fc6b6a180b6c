"""Step 1 of docs/design.md §4: decoding stored values, then rendering frames.

`iter_frames` decodes a file's frames one at a time through pydicom's
`pixels` API, with the fastest installed plugin first (`_PREFERRED_PLUGINS`),
dicomsdl for JPEG Lossless, and, when a resize is asked for, JPEG 2000 at a
reduced resolution level; each frame is then rendered (`display.render`).
"""

import contextlib
import dataclasses
import io
import logging
import struct
from typing import BinaryIO, Callable, Iterator, Optional, Sequence, Tuple, Union

import dicomsdl
import numpy as np
from PIL import Image
import pydicom
from pydicom.encaps import generate_frames
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.pixels import iter_pixels
from pydicom.pixels.utils import get_nr_frames

from image_example_gen.dicom import display
from image_example_gen.dicom import integrity

# Plugin to try first, where it used less CPU than pydicom's first choice
# (GDCM) to decode a 2048x1664 12-bit frame: JPEG-LS pyjpegls 64 ms vs GDCM
# 106 ms; JPEG 2000 pylibjpeg-openjpeg 378 ms vs GDCM 424 ms (Pillow 639 ms).
# RLE keeps pydicom's order: pylibjpeg-rle (10 ms) before pydicom's own (73).
_PREFERRED_PLUGINS = {
    uid.JPEGLSLossless: 'pyjpegls',
    uid.JPEGLSNearLossless: 'pyjpegls',
    uid.JPEG2000Lossless: 'pylibjpeg',
    uid.JPEG2000: 'pylibjpeg',
}

# Decoded at a reduced resolution when `resize` is set (`_iter_reduced`).
_REDUCIBLE_SYNTAXES = frozenset((uid.JPEG2000Lossless, uid.JPEG2000))
# Decoded by dicomsdl, 3.5x faster than GDCM on a 12-bit mammogram
# (27 vs 95 ms; pylibjpeg-libjpeg, the other decoder, is GPL).
_DICOMSDL_SYNTAXES = frozenset((uid.JPEGLossless, uid.JPEGLosslessSV1))


@dataclasses.dataclass(frozen=True)
class Frame:
  """One rendered frame.

  Attributes:
    pixels: HxW uint8/uint16 (grayscale) or HxWx3 uint8 (RGB), ready for PNG.
    bit_depth: 8 or 16, the bits of `pixels`.
    index: index of the frame in the file.
  """
  pixels: np.ndarray
  bit_depth: int
  index: int



def iter_frames(
    source: Union[str, BinaryIO],
    ds: Dataset,
    options: display.PixelOptions,
    frame_indices: Optional[Sequence[int]] = None,
    regions: Sequence[display.Box] = (),
) -> Iterator[Frame]:
  """Decodes and renders frames one at a time (steps 1-7).

  Args:
    source: path of the DICOM file, or a binary file object opened on it
      (its position is restored after the last frame).
    ds: the file's header, e.g. read with `stop_before_pixels=True`; used for
      the transfer syntax and the display steps.
    options: how to render.
    frame_indices: frames to yield, in this order; None: all frames.
    regions: if any, every frame is cropped to them (`display.render`),
      and decoded at full resolution: a reduced frame's samples near a
      region's edge mix in pixels from outside it.

  Yields:
    `Frame`s, decoded with pydicom's `iter_pixels` one frame at a time (a
    Deflated Explicit VR Little Endian file is inflated whole first, as
    deflate compresses the data set as one stream).

  Raises:
    integrity.UnsupportedTransferSyntaxError: no installed plugin decodes the file.
    integrity.TruncatedPixelDataError: the file ends inside its pixel data, a JPEG-family
      codestream lacks its end marker, or fewer frames than asked for came out.
    IndexError: a frame index outside [0, Number of Frames).
    Exception: whatever else pydicom or its plugins raise on broken pixel
      data; `decode_error_reason` names the reject reason.
  """
  transfer_syntax = _decodable_transfer_syntax(ds)
  number_of_frames = get_nr_frames(ds, warn=False)
  indices = (list(range(number_of_frames)) if frame_indices is None else
             list(frame_indices))
  if any(not 0 <= i < number_of_frames for i in indices):
    raise IndexError(f'Frame indices {indices} outside the {number_of_frames} '
                     'frames of the file.')
  stored_frames = _iter_stored(source, transfer_syntax, frame_indices, indices)
  if (options.resize and transfer_syntax in _REDUCIBLE_SYNTAXES and
      not regions):
    stored_frames = _with_fallback(
        _iter_reduced(source, ds, indices, options.resize), stored_frames,
        lambda done: _iter_stored(source, transfer_syntax, indices[done:],
                                  indices[done:]))
  elif transfer_syntax in _DICOMSDL_SYNTAXES and ds.SamplesPerPixel == 1:
    stored_frames = _with_fallback(
        _iter_dicomsdl(source, indices), stored_frames,
        lambda done: _iter_stored(source, transfer_syntax, indices[done:],
                                  indices[done:]))
  for index in indices:
    try:
      stored = next(stored_frames)
    except StopIteration:
      raise integrity.TruncatedPixelDataError(
          f'The pixel data ended before frame {index}.') from None
    pixels, bit_depth = display.render(
        stored, display.frame_dataset(ds, index), options, regions)
    yield Frame(pixels=pixels, bit_depth=bit_depth, index=index)


def _with_fallback(first: Iterator[np.ndarray], default: Iterator[np.ndarray],
                   rest: Callable[[int], Iterator[np.ndarray]]
                  ) -> Iterator[np.ndarray]:
  """Frames from `first`; if it declines or fails, from pydicom's decoders.

  `first` yields nothing at all to decline (the file does not suit it);
  if it fails after `done` frames, `rest(done)` decodes the others.
  """
  done = 0
  try:
    for stored in first:
      done += 1
      yield stored
    if done:
      return
  except Exception:  # pylint: disable=broad-except
    logging.debug('Fast decoder failed after %d frames', done, exc_info=True)
    if done:
      yield from rest(done)
      return
  yield from default


def reduction_level(rows: int, columns: int, levels: int, size: int) -> int:
  """The JPEG 2000 resolution reduction to decode at for a `size` output.

  ISO 15444-1 B.5: reduction r (discarding the r highest resolution levels)
  gives ceil(side / 2**r) samples per side. The largest r, at most the
  codestream's decomposition `levels`, whose long side is still at least
  `size`: the smallest resolution level at least as large as the target.
  """
  level = 0
  while (level < levels and
         -(-max(rows, columns) // 2**(level + 1)) >= size):
    level += 1
  return level


def j2k_header(codestream: bytes) -> Optional[Tuple[int, int, int, int, bool,
                                                     int]]:
  """(rows, columns, components, precision, signed, decomposition levels).

  From the SIZ (ISO 15444-1 A.5.1) and COD (A.6.1) markers of a raw
  codestream; None when it does not start with SOC, SIZ.
  """
  if codestream[:4] != b'\xff\x4f\xff\x51' or len(codestream) < 44:
    return None
  (x_size, y_size, x_offset, y_offset) = struct.unpack(
      '>IIII', codestream[8:24])
  (components,) = struct.unpack('>H', codestream[40:42])
  ssiz = codestream[42]
  position = 4 + struct.unpack('>H', codestream[4:6])[0]  # After SIZ.
  while position + 4 <= len(codestream):
    marker, length = struct.unpack('>HH', codestream[position:position + 4])
    if marker == 0xFF52 and position + 10 <= len(codestream):
      levels = codestream[position + 9]
      return (y_size - y_offset, x_size - x_offset, components,
              (ssiz & 0x7F) + 1, bool(ssiz & 0x80), levels)
    if marker == 0xFF90:  # SOT: the main header ended without COD.
      return None
    position += 2 + length
  return None


def _iter_reduced(source: Union[str, BinaryIO], ds: Dataset,
                  indices: Sequence[int], size: int) -> Iterator[np.ndarray]:
  """Stored values of JPEG 2000 frames decoded at a reduced resolution.

  Decodes with Pillow's OpenJPEG at `reduction_level` (the wavelet
  low-pass of the frame: the codestream's higher resolution levels are not
  decoded at all). Declines (yields nothing) unless the codestream agrees
  with the header (size, components, signedness), has one component of up
  to 16 bits or three of 8, and a reduction helps.
  """
  wanted = set(indices)
  if (ds.BitsAllocated > 16 or not wanted or
      sorted(wanted) != list(indices)):
    return
  with _opened(source) as f:
    pydicom.dcmread(f, stop_before_pixels=True)
    element_header = f.read(8)
    if element_header[4:6] in integrity.LONG_VRS:
      f.read(4)
    frames = generate_frames(f, number_of_frames=get_nr_frames(ds, warn=False))
    for index, codestream in enumerate(frames):
      if index not in wanted:
        continue
      header = j2k_header(codestream)
      if header is None:
        return
      rows, columns, components, precision, signed, levels = header
      level = reduction_level(rows, columns, levels, size)
      if (level == 0 or signed != bool(ds.PixelRepresentation) or
          (rows, columns) != (ds.Rows, ds.Columns) or
          components != ds.SamplesPerPixel or
          not (components == 1 or precision == 8)):
        return
      image = Image.open(io.BytesIO(codestream), formats=('JPEG2000',))
      image.reduce = level
      image.load()
      yield _from_pillow_j2k(np.asarray(image), precision, signed)
      wanted.discard(index)
      if not wanted:
        return


def _from_pillow_j2k(values: np.ndarray, precision: int,
                     signed: bool) -> np.ndarray:
  """Stored values from Pillow's 16-bit samples of a JPEG 2000 component.

  Pillow offsets signed samples by 2**(precision - 1) and scales every
  sample of more than 8 bits to 16 bits (a left shift by 16 - precision).
  """
  if values.dtype != np.uint16:
    return values
  stored = values >> (16 - precision)
  if signed:
    return (stored.astype(np.int32) - 2**(precision - 1)).astype(np.int16)
  return stored


def _iter_dicomsdl(source: Union[str, BinaryIO],
                   indices: Sequence[int]) -> Iterator[np.ndarray]:
  """Stored values decoded by dicomsdl (JPEG Lossless; MIT licensed)."""
  with _opened(source) as f:
    data_set = dicomsdl.open_memory(f.read())
  for index in indices:
    yield data_set.pixelData(index, storedvalue=True)


def _decodable_transfer_syntax(ds: Dataset) -> uid.UID:
  """The file's transfer syntax, if an installed plugin can decode it."""
  file_meta = getattr(ds, 'file_meta', None)
  transfer_syntax = file_meta.get('TransferSyntaxUID') if file_meta else None
  if not transfer_syntax:
    raise integrity.UnsupportedTransferSyntaxError(
        'No (0002,0010) Transfer Syntax UID in the file meta information.')
  try:
    decoder = get_decoder(transfer_syntax)
  except NotImplementedError as e:
    raise integrity.UnsupportedTransferSyntaxError(
        f'No pixel data decoder for {transfer_syntax.name}.') from e
  if not decoder.is_available:
    raise integrity.UnsupportedTransferSyntaxError(
        f'No installed plugin decodes {transfer_syntax.name}: '
        f'{"; ".join(decoder.missing_dependencies)}.')
  return transfer_syntax


def _iter_stored(source: Union[str, BinaryIO], transfer_syntax: uid.UID,
                 frame_indices: Optional[Sequence[int]],
                 indices: Sequence[int]) -> Iterator[np.ndarray]:
  """Step 1: stored values, frame by frame, from pydicom's `iter_pixels`.

  The transfer syntax's preferred plugin decodes first; if it fails on a
  frame, that frame and the rest are decoded with all plugins in pydicom's
  order; if that fails before any frame, from the data set read whole.
  `frame_indices` None lets pydicom stream encapsulated frames in order
  rather than locate each one.
  """
  if transfer_syntax == uid.DeflatedExplicitVRLittleEndian:
    with _opened(source) as f:
      source = pydicom.dcmread(f)
  plugin = _PREFERRED_PLUGINS.get(transfer_syntax, '')
  decoded = 0
  if plugin in get_decoder(transfer_syntax).available_plugins:
    try:
      for stored in iter_pixels(source, indices=frame_indices,
                                decoding_plugin=plugin):
        decoded += 1
        yield stored
      return
    except Exception:  # pylint: disable=broad-except
      pass
  remaining = indices[decoded:] if decoded else frame_indices
  try:
    for stored in iter_pixels(source, indices=remaining):
      decoded += 1
      yield stored
  except Exception as error:  # pylint: disable=broad-except
    if decoded:
      raise
    # pydicom's file parser for iter_pixels is stricter than dcmread (e.g. it
    # fails on SC_rgb_jpeg.dcm, which pixel_array decodes): read the data set
    # whole, this file only, and decode from it. If that fails too, the first
    # error is the one that describes the file.
    try:
      with _opened(source) as f:
        frames = list(iter_pixels(pydicom.dcmread(f), indices=frame_indices))
    except Exception:  # pylint: disable=broad-except
      raise error from None
    yield from frames


@contextlib.contextmanager
def _opened(source: Union[str, BinaryIO]) -> Iterator[BinaryIO]:
  """`source` as a binary file; a file object's position is restored."""
  if not hasattr(source, 'read'):
    with open(source, 'rb') as f:
      yield f
    return
  position = source.tell()
  source.seek(0)
  try:
    yield source
  finally:
    source.seek(position)
