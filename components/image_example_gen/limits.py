"""Size limits, checked from headers before any pixel buffer is allocated.

A 20 KiB PNG can declare 60000x60000 pixels, a DICOM header can ask for
gigabytes of frames: decoding either would take the worker's memory and,
after Beam's retries, the job. The converters compare what a header declares
with these limits first; over a limit the file is a `too_large` reject whose
detail gives the declared size and the parameter to raise.
"""

import dataclasses
import math
from PIL import Image

from image_example_gen import rejects

# Pillow's own decompression-bomb error threshold (2 * MAX_IMAGE_PIXELS).
DEFAULT_MAX_PIXELS = 2 * 89_478_485
# DICOM: frames per file, and decoded bytes per file (all frames).
DEFAULT_MAX_FRAMES = 10_000
DEFAULT_MAX_DECODED_BYTES = 2 * 2**30


@dataclasses.dataclass(frozen=True)
class SizeLimits:
  """What one input file may declare.

  Attributes:
    max_pixels: pixels per frame (rows x columns).
    max_frames: frames per file (DICOM).
    max_decoded_bytes: decoded bytes per file, all frames (DICOM: rows x
      columns x samples x bytes per sample x frames).
  """
  max_pixels: int = DEFAULT_MAX_PIXELS
  max_frames: int = DEFAULT_MAX_FRAMES
  max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES

  def __post_init__(self):
    for name in ('max_pixels', 'max_frames', 'max_decoded_bytes'):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name} must be a positive int, got {value!r}.')

  def check_pixels(self, width: int, height: int) -> None:
    """Rejects (`too_large`) a frame of width x height over the limit."""
    if width * height > self.max_pixels:
      raise rejects.RejectError(
          rejects.TOO_LARGE,
          f'the header declares {width}x{height} = {width * height:,} pixels '
          f'per frame, above max_pixels={self.max_pixels:,}')

  def check_frames(self, frames: int, frame_bytes: int) -> None:
    """Rejects (`too_large`) `frames` of `frame_bytes` over a limit."""
    if frames > self.max_frames:
      raise rejects.RejectError(
          rejects.TOO_LARGE, f'the header declares {frames:,} frames, above '
          f'max_frames={self.max_frames:,}')
    if frames * frame_bytes > self.max_decoded_bytes:
      raise rejects.RejectError(
          rejects.TOO_LARGE,
          f'the header declares {frames:,} frames of {frame_bytes:,} bytes = '
          f'{frames * frame_bytes:,} decoded bytes, above '
          f'max_decoded_bytes={self.max_decoded_bytes:,}')


def allow_in_pillow(max_pixels: int) -> None:
  """Raises Pillow's bomb threshold so that it never refuses what we allow.

  Pillow raises DecompressionBombError above 2 * `Image.MAX_IMAGE_PIXELS`.
  Only a `max_pixels` above that needs the change; the limit is raised, never
  lowered, in the process of the worker that converts. Called once per worker.
  """
  needed = math.ceil(max_pixels / 2)
  if Image.MAX_IMAGE_PIXELS is not None and needed > Image.MAX_IMAGE_PIXELS:
    Image.MAX_IMAGE_PIXELS = needed
