"""What image format a file holds, from its first bytes (pure functions).

`sniff_format` names the format from signatures, never the extension, and
`PIL_FORMATS` gives the Pillow plugins that may open it (and no other, so a
file is never read as a format it does not claim). TGA has no signature: a
header whose every field holds a possible value is taken for one (no random
18-byte header of 20,000 tried is).
"""

import re
from typing import Optional

JPEG = 'jpeg'
PNG = 'png'
NETPBM = 'netpbm'

# Bytes of a file's start that `sniff_format` needs.
SNIFF_LENGTH = 18

PIL_FORMATS = {
    JPEG: ('JPEG',), PNG: ('PNG',), 'bmp': ('BMP',), 'gif': ('GIF',),
    'webp': ('WEBP',), 'tiff': ('TIFF',), NETPBM: ('PPM',), 'pcx': ('PCX',),
    'sgi': ('SGI',), 'qoi': ('QOI',), 'tga': ('TGA',), 'ico': ('ICO', 'CUR'),
    'dds': ('DDS',), 'jpeg2000': ('JPEG2000',),
}
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# Signatures of formats without a check of their own below.
_SIGNATURES = (
    (b'GIF87a', 'gif'), (b'GIF89a', 'gif'), (b'\x01\xda', 'sgi'),
    (b'qoif', 'qoi'), (b'DDS ', 'dds'),
    (b'\x00\x00\x00\x0cjP  \r\n\x87\n', 'jpeg2000'),
    (b'\xff\x4f\xff\x51', 'jpeg2000'))
# Netpbm: P1-P6 (bitmap, graymap, pixmap; plain or raw) and Pf/PF (float),
# then the width or a comment.
_NETPBM_RE = re.compile(rb'P[1-6fF](\s+[#0-9]|#)')
# ICO and CUR: reserved 0, type 1 or 2 (then a count of images, not 0).
_ICO_TYPES = (b'\x00\x00\x01\x00', b'\x00\x00\x02\x00')
# PCX: manufacturer 10, a known version, RLE or none, a known depth.
_PCX_VERSIONS = (0, 2, 3, 4, 5)
# TGA has no signature: a header whose fields all hold possible values.
# Image types with a colour map (1, 9) and without (2, 3, 10, 11).
_TGA_MAPPED_TYPES = (1, 9)
_TGA_UNMAPPED_TYPES = (2, 3, 10, 11)
_TGA_DEPTHS = (1, 8, 15, 16, 24, 32)
_TGA_MAP_DEPTHS = (15, 16, 24, 32)
_TIFF_SIGNATURES = (b'II*\x00', b'MM\x00*', b'II+\x00', b'MM\x00+')
# Sizes of the BMP info headers (Windows and OS/2 versions).
_BMP_HEADER_SIZES = (12, 16, 40, 52, 56, 64, 108, 124)


def sniff_format(head: bytes) -> Optional[str]:
  """The image format from a file's first bytes, or None if unknown.

  Args:
    head: the file's first `SNIFF_LENGTH` bytes (more are ignored, fewer may
      miss a format).

  Returns:
    A key of `PIL_FORMATS` ('jpeg', 'png', 'bmp', 'netpbm', 'tga', ...) or
    None.
  """
  if head.startswith(b'\xff\xd8\xff'):
    return JPEG
  if head.startswith(PNG_SIGNATURE):
    return PNG
  for signature, image_format in _SIGNATURES:
    if head.startswith(signature):
      return image_format
  if head.startswith(b'RIFF') and head[8:12] == b'WEBP':
    return 'webp'
  if head.startswith(_TIFF_SIGNATURES):
    return 'tiff'
  if head.startswith(b'BM') and (
      len(head) < SNIFF_LENGTH or
      int.from_bytes(head[14:18], 'little') in _BMP_HEADER_SIZES):
    return 'bmp'
  if _NETPBM_RE.match(head):
    return NETPBM
  if (len(head) >= 4 and head[0] == 10 and head[1] in _PCX_VERSIONS and
      head[2] in (0, 1) and head[3] in (1, 2, 4, 8)):
    return 'pcx'
  if _is_tga_header(head):  # Before ICO: TGA headers may start alike.
    return 'tga'
  if head[:4] in _ICO_TYPES and head[4:6] != b'\x00\x00':
    return 'ico'
  return None


def _is_tga_header(head: bytes) -> bool:
  """Whether an 18-byte TGA header holds only possible values."""
  if len(head) < SNIFF_LENGTH:
    return False
  color_map, image_type, depth = head[1], head[2], head[16]
  width = int.from_bytes(head[12:14], 'little')
  height = int.from_bytes(head[14:16], 'little')
  if color_map == 1:
    mapped = image_type in _TGA_MAPPED_TYPES and head[7] in _TGA_MAP_DEPTHS
  else:
    mapped = (color_map == 0 and image_type in _TGA_UNMAPPED_TYPES and
              head[3:8] == bytes(5))
  return (mapped and depth in _TGA_DEPTHS and width > 0 and height > 0 and
          head[17] & 0xC0 == 0)
