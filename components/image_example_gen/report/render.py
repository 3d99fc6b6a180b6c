"""Pictures of an Examples artifact: thumbnails, charts, contact sheet, HTML.

Thumbnails are decoded from `image/encoded` with the Trainer's own call,
`tf.io.decode_image(..., dtype=tf.float32)` (16-bit PNGs scaled by 1/65535,
8-bit images by 1/255), then shrunk to fit a square box (bilinear with
antialiasing, as the Trainer resizes; never enlarged) and quantized to 8 bits
for display. Charts and the contact sheet are matplotlib figures drawn with
the Agg canvas (no pyplot, no display needed); the HTML embeds every image
as a data URI, so it opens offline and references no external URL.
"""

import base64
import html
import io
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from matplotlib import figure
import numpy as np
from PIL import Image
import tensorflow as tf

from image_example_gen.report import data as data_lib

# split -> label -> thumbnails, parallel to ArtifactData.samples.
Thumbnails = Dict[str, Dict[str, List[np.ndarray]]]

_DPI = 100
_CELL_WIDTH_IN = 1.2
_IMAGE_HEIGHT_IN = 1.0
# A caption's height per line; captions have 4 lines or more.
_CAPTION_LINE_IN = 0.155
_MIN_CAPTION_LINES = 4
_TITLE_HEIGHT_IN = 0.4
_CAPTION_FONT_SIZE = 5.5
_MAX_CHART_WIDTH_IN = 16
_MAX_LABEL_TICKS = 60
# Matplotlib writes its URL into the PNG's Software field unless told not to.
_PNG_METADATA = {'Software': None}

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
th:first-child, td.text { text-align: left; }
code { font-size: 90%; }
.label-row { display: flex; flex-wrap: wrap; align-items: flex-start;
             margin-bottom: 0.5em; }
.label-name { width: 9em; font-weight: bold; padding-top: 1em; }
figure { margin: 0 8px 8px 0; width: 110px; }
figure.strip { width: auto; }
figure img { background: #000; image-rendering: pixelated; display: block; }
figcaption { font-size: 10px; line-height: 1.25; word-break: break-all; }
.note { color: #666; font-size: 90%; }
.warning { color: #a40000; font-weight: bold; }
"""


def decode(encoded: bytes) -> np.ndarray:
  """HxWxC float32 pixels in [0, 1], decoded exactly as the Trainer does."""
  return tf.io.decode_image(encoded, dtype=tf.float32,
                            expand_animations=False).numpy()


def thumbnail(encoded: bytes, size: int = 96) -> np.ndarray:
  """An 8-bit thumbnail, HxW (grayscale) or HxWx3, fitting a size x size box.

  Alpha channels are dropped; images larger than the box are shrunk with the
  aspect ratio kept, smaller ones are left as they are.
  """
  if size < 1:
    raise ValueError(f'size must be positive, got {size}.')
  image = decode(encoded)
  if image.shape[-1] in (2, 4):
    image = image[..., :-1]
  height, width = image.shape[:2]
  if max(height, width) > size:
    image = tf.image.resize(image, (size, size), preserve_aspect_ratio=True,
                            antialias=True).numpy()
  pixels = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
  return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


def strip(slices: Sequence[bytes], size: int = 96) -> np.ndarray:
  """The thumbnails of a volume's slices side by side, 2 px apart."""
  thumbs = [thumbnail(encoded, size) for encoded in slices]
  height = max(t.shape[0] for t in thumbs)
  gap = np.zeros((height, 2) + thumbs[0].shape[2:], np.uint8)
  padded = []
  for thumb in thumbs:
    pad = [(0, height - thumb.shape[0])] + [(0, 0)] * (thumb.ndim - 1)
    padded.extend([np.pad(thumb, pad), gap])
  return np.concatenate(padded[:-1], axis=1)


def thumbnails(data: data_lib.ArtifactData, size: int = 96) -> Thumbnails:
  """The thumbnail (a volume: strip) of every sample, in the same nesting."""
  return {split: {label: [strip(s.slices, size) if s.slices else
                          thumbnail(s.encoded, size) for s in samples]
                  for label, samples in by_label.items()}
          for split, by_label in data.samples.items()}


def png_bytes(pixels: np.ndarray) -> bytes:
  """PNG bytes of an 8-bit HxW or HxWx3 array (Pillow, no metadata)."""
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, 'PNG')
  return buffer.getvalue()


def _figure_png(fig: figure.Figure) -> bytes:
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', dpi=_DPI, metadata=_PNG_METADATA)
  return buffer.getvalue()


def _label_title(label: str, label_names: Mapping[str, str]) -> str:
  name = label_names.get(label)
  return f'{label} {name}' if name else label


def _grouped_bars(ax, groups: Sequence[str],
                  series: Sequence[Tuple[str, Sequence[int]]],
                  annotate: bool) -> None:
  """One bar per series side by side at each group, with a legend."""
  width = 0.8 / max(1, len(series))
  for i, (name, values) in enumerate(series):
    positions = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
    bars = ax.bar(positions, values, width, label=name)
    if annotate:
      ax.bar_label(bars, fontsize=7)
  ax.legend(fontsize=7)


def counts_chart(data: data_lib.ArtifactData) -> bytes:
  """PNG bar charts: Examples (and patients) per split; Examples per label.

  Label names are written under the bars for up to `_MAX_LABEL_TICKS`
  labels; the chart is at most `_MAX_CHART_WIDTH_IN` wide.
  """
  splits = list(data.splits)
  labels = sorted({label for counts in data.splits.values()
                   for label in counts.labels}, key=data_lib.label_sort_key)
  labels_width = min(_MAX_CHART_WIDTH_IN - 4, max(4, 0.45 * len(labels)))
  fig = figure.Figure(figsize=(4 + labels_width, 3.2))
  totals_ax, labels_ax = fig.subplots(
      1, 2, gridspec_kw={'width_ratios': [4, labels_width]})
  series = [('examples', [data.splits[s].examples for s in splits])]
  if data.is_dicom:
    series.append(('patients', [data.splits[s].patients for s in splits]))
  _grouped_bars(totals_ax, splits, series, annotate=True)
  totals_ax.set_xticks(np.arange(len(splits)), splits)
  totals_ax.set_title(
      ' and '.join(name for name, _ in series).capitalize() + ' per split',
      fontsize=9)
  _grouped_bars(labels_ax, labels, [
      (split, [data.splits[split].labels.get(label, 0) for label in labels])
      for split in splits], annotate=False)
  if len(labels) <= _MAX_LABEL_TICKS:
    named = bool(data.label_names)
    labels_ax.set_xticks(
        np.arange(len(labels)),
        [_label_title(label, data.label_names) for label in labels],
        rotation=45 if named else 0, ha='right' if named else 'center',
        fontsize=7)
  labels_ax.set_title('Examples per label', fontsize=9)
  fig.tight_layout()
  return _figure_png(fig)


def contact_sheet(data: data_lib.ArtifactData, thumbs: Thumbnails,
                  columns: int = 10) -> bytes:
  """PNG of every thumbnail with its caption, a block per split.

  In a block, each label is a column of its samples (ordered by key); labels
  wrap after `columns` columns.
  """
  blocks = []  # (split, label rows, samples per label)
  for split, by_label in data.samples.items():
    labels = list(by_label)
    blocks.append((split,
                   [labels[i:i + columns]
                    for i in range(0, len(labels), columns)],
                   max([len(s) for s in by_label.values()] or [0])))
  caption_height = _CAPTION_LINE_IN * max(
      [_MIN_CAPTION_LINES] + [len(sample.caption)
                              for by_label in data.samples.values()
                              for samples in by_label.values()
                              for sample in samples])
  heights = []
  for _, label_rows, per_label in blocks:
    heights.append(_TITLE_HEIGHT_IN)
    heights.extend([_IMAGE_HEIGHT_IN + caption_height] *
                   (len(label_rows) * per_label))
  width = max([len(rows[0]) for _, rows, _ in blocks if rows] or [1])
  # Volumes' strips are wider than high: their cells are as wide as needed.
  aspect = max([t.shape[1] / t.shape[0] for by_label in thumbs.values()
                for label_thumbs in by_label.values() for t in label_thumbs
                if t.shape[1] > t.shape[0]] or [1.0])
  fig = figure.Figure(figsize=(width * _CELL_WIDTH_IN * aspect,
                               sum(heights)))
  grid = fig.add_gridspec(len(heights), width, height_ratios=heights,
                          left=0.01, right=0.99, top=0.995, bottom=0.005,
                          hspace=0.0, wspace=0.05)
  row = 0
  for split, label_rows, per_label in blocks:
    title_ax = fig.add_subplot(grid[row, :])
    title_ax.axis('off')
    title_ax.text(0.0, 0.3,
                  _split_title(split, data.splits[split], data.is_dicom),
                  fontsize=10, fontweight='bold', transform=title_ax.transAxes)
    row += 1
    for labels in label_rows:
      for column, label in enumerate(labels):
        for k, (sample, thumb) in enumerate(zip(data.samples[split][label],
                                                thumbs[split][label])):
          _draw_cell(fig.add_subplot(grid[row + k, column]), sample, thumb,
                     caption_height)
      row += per_label
  return _figure_png(fig)


def _split_title(split: str, counts: data_lib.SplitCounts,
                 is_dicom: bool) -> str:
  parts = [f'{counts.examples} Examples']
  if is_dicom:
    parts.append(f'{counts.patients} patients')
  parts.append(f'{len(counts.labels)} labels')
  return f'{split}: ' + ', '.join(parts)


def _draw_cell(ax, sample: data_lib.Sample, thumb: np.ndarray,
               caption_height: float) -> None:
  """One thumbnail with its caption below, in a box of the cell's height."""
  ax.axis('off')
  # An image in a square box; a volume's strip in a box as high as it.
  box = thumb.shape[0] if sample.slices else max(thumb.shape[:2])
  width = max(box, thumb.shape[1])
  ax.imshow(thumb, cmap='gray' if thumb.ndim == 2 else None, vmin=0, vmax=255,
            interpolation='nearest',
            extent=(0, thumb.shape[1], thumb.shape[0], 0))
  ax.set_xlim(-(width - thumb.shape[1]) / 2, thumb.shape[1] +
              (width - thumb.shape[1]) / 2)
  caption_box = box * caption_height / _IMAGE_HEIGHT_IN
  ax.set_ylim(box + caption_box, 0)
  ax.text(thumb.shape[1] / 2, box + caption_box * 0.05,
          '\n'.join(sample.caption), ha='center', va='top',
          fontsize=_CAPTION_FONT_SIZE, linespacing=1.15)


def _data_uri(png: bytes) -> str:
  return 'data:image/png;base64,' + base64.b64encode(png).decode('ascii')


def _e(value) -> str:
  return html.escape(str(value), quote=True)


def _counts_html(data: data_lib.ArtifactData) -> List[str]:
  labels = sorted({label for counts in data.splits.values()
                   for label in counts.labels}, key=data_lib.label_sort_key)
  head = ['<th>split</th>', '<th>examples</th>']
  if data.is_dicom:
    head.append('<th>patients</th>')
  head.extend(f'<th>label {_e(_label_title(label, data.label_names))}</th>'
              for label in labels)
  rows = ['<table class="counts">', '<tr>' + ''.join(head) + '</tr>']
  for split, counts in data.splits.items():
    cells = [f'<td class="text">{_e(split)}</td>',
             f'<td data-count="examples">{counts.examples}</td>']
    if data.is_dicom:
      cells.append(f'<td data-count="patients">{counts.patients}</td>')
    cells.extend(f'<td data-label="{_e(label)}">'
                 f'{counts.labels.get(label, 0)}</td>' for label in labels)
    rows.append(f'<tr data-split="{_e(split)}">' + ''.join(cells) + '</tr>')
  rows.append('</table>')
  return rows


def _summary_html(data: data_lib.ArtifactData) -> List[str]:
  """The ingestion counts, the table join, and warnings about the splits."""
  summary = data.summary or {}
  parts = []
  if summary:
    parts.append(
        f'<p class="ingestion">Ingestion: {summary.get("input_files", "?")} '
        f'input files, {summary.get("converted_files", "?")} converted into '
        f'{summary.get("examples", "?")} Examples, '
        f'{summary.get("rejected_files", "?")} rejected; '
        f'{summary.get("skipped_files", 0)} files skipped as not inputs'
        + (f' ({_e(", ".join(f"{k} {v}" for k, v in summary["skips"].items()))})'
           if summary.get('skips') else '') + '.</p>')
    rows = []
    duplicates = summary.get('duplicates') or {}
    for key, title in (
        ('duplicate_images', 'files whose bytes another file has'),
        ('duplicate_groups', 'distinct contents that occur more than once'),
        ('duplicate_images_across_splits',
         'of those files, in more than one split')):
      if key in duplicates:
        rows.append((key, title, duplicates[key]))
    if 'reencoded_files' in summary:
      rows.append(('reencoded_files', 'stored as a re-encoded PNG, not '
                   'their own bytes', summary['reencoded_files']))
    repaired = summary.get('repaired_files') or {}
    if repaired.get('count'):
      rows.append(('repaired_files', 'decoded after a repair',
                   repaired['count']))
    table = summary.get('metadata') or {}
    for key, title in (
        ('metadata_rows', 'table rows'),
        ('metadata_rows_matched', 'table rows matched by a converted file'),
        ('metadata_rows_without_file', 'table rows without a file'),
        ('metadata_bad_rows', 'table rows that do not parse')):
      if key in table:
        rows.append((key, title, table[key]))
    if rows:
      parts.append('<table class="ingestion"><tr><th>count</th><th>what</th>'
                   '<th>files</th></tr>')
      parts.extend(f'<tr data-count="{_e(key)}"><td class="text"><code>'
                   f'{_e(key)}</code></td><td class="text">{_e(title)}</td>'
                   f'<td>{value}</td></tr>' for key, title, value in rows)
      parts.append('</table>')
    keys = table.get('metadata_rows_without_file_first_keys')
    if keys:
      parts.append('<p class="note">First table keys without a file: '
                   f'{_e(", ".join(keys))}</p>')
  parts.extend(f'<p class="warning">Warning: {_e(warning)}.</p>'
               for warning in data.split_warnings())
  return parts


def _table_html(summary: Optional[dict]) -> List[str]:
  """The metadata table: the join's counts, and each column's fate."""
  metadata = (summary or {}).get('metadata')
  if not metadata:
    return ['<p class="note">No metadata table was joined.</p>']
  parts = [
      f'<p>{metadata.get("metadata_rows", "?")} rows: '
      f'{metadata.get("metadata_rows_matched", "?")} matched a file, '
      f'{metadata.get("metadata_rows_without_file", "?")} named no file, '
      f'{metadata.get("metadata_rows_without_key", "?")} had no key, '
      f'{metadata.get("metadata_duplicate_keys", "?")} keys were on several '
      f'rows, {metadata.get("metadata_bad_rows", "?")} rows did not parse.'
      '</p>']
  first_keys = metadata.get('metadata_rows_without_file_first_keys')
  if first_keys:
    parts.append('<p class="note">First keys naming no file: ' + ', '.join(
        f'<code>{_e(key)}</code>' for key in first_keys) + '</p>')
  types = metadata.get('metadata_column_types', {})
  missing = metadata.get('metadata_missing_values', {})
  made_text = metadata.get('metadata_numbers_made_text', {})
  left_out = metadata.get('metadata_columns_left_out', {})
  parts.append('<table class="columns"><tr><th>column</th><th>type</th>'
               '<th>missing</th><th>note</th></tr>')
  for column in sorted(set(types) | set(left_out)):
    note = ''
    if column in made_text:
      found = made_text[column]
      note = (f'text because of {found["value"]!r} on line {found["line"]} '
              f'of {found["file"]} ({found["text_values"]} text values, '
              f'{found["number_values"]} numbers)')
    elif column in left_out:
      note = f'not exported: it {left_out[column]}'
    parts.append(
        f'<tr data-column="{_e(column)}"><td class="text"><code>'
        f'{_e(column)}</code></td><td class="text">'
        f'{_e(types.get(column, "-"))}</td>'
        f'<td data-count="missing">{_e(missing.get(column, "-"))}</td>'
        f'<td class="text">{_e(note)}</td></tr>')
  parts.append('</table>')
  return parts


def _samples_html(data: data_lib.ArtifactData, thumbs: Thumbnails,
                  size: int) -> List[str]:
  parts = []
  for split, by_label in data.samples.items():
    counts = data.splits[split]
    parts.append(f'<section class="split" data-split="{_e(split)}">')
    parts.append(f'<h3>{_e(_split_title(split, counts, data.is_dicom))}</h3>')
    hidden = len(counts.labels) - len(by_label)
    if hidden:
      parts.append(f'<p class="note">Thumbnails of {len(by_label)} of '
                   f'{len(counts.labels)} labels; {hidden} not shown.</p>')
    for label, samples in by_label.items():
      parts.append(f'<div class="label-row" data-label="{_e(label)}">')
      parts.append(f'<div class="label-name">label '
                   f'{_e(_label_title(label, data.label_names))}<br>'
                   f'<span class="note">{counts.labels.get(label, 0)} '
                   'Examples</span></div>')
      for sample, thumb in zip(samples, thumbs[split][label]):
        # A volume's strip is as high as an image's thumbnail.
        scale = size / (thumb.shape[0] if sample.slices else
                        max(thumb.shape[:2]))
        parts.append(
            f'<figure class="thumb{" strip" if sample.slices else ""}">'
            f'<img src="{_data_uri(png_bytes(thumb))}" '
            f'width="{round(thumb.shape[1] * scale)}" '
            f'height="{round(thumb.shape[0] * scale)}" '
            f'alt="{_e(" ".join(sample.caption))}" '
            f'data-split="{_e(split)}" data-label="{_e(label)}" '
            f'data-key="{_e(sample.key)}">'
            f'<figcaption>{"<br>".join(_e(c) for c in sample.caption)}'
            '</figcaption></figure>')
      parts.append('</div>')
    parts.append('</section>')
  return parts


def _rejects_html(data: data_lib.ArtifactData,
                  rows_per_reason: int) -> List[str]:
  counts = data.reject_counts()
  if not counts:
    return ['<p>No rejects: every input file became an Example.</p>']
  parts = ['<table class="rejects"><tr><th>stage</th><th>reason</th>'
           '<th>files</th></tr>']
  for (stage, reason), n in counts.items():
    parts.append(f'<tr data-stage="{_e(stage)}" data-reason="{_e(reason)}">'
                 f'<td class="text">{_e(stage)}</td>'
                 f'<td class="text">{_e(reason)}</td>'
                 f'<td data-count="rejects">{n}</td></tr>')
  parts.append('</table>')
  for (stage, reason), n in counts.items():
    rows = data.reject_rows(stage, reason, rows_per_reason)
    shown = f'first {len(rows)} of {n}' if len(rows) < n else f'{n}'
    parts.append(f'<h3>{_e(stage)} / {_e(reason)} ({shown})</h3>')
    parts.append('<table class="reject-rows"><tr><th>path</th>'
                 '<th>detail</th></tr>')
    parts.extend(f'<tr data-reason="{_e(reason)}">'
                 f'<td class="text"><code>{_e(r.path)}</code></td>'
                 f'<td class="text">{_e(r.detail)}</td></tr>' for r in rows)
    parts.append('</table>')
  return parts


def _statistics_html(links: Sequence[Tuple[str, str]]) -> List[str]:
  if not links:
    return ['<p class="note">No statistics: pass the StatisticsGen output '
            '(or an MLMD database that has one) to link its visualisation.'
            '</p>']
  items = ''.join(f'<li><a href="{_e(href)}">{_e(title)}</a></li>'
                  for title, href in links)
  return [f'<ul>{items}</ul>',
          '<p class="note">TFDV\'s Facets pages are separate files: their '
          'interactive view loads its viewer from the web, unlike this '
          'report. Each also holds a plain table per feature, which shows '
          'without a network.</p>']


def _number_text(value: float) -> str:
  return f'{value:.4g}'


def statistics_table(statistics) -> str:
  """Plain HTML tables of a DatasetFeatureStatisticsList, one per data set.

  Per feature: type, count, missing, and min / max / mean (numbers) or the
  number of distinct values and the top values (strings), or the average
  size (bytes): what the Facets view shows first, without a script.
  """
  parts = []
  for dataset in statistics.datasets:
    parts.append(f'<h3>{_e(dataset.name or "statistics")}: '
                 f'{dataset.num_examples} Examples</h3>')
    parts.append('<table class="statistics"><tr><th>feature</th><th>type'
                 '</th><th>count</th><th>missing</th><th>min</th><th>max</th>'
                 '<th>mean</th><th>distinct / top values</th></tr>')
    for feature in dataset.features:
      name = '.'.join(feature.path.step) or feature.name
      kind = feature.WhichOneof('stats') or ''
      stats = getattr(feature, kind) if kind else None
      common = getattr(stats, 'common_stats', None)
      cells = ['', '', '', '']
      if kind == 'num_stats':
        cells[:3] = [_number_text(stats.min), _number_text(stats.max),
                     _number_text(stats.mean)]
      elif kind == 'string_stats':
        top = ', '.join(f'{v.value} ({v.frequency:g})'
                        for v in stats.top_values[:5])
        cells[3] = f'{stats.unique} distinct: {top}'
      elif kind == 'bytes_stats':
        cells[3] = (f'{stats.unique} distinct, {stats.avg_num_bytes:.0f} '
                    'bytes on average')
      parts.append(
          f'<tr data-feature="{_e(name)}"><td class="text"><code>{_e(name)}'
          f'</code></td><td class="text">{_e(type(feature).Type.Name(feature.type))}</td>'
          f'<td>{common.num_non_missing if common else ""}</td>'
          f'<td>{common.num_missing if common else ""}</td>'
          + ''.join(f'<td class="text">{_e(c)}</td>' for c in cells)
          + '</tr>')
    parts.append('</table>')
  return '\n'.join(parts)


def report_html(data: data_lib.ArtifactData, thumbs: Thumbnails,
                chart_png: bytes, contact_sheet_href: str,
                statistics_links: Sequence[Tuple[str, str]] = (),
                thumbnail_size: int = 96, rejects_per_reason: int = 5) -> str:
  """The self-contained HTML report (images embedded as data URIs).

  Args:
    data: what was read of the artifact.
    thumbs: the thumbnails of `data.samples`.
    chart_png: the counts chart.
    contact_sheet_href: relative link to the contact sheet PNG.
    statistics_links: (title, relative href) of TFDV statistics pages.
    thumbnail_size: the box thumbnails are shown in, px.
    rejects_per_reason: reject records listed per reason.

  Returns:
    The HTML document.
  """
  per_label = max([len(s) for by_label in data.samples.values()
                   for s in by_label.values()] or [0])
  parts = [
      '<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
      '<title>Examples report</title>', f'<style>{_STYLE}</style>',
      '</head><body>', '<h1>Examples report</h1>',
      f'<p>Artifact: <code>{_e(data.uri)}</code></p>',
      *_summary_html(data),
      '<h2>Counts</h2>', *_counts_html(data),
      '<h2>Metadata table</h2>', *_table_html(data.summary),
      f'<img src="{_data_uri(chart_png)}" alt="counts per split and label">',
      '<h2>Samples</h2>',
      f'<p class="note">Up to {per_label} Examples per label and split: those '
      'with the smallest <code>image/key</code> (volumes: '
      '<code>series/key</code>, shown as a strip of evenly spaced slices), '
      'decoded from <code>image/encoded</code> as the Trainer decodes them. '
      'All on one '
      f'page: <a href="{_e(contact_sheet_href)}">contact sheet</a>.</p>',
      *_samples_html(data, thumbs, thumbnail_size),
      '<h2>Rejects</h2>', *_rejects_html(data, rejects_per_reason),
      '<h2>Statistics</h2>', *_statistics_html(statistics_links),
      '</body></html>']
  return '\n'.join(parts) + '\n'
