"""What finished runs say: records in, tables over seeds, statistics, scaling, figures and the report out.

Pure functions of :class:`RunRecord` lists and the DataFrames made from them; nothing here reads or writes
MLflow (records come from the executor's results, :meth:`RunRecord.of_result`, or from
:mod:`vaebench.tracking.reader`).

- :mod:`~vaebench.results.records`: the record of a finished run and the one-row-per-run frame;
- :mod:`~vaebench.results.stats`: t-intervals, paired differences, Holm's adjustment;
- :mod:`~vaebench.results.scaling`: scores scaled between the controls and their aggregates;
- :mod:`~vaebench.results.tables`: summaries over seeds, paired comparisons with the baseline, collapse;
- :mod:`~vaebench.results.markdown` and :mod:`~vaebench.results.figures`: the tables and figures drawn;
- :mod:`~vaebench.results.report`: :func:`write_report`, the folder of files and the :class:`Report`.
"""

from vaebench.results.records import RunRecord, beside, records_frame
from vaebench.results.report import Report, write_report

__all__ = ["Report", "RunRecord", "beside", "records_frame", "write_report"]
