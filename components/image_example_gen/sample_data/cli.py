"""The sample data command line (`python -m image_example_gen.sample_data`)."""

import argparse
import pathlib
from typing import Optional, Sequence

from image_example_gen import console
from image_example_gen.sample_data.captioned import make_captioned_images
from image_example_gen.sample_data.ct import make_ct_sample
from image_example_gen.sample_data.dicom import make_dicom_sample
from image_example_gen.sample_data.image_folder import make_image_folder
from image_example_gen.sample_data.ultrasound import make_burned_in_sample


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The command line: writes the samples and prints what it wrote."""
  parser = argparse.ArgumentParser(
      prog='image-example-gen-samples',
      description='Writes deterministic DICOM / image-folder sample data.')
  parser.add_argument('--out', required=True,
                      help='a new or empty folder to write into')
  parser.add_argument('--kind',
                      choices=('dicom', 'images', 'both', 'captioned',
                               'burned_in', 'ct'),
                      default='both',
                      help='both writes OUT/dicom and OUT/images; captioned '
                           'writes images with a metadata.jsonl; burned_in '
                           'writes DICOM files with PHI in their pixels; ct '
                           'writes CT studies of single-slice files')
  parser.add_argument('--n', type=int, default=48,
                      help='number of good images of each kind (ct: studies)')
  parser.add_argument('--size', type=int, default=64, help='image size in px')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--images-per-patient', type=int, default=4,
                      help='DICOM files per patient')
  parser.add_argument('--split-folders', action='store_true',
                      help='image folder: classes under train/ val/ test/')
  parser.add_argument('--broken-files', action='store_true',
                      help='also write the deliberately broken files '
                           '(rejected) and junk files (skipped), one of each '
                           'kind; the 5 broken DICOM files exceed the default '
                           'max_reject_fraction of 5%% below --n 95')
  args = parser.parse_args(argv)
  console.quiet_entry_point()
  with console.filtered_stderr():
    _write(args)
  return 0


def _write(args: argparse.Namespace) -> None:
  out = pathlib.Path(args.out)
  if args.kind in ('dicom', 'both'):
    dicom = make_dicom_sample(
        out / 'dicom' if args.kind == 'both' else out, n_images=args.n,
        images_per_patient=args.images_per_patient, size=args.size,
        seed=args.seed, broken_files=args.broken_files)
    print(f'{dicom.root}: {len(dicom.images)} good DICOM files, '
          f'{len(dicom.rejects)} to be rejected, '
          f'{len(dicom.missing_files)} CSV row(s) without file; labels in '
          f'{dicom.csv_path}')
  if args.kind in ('images', 'both'):
    folder = make_image_folder(
        out / 'images' if args.kind == 'both' else out, n_images=args.n,
        size=args.size, seed=args.seed, split_folders=args.split_folders,
        broken_files=args.broken_files)
    print(f'{folder.root}: {len(folder.images)} good images in '
          f'{len(folder.class_names)} classes, {len(folder.rejects)} to be '
          f'rejected, {len(folder.skips)} to be skipped')
  if args.kind == 'ct':
    volumes = make_ct_sample(out, n_studies=args.n, size=args.size,
                             seed=args.seed)
    print(f'{volumes.input_base}: {len(volumes.series)} series in '
          f'{args.n} studies, {len(volumes.expected_outcomes())} files; '
          f'study labels in {volumes.csv_path}')
  if args.kind == 'captioned':
    captioned = make_captioned_images(out, n_images=args.n, size=args.size,
                                      seed=args.seed)
    print(f'{captioned.root}: {len(captioned.images)} images in '
          f'{len(captioned.class_names)} classes; labels and descriptions in '
          f'{captioned.metadata_path}')
  if args.kind == 'burned_in':
    burned = make_burned_in_sample(out, seed=args.seed)
    print(f'{burned.root}: {len(burned.files)} DICOM files with PHI in '
          'their pixels (ultrasound, secondary captures, photographs)')

