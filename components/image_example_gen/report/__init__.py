"""A visual report of an Examples artifact: counts, thumbnails, rejects.

    from image_example_gen import report
    paths = report.write_report(examples_uri, out_dir, statistics_uri)

or, from a LocalDagRunner pipeline's MLMD database,

    python -m image_example_gen.report --metadata mlmd.sqlite \
        --pipeline NAME --out DIR
"""

from image_example_gen.report.mlmd import latest_examples_uri
from image_example_gen.report.mlmd import latest_statistics_uri
from image_example_gen.report.writer import ReportPaths
from image_example_gen.report.writer import write_report

__all__ = ['ReportPaths', 'latest_examples_uri', 'latest_statistics_uri',
           'write_report']
