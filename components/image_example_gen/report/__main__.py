"""Command line: write the visual report of an Examples artifact.

    python -m image_example_gen.report --out DIR
        (--examples URI | --metadata MLMD.sqlite --pipeline NAME)
        [--statistics URI] [--samples-per-label K] [--thumbnail-size PX]

With `--metadata`, the pipeline's latest Examples are reported, with the
statistics computed from them when StatisticsGen ran (unless --statistics
names others). Prints the paths written.
"""

import argparse
import sys
from typing import Optional, Sequence

from image_example_gen import console


def _parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m image_example_gen.report',
      description='HTML report and contact sheet of an Examples artifact.')
  parser.add_argument('--out', required=True, help='output folder')
  parser.add_argument('--examples', help='Examples artifact URI')
  parser.add_argument('--metadata', help='SQLite MLMD database of a pipeline')
  parser.add_argument('--pipeline', help='pipeline name (with --metadata)')
  parser.add_argument('--statistics', help='StatisticsGen output URI')
  parser.add_argument('--samples-per-label', type=int, default=4)
  parser.add_argument('--thumbnail-size', type=int, default=96)
  args = parser.parse_args(argv)
  if bool(args.examples) == bool(args.metadata):
    parser.error('give exactly one of --examples and --metadata')
  if bool(args.metadata) != bool(args.pipeline):
    parser.error('--metadata and --pipeline go together')
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = _parse(argv)
  console.quiet_entry_point()
  with console.filtered_stderr():
    return _report(args)


def _report(args: argparse.Namespace) -> int:
  # Imported after parsing: TensorFlow and TFDV take seconds.
  from image_example_gen.report import mlmd  # pylint: disable=g-import-not-at-top
  from image_example_gen.report import writer  # pylint: disable=g-import-not-at-top
  examples_uri, statistics_uri = args.examples, args.statistics
  if args.metadata:
    examples_uri = mlmd.latest_examples_uri(args.metadata, args.pipeline)
    statistics_uri = statistics_uri or mlmd.latest_statistics_uri(
        args.metadata, args.pipeline, examples_uri)
  paths = writer.write_report(
      examples_uri, args.out, statistics_uri=statistics_uri,
      samples_per_label=args.samples_per_label,
      thumbnail_size=args.thumbnail_size)
  print(f'Examples: {examples_uri}')
  print(f'Report: {paths.html}')
  print(f'Contact sheet: {paths.contact_sheet}')
  for path in paths.statistics:
    print(f'Statistics: {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
