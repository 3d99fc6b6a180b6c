"""A JPEG's header segments, read from its bytes without decoding anything.

Pure functions over a walk of the segments up to the first scan (`Header`):
the frame's size, precision and components, whether TensorFlow's decoder
reads the stream as Pillow does, whether the file ends early, and the EXIF
orientation where it can be read exactly as Pillow reads it.
"""

from typing import NamedTuple, Optional, Tuple

# Start-of-frame markers whose 8-bit streams TensorFlow's libjpeg-turbo
# decodes as Pillow's does: baseline, extended and progressive Huffman
# (SOF0-2) and arithmetic (SOF9-10). Lossless (SOF3, SOF11), which Pillow's
# newer libjpeg-turbo decodes and TensorFlow's rejects, and hierarchical
# processes are re-encoded.
_TF_PROCESSES = frozenset([0xC0, 0xC1, 0xC2, 0xC9, 0xCA])
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
EOI = b'\xff\xd9'
_SOS = 0xDA
_APP1 = 0xE1
# Markers without a length field.
_STANDALONE = frozenset([0x01, 0xD8, *range(0xD0, 0xD8)])

_EXIF = b'Exif\x00\x00'
_ORIENTATION_TAG = 0x0112
_SHORT = 3


class Header(NamedTuple):
  """Where a JPEG's header segments are.

  Attributes:
    frame: offset of the start-of-frame marker, None if there is none.
    scan: offset of the first start-of-scan marker, None if there is none or
      the walk stopped at a byte where a marker should start and none does
      (corrupt data).
    cut: whether the data ends inside the header.
    app1: offsets of the APP1 segments (EXIF, XMP) before the first scan.
  """
  frame: Optional[int]
  scan: Optional[int]
  cut: bool
  app1: Tuple[int, ...]


def read_header(data: bytes) -> Header:
  """Walks the segments after the start-of-image marker to the first scan."""
  frame = None
  app1 = []
  pos = 2
  while pos + 4 <= len(data):
    if data[pos] != 0xFF:
      return Header(frame, None, False, tuple(app1))
    marker = data[pos + 1]
    if marker == 0xFF:  # fill byte
      pos += 1
      continue
    if marker == _SOS:
      return Header(frame, pos, False, tuple(app1))
    if marker == EOI[1]:
      return Header(frame, None, False, tuple(app1))
    if marker in _SOF and pos + 10 <= len(data):
      frame = pos
    if marker == _APP1:
      app1.append(pos)
    if marker in _STANDALONE:
      pos += 2
    else:
      pos += 2 + int.from_bytes(data[pos + 2:pos + 4], 'big')
  return Header(frame, None, True, tuple(app1))


def frame_size(data: bytes, header: Header) -> Optional[Tuple[int, int]]:
  """(width, height) the frame declares, None without a frame."""
  if header.frame is None:
    return None
  return (int.from_bytes(data[header.frame + 7:header.frame + 9], 'big'),
          int.from_bytes(data[header.frame + 5:header.frame + 7], 'big'))


def precision(data: bytes, header: Header) -> int:
  """Bits per sample of the frame, or 8 if there is no frame header."""
  return 8 if header.frame is None else data[header.frame + 4]


def components_for_tf(data: bytes, header: Header) -> int:
  """Components of a JPEG that TensorFlow decodes as Pillow does, else 0.

  Besides the process, TensorFlow needs an end-of-image marker after the
  scans: its source manager fails where libjpeg reads past the data, while
  Pillow accepts a baseline stream without EOI once every row is decoded.
  """
  frame, scan = header.frame, header.scan
  if frame is None or scan is None or data.rfind(EOI) < scan:
    return 0
  process, bits, components = data[frame + 1], data[frame + 4], data[frame + 9]
  if process in _TF_PROCESSES and bits == 8 and components in (1, 3):
    return components
  return 0


def ends_early(data: bytes, header: Header) -> bool:
  """Whether the data stops inside the header or before an end of image
  after the first scan."""
  return header.cut or (header.scan is not None and
                        data.rfind(EOI) < header.scan)


def exif_orientation(data: bytes, header: Header) -> Optional[int]:
  """The orientation Pillow's `getexif()` gives, where it is read here alike.

  Returns 1 when there is no APP1 segment, or one EXIF segment whose first
  directory holds no orientation; the tag's value when it is one SHORT
  there. None (ask Pillow) for anything else: XMP (Pillow reads an
  orientation there too), several EXIF segments (Pillow joins them), a
  directory that does not parse.
  """
  if not header.app1:
    return 1
  if len(header.app1) > 1:
    return None
  start = header.app1[0]
  end = start + 2 + int.from_bytes(data[start + 2:start + 4], 'big')
  if data[start + 4:start + 10] != _EXIF:
    return None
  tiff = data[start + 10:end]
  if tiff[:4] == b'II*\x00':
    order = 'little'
  elif tiff[:4] == b'MM\x00*':
    order = 'big'
  else:
    return None
  directory = int.from_bytes(tiff[4:8], order)
  if directory < 8 or directory + 2 > len(tiff):
    return None
  entries = int.from_bytes(tiff[directory:directory + 2], order)
  if directory + 2 + 12 * entries > len(tiff):
    return None
  found = [entry for entry in range(directory + 2,
                                    directory + 2 + 12 * entries, 12)
           if int.from_bytes(tiff[entry:entry + 2], order) == _ORIENTATION_TAG]
  if not found:
    return 1
  entry = found[0]
  if (len(found) > 1 or
      int.from_bytes(tiff[entry + 2:entry + 4], order) != _SHORT or
      int.from_bytes(tiff[entry + 4:entry + 8], order) != 1):
    return None
  return int.from_bytes(tiff[entry + 8:entry + 10], order)
