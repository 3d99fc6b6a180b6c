"""TFX ExampleGen components for DICOM files and image folders.

    from image_example_gen import DicomExampleGen, ImageFolderExampleGen

The components are imported on first use, so that the light parts of the
package (sample data, pure pixel functions) do not pay for importing TFX.
"""

__all__ = ['DicomExampleGen', 'ImageFolderExampleGen']


def __getattr__(name):
  if name == 'DicomExampleGen':
    from image_example_gen.dicom.component import DicomExampleGen  # pylint: disable=g-import-not-at-top
    return DicomExampleGen
  if name == 'ImageFolderExampleGen':
    from image_example_gen.image_folder.component import ImageFolderExampleGen  # pylint: disable=g-import-not-at-top
    return ImageFolderExampleGen
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
