"""Evaluation: from a model's probabilities to figures with intervals, thresholds and reports.

Read in this order:

- ``metrics.py``            the PTB-XL benchmark's metrics: macro AUC, bootstrap intervals, thresholds;
- ``scoring.py``            the same with unknown labels (an empty manifest cell), tolerant of small sets;
- ``evaluate.py``           a run on PTB-XL's folds 9 and 10 → ``RUN/val``, ``RUN/test``; ``report.py``
                            its ``report.html`` / ``report.md``;
- ``external.py`` (+ ``external_report.py``)  ``ecgnet evaluate-external``: a Challenge-style folder;
- ``manifest_evaluation.py`` (+ ``manifest_report.py``, ``labelled.py``)  ``ecgnet evaluate RUN
                            --manifest M.csv``: any run on any labelled manifest;
- a site's operating points (``ecgnet calibrate``): ``calibration.py`` (reliability, ECE) →
  ``recalibration.py`` (temperature, isotonic) → ``operating_points.py`` (Youden, F1, a sensitivity) →
  ``site_calibration.py`` (fitted and scored out of fold) → ``calibrate_site.py`` (the command) →
  ``site_report.py`` (its report);
- ``compare.py``, ``complexity.py``  runs side by side; what a model costs.
"""
