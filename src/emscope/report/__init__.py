"""emscope.report: figures and the self-contained HTML / Markdown study report."""

from emscope.report.charts import misalignment_rate_chart, trigger_alignment_chart
from emscope.report.render import write_report

__all__ = ["misalignment_rate_chart", "trigger_alignment_chart", "write_report"]
