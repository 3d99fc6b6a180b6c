"""TFX ExampleGen components for DICOM files and image folders.

    from image_example_gen import DicomExampleGen, ImageFolderExampleGen
    dataset = image_example_gen.read_examples(examples_uri, 'train')

The components and `read_examples` are imported on first use, so that the
light parts of the package (sample data, pure pixel functions) do not pay for
importing TFX or TensorFlow. Importing the package filters a few known
library warnings (`console.filter_library_messages`).
"""

from image_example_gen import console as _console

__all__ = ['DicomExampleGen', 'ImageFolderExampleGen', 'read_examples']

_console.filter_library_messages()


def __getattr__(name):
  if name == 'DicomExampleGen':
    from image_example_gen.dicom.component import DicomExampleGen  # pylint: disable=g-import-not-at-top
    return DicomExampleGen
  if name == 'ImageFolderExampleGen':
    from image_example_gen.image_folder.component import ImageFolderExampleGen  # pylint: disable=g-import-not-at-top
    return ImageFolderExampleGen
  if name == 'read_examples':
    from image_example_gen.reading import read_examples  # pylint: disable=g-import-not-at-top
    return read_examples
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
