"""Deterministic sample inputs: an RSNA-like DICOM tree, image folders.

Pixels are scikit-learn's handwritten digits (`load_digits`, shipped with the
package), upscaled to `size` px with a small seeded jitter (scale, shift,
noise), so any number of images can be made and the digit class is the label.
The same arguments give the same bytes on every run: UIDs, ids and fake PHI
derive from the seed, nothing from the clock.

Both samples hold, on purpose, every input variant the ExampleGens must handle
and one file for each way an input can be broken; the returned dataclasses say
what each file is and how it is expected to end (Example or reject reason).
A third sample, captioned images (`make_captioned_images`), has a Hugging
Face style metadata.jsonl with a label and a description per image. A fourth
(`make_burned_in_sample`) holds ultrasound, secondary captures and
photographs with the patient's name and dates burned into their pixels.
A fifth, CT studies (`make_ct_sample`), has series of single-slice files
to be stacked into volumes (`ct.py`).

Command line (writes into empty or new folders; `both` writes `OUT/dicom` and
`OUT/images`):

    python -m image_example_gen.sample_data --out OUT
        --kind {dicom,images,both,captioned,burned_in,ct} --n N [--size PX]
        [--seed S] [--images-per-patient K] [--split-folders]

`--split-folders` puts the image folder's classes under `train/`, `val/` and
`test/`. The console script `image-example-gen-samples` is the same command.
"""

from image_example_gen.sample_data.captioned import CAPTIONED_IMAGES_FOLDER
from image_example_gen.sample_data.captioned import CaptionedImage
from image_example_gen.sample_data.captioned import CaptionedSample
from image_example_gen.sample_data.captioned import DIGIT_NAMES
from image_example_gen.sample_data.captioned import describe_digit
from image_example_gen.sample_data.captioned import make_captioned_images
from image_example_gen.sample_data.captioned import METADATA_FILE
from image_example_gen.sample_data.cli import main
from image_example_gen.sample_data.common import render_digit
from image_example_gen.sample_data.ct import CtSample
from image_example_gen.sample_data.ct import CtSeries
from image_example_gen.sample_data.ct import make_ct_sample
from image_example_gen.sample_data.dicom import CSV_HEADER
from image_example_gen.sample_data.dicom import DicomImage
from image_example_gen.sample_data.dicom import DicomSample
from image_example_gen.sample_data.dicom import EXPLICIT_VR_LITTLE_ENDIAN
from image_example_gen.sample_data.dicom import JPEG_2000_LOSSLESS
from image_example_gen.sample_data.dicom import JPEG_LS_LOSSLESS
from image_example_gen.sample_data.dicom import jpeg_ls_available
from image_example_gen.sample_data.dicom import make_dicom_sample
from image_example_gen.sample_data.dicom import MIN_DICOM_SIZE
from image_example_gen.sample_data.dicom import PHI_KEYWORDS
from image_example_gen.sample_data.dicom import RLE_LOSSLESS
from image_example_gen.sample_data.image_folder import CLASS_NAMES
from image_example_gen.sample_data.image_folder import FolderImage
from image_example_gen.sample_data.image_folder import ImageFolderSample
from image_example_gen.sample_data.image_folder import make_image_folder
from image_example_gen.sample_data.image_folder import SPLIT_FOLDER_NAMES
from image_example_gen.sample_data.ultrasound import BurnedInFile
from image_example_gen.sample_data.ultrasound import BurnedInSample
from image_example_gen.sample_data.ultrasound import make_burned_in_sample
