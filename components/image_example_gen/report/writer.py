"""`write_report`: an Examples artifact to an HTML report and a contact sheet.

Files written into `out_dir`:
  report.html             self-contained (images embedded), no external URL
  contact_sheet.png       every thumbnail with its caption, one block a split
  statistics-<split>.html TFDV's Facets view of a StatisticsGen output, and
  statistics-<a>-vs-<b>.html for the first split against each other one;
                          only with statistics. The Facets view loads its
                          viewer from the web (blank on a network without
                          internet), which is why these are separate files,
                          linked from the report; below the view each page
                          holds the same statistics as plain tables.
"""

import dataclasses
import html
import os
from typing import List, Optional, Tuple

import tensorflow as tf

from image_example_gen.report import data as data_lib
from image_example_gen.report import render

HTML_FILE = 'report.html'
CONTACT_SHEET_FILE = 'contact_sheet.png'
STATISTICS_FILE = 'FeatureStats.pb'


@dataclasses.dataclass(frozen=True)
class ReportPaths:
  """Where `write_report` wrote the report.

  Attributes:
    html: the HTML report.
    contact_sheet: the PNG contact sheet.
    statistics: the TFDV statistics pages, if any.
  """
  html: str
  contact_sheet: str
  statistics: Tuple[str, ...] = ()


def _write(path: str, content, mode: str) -> None:
  with tf.io.gfile.GFile(path, mode) as f:
    f.write(content)


def _statistics_page(body: str, title: str, tables: str) -> str:
  return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
          f'<title>{html.escape(title)}</title></head><body>\n{body}\n'
          '<h2>The same statistics without the web</h2>\n'
          '<p class="note">The view above loads its viewer from the web and '
          'stays blank without internet access; these tables need '
          f'nothing.</p>\n{tables}\n</body></html>\n')


def _joined(*lists):
  """One DatasetFeatureStatisticsList of the data sets of several."""
  joined = type(lists[0])()
  for statistics in lists:
    joined.datasets.extend(statistics.datasets)
  return joined


def write_statistics_pages(statistics_uri: str,
                           out_dir: str) -> List[Tuple[str, str]]:
  """Writes TFDV's statistics HTML for each split of a statistics artifact.

  Args:
    statistics_uri: a StatisticsGen output (`Split-<name>/FeatureStats.pb`).
    out_dir: where to write `statistics-*.html`.

  Returns:
    (title, file name) of each page written, per split then comparisons of
    the first split with each other one.
  """
  # TFDV is heavy and only needed here.
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  from tensorflow_data_validation.utils import display_util  # pylint: disable=g-import-not-at-top
  stats = {}
  for split in data_lib.split_names(statistics_uri):
    path = os.path.join(statistics_uri, data_lib.SPLIT_PREFIX + split,
                        STATISTICS_FILE)
    if tf.io.gfile.exists(path):
      stats[split] = tfdv.load_stats_binary(path)
      for dataset in stats[split].datasets:
        dataset.name = dataset.name or split
  if not stats:
    raise FileNotFoundError(
        f'No {data_lib.SPLIT_PREFIX}*/{STATISTICS_FILE} under '
        f'{statistics_uri}: not a StatisticsGen output.')
  pages = [(f'{split} statistics', f'statistics-{split}.html',
            display_util.get_statistics_html(stats[split], lhs_name=split),
            render.statistics_table(stats[split]))
           for split in stats]
  first, *others = stats
  pages.extend(
      (f'{first} vs {other} statistics', f'statistics-{first}-vs-{other}.html',
       display_util.get_statistics_html(stats[first], stats[other],
                                        lhs_name=first, rhs_name=other),
       render.statistics_table(_joined(stats[first], stats[other])))
      for other in others)
  for title, name, body, tables in pages:
    _write(os.path.join(out_dir, name), _statistics_page(body, title, tables),
           'w')
  return [(title, name) for title, name, _, _ in pages]


def write_report(examples_uri: str,
                 out_dir: str,
                 statistics_uri: Optional[str] = None,
                 samples_per_label: int = 4,
                 thumbnail_size: int = 96,
                 max_labels: int = 50,
                 rejects_per_reason: int = 5) -> ReportPaths:
  """Writes the visual report of an Examples artifact.

  Reads every Example once (counts) and keeps the `samples_per_label`
  Examples with the smallest `image/key` per (split, label) in memory.

  Args:
    examples_uri: the Examples artifact (a directory with `Split-*`).
    out_dir: where to write; created if missing, files of the same names are
      replaced.
    statistics_uri: a StatisticsGen output for the same Examples; None writes
      no statistics pages.
    samples_per_label: thumbnails per label and split.
    thumbnail_size: thumbnails fit a box of this many px.
    max_labels: thumbnails for at most this many labels per split (the first
      in label order); counts cover every label.
    rejects_per_reason: reject records listed per reason.

  Returns:
    The paths written.
  """
  if max_labels < 1:
    raise ValueError(f'max_labels must be positive, got {max_labels}.')
  data = data_lib.read_artifact(examples_uri, per_label=samples_per_label)
  data = dataclasses.replace(data, samples={
      split: dict(list(by_label.items())[:max_labels])
      for split, by_label in data.samples.items()})
  tf.io.gfile.makedirs(out_dir)
  thumbs = render.thumbnails(data, thumbnail_size)
  contact_sheet = os.path.join(out_dir, CONTACT_SHEET_FILE)
  _write(contact_sheet, render.contact_sheet(data, thumbs), 'wb')
  statistics_links = (write_statistics_pages(statistics_uri, out_dir)
                      if statistics_uri else [])
  html_path = os.path.join(out_dir, HTML_FILE)
  _write(html_path, render.report_html(
      data, thumbs, render.counts_chart(data), CONTACT_SHEET_FILE,
      statistics_links, thumbnail_size, rejects_per_reason), 'w')
  return ReportPaths(
      html=html_path, contact_sheet=contact_sheet,
      statistics=tuple(os.path.join(out_dir, name)
                       for _, name in statistics_links))
