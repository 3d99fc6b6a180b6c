"""Command line: `python -m image_example_gen convert SRC OUT [options]`.

Converts a folder into TFRecords of tf.Examples without a pipeline
(`convert.convert`); `--help` lists every option with its default.
"""

import argparse
import shlex
import sys
from typing import Optional, Sequence

from image_example_gen import console
from image_example_gen import options


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='python -m image_example_gen',
      description='Image folders and DICOM trees to TFRecords of tf.Examples.',
      formatter_class=options.HelpFormatter)
  commands = parser.add_subparsers(dest='command', required=True)
  convert = commands.add_parser(
      'convert', formatter_class=options.HelpFormatter,
      help='convert a folder into OUT/Split-*/ TFRecords (no pipeline)',
      description='Runs the ExampleGen alone (LocalDagRunner, temporary '
                  'MLMD). OUT gets Split-<name>/data_tfrecord-*.gz, '
                  'rejects/, skipped/, ingest_summary.json and '
                  '(image folders) label_vocabulary.txt; read them back with '
                  "image_example_gen.read_examples(OUT, 'train').")
  convert.add_argument('src', help='the folder to convert (input_base)')
  convert.add_argument('out', help='a new or empty folder for the output')
  convert.add_argument('--source', choices=(options.IMAGES, options.DICOM),
                       default=options.IMAGES,
                       help='images: ImageFolderExampleGen; dicom: '
                            'DicomExampleGen')
  options.add_example_gen_flags(convert)
  convert.add_argument(
      '--beam-pipeline-args', default='',
      help="Beam options as one string, e.g. '--direct_running_mode="
           "multi_processing --direct_num_workers=0'")
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the command; returns the exit status."""
  args = _parser().parse_args(argv)
  console.quiet_entry_point()
  with console.filtered_stderr():
    from image_example_gen import convert  # pylint: disable=g-import-not-at-top
    try:
      out = convert.convert(
          args.src, args.out, args.source,
          options.example_gen_args(args, args.source),
          shlex.split(args.beam_pipeline_args))
    except (RuntimeError, ValueError) as e:
      console.logger().error('Failed: %s', e)
      return 1
  console.logger().info(
      'Examples written to %s/Split-*/; read them with '
      "image_example_gen.read_examples('%s', 'train').", out, out)
  return 0


if __name__ == '__main__':
  sys.exit(main())
